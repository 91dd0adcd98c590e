package dev.loadstone.llama;

import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed team of threads that run one task at a time together: the caller is member 0, and
 * {@code size - 1} daemon threads join it. Between tasks the threads spin briefly (a decode step
 * dispatches about five tasks per layer, a few microseconds apart) and then park, so an idle
 * model costs no CPU.
 *
 * <p>A task splits its own work, usually by taking chunks from a shared counter (as
 * {@link Projection} does), so a member that falls behind (another process on its core) is made
 * up for by the others.
 */
final class ThreadTeam implements AutoCloseable {
  /** Work for every member of the team. */
  interface Task {
    /** Runs the member's share; {@code member} is in {@code [0, size)}. */
    void run(int member);
  }

  /** How long a member waits for the next task, spinning then yielding, before it parks. */
  private static final long SPIN_NANOS = 2_000_000;
  /** Spins (about 10 to 40 ns each) before waiting turns to yielding the core. */
  private static final int YIELD_AFTER_SPINS = 2_000;

  private final int size;
  private final Thread[] threads;
  private final AtomicInteger generation = new AtomicInteger();
  private final AtomicInteger pending = new AtomicInteger();
  private final boolean[] parked;
  private volatile Task task;
  private volatile Throwable failure;
  private volatile boolean closed;

  ThreadTeam(int size) {
    if (size < 1) {
      throw new IllegalArgumentException("threads must be at least 1, not " + size);
    }
    this.size = size;
    this.threads = new Thread[size - 1];
    this.parked = new boolean[size];
    for (int i = 0; i < threads.length; i++) {
      int member = i + 1;
      threads[i] = Thread.ofPlatform().daemon().name("loadstone-llama-" + member)
          .unstarted(() -> loop(member));
      threads[i].start();
    }
  }

  /** The number of members, the caller included. */
  int size() {
    return size;
  }

  /** Runs {@code work} on every member and returns when all are done. Not reentrant. */
  void run(Task work) {
    if (closed) {
      throw new IllegalStateException("the model is closed");
    }
    if (threads.length == 0) {
      work.run(0);
      return;
    }
    failure = null;
    pending.set(threads.length);
    task = work;
    generation.incrementAndGet();
    for (int i = 0; i < threads.length; i++) {
      if (parked[i + 1]) {
        LockSupport.unpark(threads[i]);
      }
    }
    Throwable own = null;
    try {
      work.run(0);
    } catch (Throwable t) {
      own = t;
    }
    // Spin while the others finish their last chunk; on a busy machine a member may have lost
    // its core, and then yielding lets it (or anyone) run instead of burning a time slice.
    for (int spins = 0; pending.get() != 0; spins++) {
      if (spins < YIELD_AFTER_SPINS) {
        Thread.onSpinWait();
      } else {
        Thread.yield();
      }
    }
    task = null;
    Throwable other = failure;
    if (own != null || other != null) {
      Throwable first = own != null ? own : other;
      if (first instanceof RuntimeException e) {
        throw e;
      }
      if (first instanceof Error e) {
        throw e;
      }
      throw new IllegalStateException(first);
    }
  }

  private void loop(int member) {
    int seen = 0;
    while (true) {
      // Wait for the next task: spin a while, then park.
      long spinStart = System.nanoTime();
      int spins = 0;
      int current;
      while ((current = generation.get()) == seen && !closed) {
        if (++spins < YIELD_AFTER_SPINS) {
          Thread.onSpinWait();
        } else {
          Thread.yield();
        }
        if (spins % 256 == 0 && System.nanoTime() - spinStart > SPIN_NANOS) {
          parked[member] = true;
          // Re-check after announcing: run() unparks parked members after the increment.
          VarHandle.fullFence();
          if (generation.get() == seen && !closed) {
            LockSupport.park(this);
          }
          parked[member] = false;
          spinStart = System.nanoTime();
          spins = 0;
        }
      }
      if (closed) {
        return;
      }
      seen = current;
      try {
        task.run(member);
      } catch (Throwable t) {
        failure = t;
      } finally {
        pending.decrementAndGet();
      }
    }
  }

  /** Stops the threads. */
  @Override
  public void close() {
    closed = true;
    for (Thread thread : threads) {
      LockSupport.unpark(thread);
    }
  }
}
