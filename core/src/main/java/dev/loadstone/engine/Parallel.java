package dev.loadstone.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

/**
 * Runs work on several platform threads: the calling thread and {@code threads - 1} fresh
 * daemon threads, joined before returning, the first failure rethrown as it was. Each
 * {@link #forEach} thread takes the next item from one shared counter when it is done with
 * its last, so a thread the system preempts is made up for by the others, and all stop at
 * their next item once one has failed.
 *
 * <pre>{@code
 * Parallel.forEach(chunks, 2, UnaryOperator.identity(), chunk -> chunk.copy());
 * }</pre>
 */
public final class Parallel {
  private Parallel() {}

  /**
   * Hands every item to {@code work} on at most {@code threads} threads (never more threads
   * than items), each thread's loop wrapped by {@code perThread} (to set up and tear down
   * per-thread state, such as a native library's settings).
   *
   * @throws RuntimeException or {@link Error}: the first failure of any thread, as thrown;
   *     items not yet taken are skipped
   */
  public static <T> void forEach(List<T> items, int threads, UnaryOperator<Runnable> perThread, Consumer<T> work) {
    AtomicInteger next = new AtomicInteger();
    AtomicReference<Throwable> failed = new AtomicReference<>();
    Runnable loop = perThread.apply(() -> {
      int index;
      while (failed.get() == null && (index = next.getAndIncrement()) < items.size()) {
        try {
          work.accept(items.get(index));
        } catch (RuntimeException | Error e) {
          failed.compareAndSet(null, e);
        }
      }
    });
    run(Math.min(threads, Math.max(1, items.size())), () -> {
      try {
        loop.run();
      } catch (RuntimeException | Error e) {
        // perThread's own set-up or tear-down failed
        failed.compareAndSet(null, e);
      }
    });
    rethrow(failed.get());
  }

  /**
   * Runs {@code body} on {@code threads} threads at once (the caller's among them) and waits
   * for all of them.
   *
   * @throws RuntimeException or {@link Error}: the first failure, as thrown
   */
  public static void run(int threads, Runnable body) {
    if (threads <= 1) {
      body.run();
      return;
    }
    AtomicReference<Throwable> failure = new AtomicReference<>();
    List<Thread> workers = new ArrayList<>(threads - 1);
    for (int t = 1; t < threads; t++) {
      Thread worker = Thread.ofPlatform().name("loadstone-worker-" + t).daemon().unstarted(body);
      worker.setUncaughtExceptionHandler((thread, error) -> failure.compareAndSet(null, error));
      workers.add(worker);
      worker.start();
    }
    Throwable own = null;
    try {
      body.run();
    } catch (RuntimeException | Error e) {
      own = e;
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
    rethrow(own != null ? own : failure.get());
  }

  private static void rethrow(Throwable failure) {
    if (failure instanceof RuntimeException runtime) {
      throw runtime;
    }
    if (failure instanceof Error error) {
      throw error;
    }
  }
}
