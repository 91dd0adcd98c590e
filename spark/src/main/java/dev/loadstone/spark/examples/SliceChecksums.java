package dev.loadstone.spark.examples;

import dev.loadstone.store.Partition;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A checksum of a tensor's bytes that slices add up to: the sum, modulo 2<sup>64</sup>, over
 * every byte of the tensor of {@code mix(position) * (byte + 1)}, where {@code position} is the
 * byte's offset in the <em>whole</em> tensor. A rank computes it over its slice, placing each
 * byte where it lies in the whole tensor; the ranks' sums add up to the whole tensor's exactly
 * when the slices tile it (every byte once, at its place, with its value) — short of a
 * collision of 64-bit sums.
 */
public final class SliceChecksums {
  private static final int CHUNK = 1 << 16;

  private SliceChecksums() {}

  /** The checksum of a whole tensor's bytes. */
  public static long whole(MemorySegment bytes) {
    return block(bytes, 0, 0, bytes.byteSize(), new byte[(int) Math.min(CHUNK, Math.max(1, bytes.byteSize()))]);
  }

  /**
   * The checksum of a rank's slice, as its share of the whole tensor's checksum.
   *
   * @param slice the slice's bytes, laid out as the slice's shape
   * @param shape the whole tensor's shape
   * @param elementBytes the bytes of one element (whole-byte dtypes)
   * @param cut what the rank holds of the tensor
   */
  public static long slice(MemorySegment slice, long[] shape, int elementBytes, Partition.Slice cut) {
    int d = cut.dimension();
    long outer = 1;
    for (int i = 0; i < d; i++) {
      outer *= shape[i];
    }
    long inner = elementBytes;
    for (int i = d + 1; i < shape.length; i++) {
      inner *= shape[i];
    }
    long local = 0;
    for (Partition.Range range : cut.ranges()) {
      local += range.length();
    }
    if (slice.byteSize() != outer * local * inner) {
      throw new IllegalArgumentException(cut.tensor() + ": the slice holds " + slice.byteSize() + " bytes, its shape "
          + outer * local * inner);
    }
    byte[] buffer = new byte[(int) Math.min(CHUNK, Math.max(1, inner))];
    long sum = 0;
    for (long a = 0; a < outer; a++) {
      long l = 0;
      for (Partition.Range range : cut.ranges()) {
        // Rows range.from .. range.to of the whole tensor are rows l .. of the slice: contiguous.
        long from = ((a * local + l) * inner);
        long to = ((a * shape[d] + range.from()) * inner);
        sum += block(slice, from, to, range.length() * inner, buffer);
        l += range.length();
      }
    }
    return sum;
  }

  /** The sum over {@code length} bytes at {@code from}, placed at {@code position} in the whole tensor. */
  private static long block(MemorySegment bytes, long from, long position, long length, byte[] buffer) {
    long sum = 0;
    for (long done = 0; done < length; ) {
      int n = (int) Math.min(buffer.length, length - done);
      MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, from + done, buffer, 0, n);
      long p = position + done;
      for (int i = 0; i < n; i++) {
        sum += mix(p + i) * ((buffer[i] & 0xff) + 1);
      }
      done += n;
    }
    return sum;
  }

  /** SplitMix64's finalizer: a well-spread 64-bit value per position. */
  private static long mix(long x) {
    long z = x + 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
