package dev.loadstone.torch;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.global.torch;

/**
 * Runs one task body on several platform threads, each a single-threaded libtorch caller: no
 * autograd ({@code NoGradGuard} is per thread), one intra-op thread, and a JavaCPP pointer
 * scope that frees the thread's temporaries when the body returns.
 *
 * <p>Why not libtorch's own intra-op parallelism: its OpenMP teams meet at a barrier after
 * every operation, so one team thread that the OS preempts stalls the others, and on a busy
 * machine a load ran 3 to 5 times slower with two OpenMP threads than with one. Threads that
 * each take the next chunk when done are not held up by a preempted neighbour.
 */
@SuppressWarnings("try") // a PointerScope or NoGradGuard acts by being open, unreferenced
final class Workers {
  private Workers() {}

  static void run(int threads, Runnable body) {
    keepingThreadSetting(() -> fanOut(threads, libtorchCaller(body)));
  }

  /** Work that may throw the checked exception {@code E}. */
  @FunctionalInterface
  interface Work<E extends Exception> {
    void run() throws E;
  }

  /**
   * Runs {@code work}, then restores libtorch's intra-op thread count: at::set_num_threads also
   * sets the default that threads adopt on their first libtorch operation.
   */
  static <E extends Exception> void keepingThreadSetting(Work<E> work) throws E {
    int previous = torch.get_num_threads();
    try {
      work.run();
    } finally {
      torch.set_num_threads(previous);
    }
  }

  /** {@code body} as a single-threaded libtorch caller: no autograd, one intra-op thread, a scope. */
  static Runnable libtorchCaller(Runnable body) {
    return () -> {
      try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
        torch.set_num_threads(1);
        body.run();
      }
    };
  }

  private static void fanOut(int threads, Runnable worker) {
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Runnable guarded = () -> {
      try {
        worker.run();
      } catch (Throwable t) {
        failure.compareAndSet(null, t);
      }
    };
    List<Thread> helpers = new ArrayList<>();
    try {
      for (int t = 1; t < threads; t++) {
        helpers.add(Thread.ofPlatform().name("loadstone-torch-" + t).daemon().start(guarded));
      }
      guarded.run();
    } finally {
      boolean interrupted = false;
      for (Thread helper : helpers) {
        while (true) {
          try {
            helper.join();
            break;
          } catch (InterruptedException e) {
            interrupted = true;
          }
        }
      }
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
    Throwable first = failure.get();
    if (first instanceof RuntimeException runtime) {
      throw runtime;
    }
    if (first instanceof Error error) {
      throw error;
    }
  }
}
