package dev.loadstone.store;

import java.util.ArrayList;
import java.util.List;

/** Runs one task body on several platform threads and rethrows the first failure. */
final class Parallel {
  private Parallel() {}

  static void run(int threads, Runnable body) {
    if (threads <= 1) {
      body.run();
      return;
    }
    List<Thread> workers = new ArrayList<>(threads - 1);
    Throwable[] failure = new Throwable[1];
    for (int t = 1; t < threads; t++) {
      Thread worker = Thread.ofPlatform().name("loadstone-worker-" + t).daemon().unstarted(body);
      worker.setUncaughtExceptionHandler((thread, error) -> {
        synchronized (failure) {
          if (failure[0] == null) {
            failure[0] = error;
          }
        }
      });
      workers.add(worker);
      worker.start();
    }
    Throwable own = null;
    try {
      body.run();
    } catch (Throwable t) {
      own = t;
    }
    boolean interrupted = false;
    for (Thread worker : workers) {
      while (true) {
        try {
          worker.join();
          break;
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    Throwable first = own != null ? own : failure[0];
    if (first instanceof RuntimeException runtime) {
      throw runtime;
    }
    if (first instanceof Error error) {
      throw error;
    }
  }
}
