package dev.loadstone.torch;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.global.torch;

/**
 * How a thread of Loadstone's calls libtorch: as a single-threaded caller, with no autograd
 * ({@code NoGradGuard} is per thread), one intra-op thread, and a JavaCPP pointer scope that
 * frees the thread's temporaries when its work is done. The threads themselves are the load
 * engine's ({@link dev.loadstone.engine.Parallel}).
 *
 * <p>Why not libtorch's own intra-op parallelism: its OpenMP teams meet at a barrier after
 * every operation, so one team thread that the OS preempts stalls the others, and on a busy
 * machine a load ran 3 to 5 times slower with two OpenMP threads than with one. Threads that
 * each take the next chunk when done are not held up by a preempted neighbour.
 */
@SuppressWarnings("try") // a PointerScope or NoGradGuard acts by being open, unreferenced
final class LibtorchThreads {
  private LibtorchThreads() {}

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
  static Runnable caller(Runnable body) {
    return () -> {
      try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
        torch.set_num_threads(1);
        body.run();
      }
    };
  }
}
