package dev.loadstone.llama;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * One thread's buffer through which the kernels read weights that lie in a file mapping.
 *
 * <p>An ALIAS load leaves the weights in the checkpoint's mapping. If the file is truncated (or
 * its storage fails) while the model runs, reading a lost page faults: inside the JVM's own
 * copy routine ({@link MemorySegment#copy}) the fault becomes an {@link InternalError}, but in
 * compiled Vector API code it kills the JVM. So the kernels never read a mapping: rows are
 * copied here a few at a time, by the JVM, into a buffer small enough to stay in the core's own
 * caches, and the vector code reads the copy. The weights are still read from memory once per
 * pass; what the copies cost is time: the copying and the arithmetic no longer overlap. Weights
 * in the model's own memory (a COPY load), and in a mapping the model was told to read directly
 * ({@link LlamaModel.Options#withDirectMappedReads()}), are read where they are.
 *
 * <p>Each member of the {@link ThreadTeam} has its own stage; a stage is not for sharing.
 */
final class WeightStage {
  /** Bytes copied at a time when rows are small: well inside a core's first-level cache. */
  static final long COPY_BYTES = 16L << 10;
  /** Rows per copy at least, where a matrix has them: the decode kernel takes four rows at a time. */
  static final int MIN_ROWS = 4;

  private final MemorySegment buffer;

  /** A stage that holds {@code bytes}. */
  WeightStage(long bytes) {
    // Automatic: a session (which owns the stages) has no close, and the buffer is small.
    this.buffer = Arena.ofAuto().allocate(bytes, 64);
  }

  /** The bytes a stage needs for these matrices: {@link #COPY_BYTES}, or four of the longest rows. */
  static long bytesFor(List<Matrix> matrices) {
    long bytes = COPY_BYTES;
    for (Matrix m : matrices) {
      bytes = Math.max(bytes, MIN_ROWS * m.rowBytes());
    }
    return bytes;
  }

  /** How many rows of {@code w} one {@link #copy} takes: a multiple of four where more than four fit. */
  int rowsPerCopy(Matrix w) {
    long rows = Math.max(1, COPY_BYTES / w.rowBytes());
    if (rows < MIN_ROWS) {
      rows = Math.min(MIN_ROWS, buffer.byteSize() / w.rowBytes());
    }
    if (rows > MIN_ROWS) {
      rows -= rows % MIN_ROWS;
    }
    return (int) Math.max(1, rows);
  }

  /**
   * Copies rows {@code [first, end)} of {@code w} to the start of the buffer and returns it.
   *
   * @throws InternalError (from the JVM, possibly a little later, at the thread's next safepoint
   *     poll) if the mapping cannot be read: the file was truncated
   */
  MemorySegment copy(Matrix w, int first, int end) {
    long rowBytes = w.rowBytes();
    MemorySegment.copy(w.data(), first * rowBytes, buffer, 0, (end - first) * rowBytes);
    return buffer;
  }
}
