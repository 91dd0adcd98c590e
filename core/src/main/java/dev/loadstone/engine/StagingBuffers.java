package dev.loadstone.engine;

import dev.loadstone.internal.Posix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.function.Consumer;

/**
 * The staging buffers of a load's reads: one per reading thread at most, made when first
 * needed, reused, and freed together when the load ends. They are mapped (page-aligned, given
 * back to the system at the end), not malloc'd: glibc keeps freed large blocks in its heaps once
 * its threshold has grown, which would leave a load's staging resident after it.
 */
final class StagingBuffers implements AutoCloseable {
  private final long bytes;
  private final long alignment;
  private final Arena arena = Arena.ofShared();
  private final BlockingQueue<MemorySegment> free;

  /**
   * @param readers how many threads read at once
   * @param bytes the size of each buffer
   * @param alignment the alignment of each buffer where it cannot be mapped
   */
  StagingBuffers(int readers, long bytes, long alignment) {
    this.bytes = bytes;
    this.alignment = alignment;
    this.free = new ArrayBlockingQueue<>(readers);
  }

  /**
   * Lends a buffer to {@code use} and takes it back afterwards.
   *
   * @throws IllegalArgumentException if {@code needed} bytes do not fit a buffer
   */
  void withBuffer(long needed, Consumer<MemorySegment> use) {
    if (needed > bytes) {
      throw new IllegalArgumentException("a read of " + needed + " bytes does not fit a staging buffer");
    }
    MemorySegment buffer = free.poll();
    if (buffer == null) {
      buffer = Posix.mapAnonymous(bytes, arena).orElseGet(() -> arena.allocate(bytes, alignment));
    }
    try {
      use.accept(buffer);
    } finally {
      free.add(buffer);
    }
  }

  @Override
  public void close() {
    arena.close();
  }
}
