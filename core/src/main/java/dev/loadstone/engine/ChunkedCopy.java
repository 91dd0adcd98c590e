package dev.loadstone.engine;

import dev.loadstone.engine.LoadPlan.Assignment;
import dev.loadstone.internal.Posix;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadOptions;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/**
 * The copy of a load: every assignment of a {@link LoadPlan} cut into chunks of about
 * {@link #CHUNK_BYTES} and copied on {@link LoadOptions#threads()} threads that take chunks
 * from one counter, in file order (so the kernel reads a cold file ahead sequentially), with
 * the memory behaviour every backend wants and the failures every backend reports alike:
 *
 * <ul>
 *   <li>each chunk's file pages are mapped in before the copy ({@code MADV_POPULATE_READ}, one
 *       call instead of a fault every few pages) and, with
 *       {@link LoadOptions#releaseMappedPages()}, dropped from the process after it
 *       ({@code MADV_DONTNEED}), so resident memory holds one copy of the weights, not two;
 *   <li>progress is reported after each chunk;
 *   <li>a copy that fails (a fault in the mapping: a file truncated after it was mapped; a
 *       checkpoint closed by another thread) stops every thread at its next chunk and becomes
 *       one {@link LoadException} naming the file and the tensor ({@link LoadPlan#failure}).
 * </ul>
 *
 * <pre>{@code
 * new ChunkedCopy<>(plan, options)
 *     .perThread(body -> () -> { setUp(); try { body.run(); } finally { tearDown(); } })
 *     .run((assignment, first, count, source) -> copy(source, assignment.target().handle(), first, count));
 * }</pre>
 *
 * @param <T> the backend's handle for a target
 */
public final class ChunkedCopy<T> {
  /**
   * Tensors are copied in chunks of about this many bytes (of the wider of the two dtypes), so
   * that all threads stay busy on one large tensor and each chunk's file pages can be dropped
   * once copied: resident memory then holds the targets plus a chunk per thread.
   */
  public static final long CHUNK_BYTES = 8L << 20;

  /** Copies one chunk: elements {@code [first, first + count)} of the assignment's tensor. */
  @FunctionalInterface
  public interface ChunkCopy<T> {
    /**
     * @param source the chunk's bytes within the tensor's segment (already paged in where it
     *     is a file mapping)
     */
    void copy(Assignment<T> assignment, long first, long count, MemorySegment source);
  }

  private record Chunk<T>(Assignment<T> assignment, long first, long count) {}

  /** A chunk's failure on its way out of {@link Parallel#forEach}. */
  private static final class ChunkFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient Assignment<?> assignment;

    ChunkFailure(Assignment<?> assignment, Throwable cause) {
      super(cause);
      this.assignment = assignment;
    }
  }

  private final LoadPlan<T> plan;
  private final LoadOptions options;
  private UnaryOperator<Runnable> perThread = UnaryOperator.identity();
  private Predicate<Assignment<T>> wholeOnly = assignment -> false;

  /** The copy of {@code plan}'s assignments, on the threads and with the page advice of {@code options}. */
  public ChunkedCopy(LoadPlan<T> plan, LoadOptions options) {
    this.plan = plan;
    this.options = options;
  }

  /** Wraps each copying thread's loop, to set up and tear down per-thread state. */
  public ChunkedCopy<T> perThread(UnaryOperator<Runnable> wrapper) {
    this.perThread = wrapper;
    return this;
  }

  /** Assignments that must be copied in one piece (a strided target, say). */
  public ChunkedCopy<T> wholeOnly(Predicate<Assignment<T>> test) {
    this.wholeOnly = test;
    return this;
  }

  /**
   * Copies every assignment of the plan with {@code copy}.
   *
   * @throws LoadException naming the file and tensor if a copy fails; the other threads stop
   *     at their next chunk
   */
  public void run(ChunkCopy<T> copy) throws LoadException {
    List<Chunk<T>> chunks = new ArrayList<>();
    long bytesTotal = 0;
    for (Assignment<T> assignment : inFileOrder(plan.assignments())) {
      TensorView tensor = assignment.tensor();
      long elements = tensor.elementCount();
      bytesTotal += tensor.byteSize();
      if (wholeOnly.test(assignment)) {
        chunks.add(new Chunk<>(assignment, 0, elements));
        continue;
      }
      // A multiple of 64 elements, so that sub-byte dtypes stay byte-aligned.
      long bytesPerElement = Math.max(1, Math.max(tensor.dtype().bits(), assignment.targetDType().bits()) / 8);
      long chunkElements = Math.max(64, (CHUNK_BYTES / bytesPerElement) & -64L);
      for (long first = 0; first < elements; first += chunkElements) {
        chunks.add(new Chunk<>(assignment, first, Math.min(chunkElements, elements - first)));
      }
    }
    long total = bytesTotal;
    AtomicLong done = new AtomicLong();
    try {
      Parallel.forEach(chunks, options.threads(), perThread, chunk -> {
        long bytes = copyChunk(chunk, copy);
        options.progress().onProgress(done.addAndGet(bytes), total, chunk.assignment().name());
      });
    } catch (ChunkFailure e) {
      @SuppressWarnings("unchecked")
      Assignment<T> failed = (Assignment<T>) e.assignment;
      throw plan.failure(failed, e.getCause());
    }
  }

  /** Copies one chunk with its page advice; returns the bytes read. */
  private long copyChunk(Chunk<T> chunk, ChunkCopy<T> copy) {
    Assignment<T> assignment = chunk.assignment();
    TensorView tensor = assignment.tensor();
    boolean interruptedBefore = Thread.currentThread().isInterrupted();
    try {
      MemorySegment source = tensor.segment().asSlice(tensor.dtype().byteSize(chunk.first()),
          tensor.dtype().byteSize(chunk.count()));
      boolean mapped = source.isMapped() && source.isReadOnly();
      if (mapped) {
        Posix.madvise(source, Posix.MADV_POPULATE_READ);
      }
      copy.copy(assignment, chunk.first(), chunk.count(), source);
      if (mapped && options.releaseMappedPages()) {
        // Whole pages inside the chunk only; the page cache keeps the data, and a page read
        // again is read back from it.
        Posix.madvise(source, Posix.MADV_DONTNEED);
      }
      return source.byteSize();
    } catch (RuntimeException | InternalError e) {
      // InternalError: the JVM's report of a fault in mapped memory, e.g. a file truncated
      // after it was mapped.
      if (e instanceof IllegalStateException && !interruptedBefore) {
        // The checkpoint was closed by another thread. HotSpot (JDK 25) tells a thread whose
        // read of a mapping is cut short by a close with an asynchronous exception, and sets
        // its interrupt flag while doing so; nobody interrupted this load, and a flag left set
        // would make the caller's next blocking call fail (ClosedByInterruptException).
        Thread.interrupted();
      }
      throw new ChunkFailure(assignment, e);
    }
  }

  /** The assignments sorted by file, then by where their bytes lie (their order in the file). */
  private static <T> List<Assignment<T>> inFileOrder(List<Assignment<T>> assignments) {
    return assignments.stream()
        .sorted(Comparator.comparing((Assignment<T> a) -> a.tensor().file().map(Path::toString).orElse(""))
            .thenComparingLong(a -> a.tensor().segment().address()))
        .toList();
  }
}
