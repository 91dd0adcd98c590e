package dev.loadstone.safetensors;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Feeds a conversion kernel from a file mapping through a small buffer. A fault in a file
 * mapping (the file was truncated after it was mapped) becomes an exception only inside the
 * JVM's own copy routine; in compiled vector code or in native code it kills the JVM (seen with
 * JDK 25). So kernels that read with vector or native loads read a copy instead: a block at a
 * time, copied by the JVM into a buffer small enough to stay in the first-level cache, which
 * adds no memory traffic.
 */
final class FaultSafeStaging {
  /** The kernel's contract: converts a prefix of {@code count} elements, returns its length. */
  @FunctionalInterface
  interface Kernel {
    long convert(MemorySegment source, long sourceOffset, MemorySegment target, long targetOffset, long count);
  }

  /** Bytes of source per block: a multiple of every kernel's step, and well inside L1. */
  static final long BLOCK_BYTES = 16L << 10;

  private FaultSafeStaging() {}

  /**
   * Runs {@code kernel} over {@code count} elements of {@code sourceBytes} bytes each, through
   * a staging buffer if {@code source} is a file mapping and directly otherwise.
   *
   * @return how many elements were converted, from the first on; the caller converts the rest
   */
  static long convert(MemorySegment source, long sourceOffset, int sourceBytes, MemorySegment target,
      long targetOffset, int targetBytes, long count, Kernel kernel) {
    if (!source.isMapped()) {
      return kernel.convert(source, sourceOffset, target, targetOffset, count);
    }
    long blockElements = BLOCK_BYTES / sourceBytes;
    long done = 0;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment stage = arena.allocate(BLOCK_BYTES, 64);
      while (done < count) {
        long n = Math.min(blockElements, count - done);
        MemorySegment.copy(source, sourceOffset + done * sourceBytes, stage, 0, n * sourceBytes);
        long converted = kernel.convert(stage, 0, target, targetOffset + done * targetBytes, n);
        done += converted;
        if (converted < n) {
          break;
        }
      }
    }
    return done;
  }
}
