package dev.loadstone.safetensors;

import dev.loadstone.internal.Posix;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * Appends bytes to a new file in writes that start and end on multiples of {@link #BLOCK} file
 * bytes, but for the file's last write. Linux caches what one write covers in folios as large
 * as the write allows, so a 2 MiB block written by two calls ends up in small pages, and loading
 * the file later maps 4 KiB pages instead of 2 MiB ones (a quarter slower, measured).
 *
 * <p>Whole blocks go to the sink straight from the caller's segment where it can be viewed
 * as a ByteBuffer (native memory, a mapping, a {@code byte[]}); a mapped source is paged in
 * first. Bytes short of a boundary, and heap segments that cannot be viewed as a ByteBuffer,
 * wait in one buffer of {@link #BLOCK} bytes. The sink receives the file from its first byte.
 */
final class BlockAlignedOutput {
  /** Where the writes go: the next bytes of the file, each buffer taken whole. */
  @FunctionalInterface
  interface Sink {
    void write(ByteBuffer bytes) throws IOException;
  }

  /** The file bytes every write but the last starts and ends on a multiple of: 2 MiB. */
  static final int BLOCK = 2 << 20;
  /** The most bytes handed to the sink at once: a ByteBuffer holds at most 2^31 - 1. */
  private static final long MAX_WRITE = 1L << 30;

  private final Sink sink;
  /** Bytes handed to the sink so far; {@code pending} holds the ones that follow. */
  private long flushed;
  private MemorySegment pending;
  private long pendingBytes;

  BlockAlignedOutput(Sink sink) {
    this.sink = sink;
  }

  /**
   * Writes {@code chunk} next in the file: whole blocks straight from the chunk where it can be
   * viewed as a ByteBuffer, the bytes around them through the buffer.
   */
  void append(MemorySegment chunk) throws IOException {
    long size = chunk.byteSize();
    boolean viewable = chunk.isNative() || viewableAsByteBuffer(chunk);
    for (long offset = 0; offset < size; ) {
      if (pendingBytes == 0 && flushed % BLOCK == 0 && viewable && size - offset >= BLOCK) {
        long length = Math.min(MAX_WRITE, size - offset) & -BLOCK;
        MemorySegment slice = chunk.asSlice(offset, length);
        if (slice.isMapped()) {
          // Map the source pages in first: a write whose source faults halfway makes Linux go on
          // in ever smaller steps, and the page cache then holds the file in 4 KiB folios.
          Posix.madvise(slice, Posix.MADV_POPULATE_READ);
        }
        sink.write(slice.asByteBuffer());
        flushed += length;
        offset += length;
        continue;
      }
      if (pending == null) {
        pending = Arena.ofAuto().allocate(BLOCK, 64);
      }
      long length = Math.min(BLOCK - (flushed + pendingBytes) % BLOCK, size - offset);
      MemorySegment.copy(chunk, offset, pending, pendingBytes, length);
      pendingBytes += length;
      offset += length;
      if ((flushed + pendingBytes) % BLOCK == 0) {
        flushPending();
      }
    }
  }

  /**
   * Hands the sink the bytes still waiting for a block boundary, as the file's last write,
   * and lets the buffer go. Call once, after the last {@link #append}.
   */
  void finish() throws IOException {
    flushPending();
    pending = null;
  }

  private void flushPending() throws IOException {
    if (pendingBytes > 0) {
      sink.write(pending.asSlice(0, pendingBytes).asByteBuffer());
      flushed += pendingBytes;
      pendingBytes = 0;
    }
  }

  /** Whether a heap segment is backed by a byte[] (only those become ByteBuffers). */
  private static boolean viewableAsByteBuffer(MemorySegment heap) {
    try {
      heap.asSlice(0, 0).asByteBuffer();
      return true;
    } catch (UnsupportedOperationException e) {
      return false;
    }
  }
}
