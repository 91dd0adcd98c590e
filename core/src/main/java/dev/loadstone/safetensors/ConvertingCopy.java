package dev.loadstone.safetensors;

import dev.loadstone.safetensors.StreamingKernels.Widening;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/** Element-wise copies between dtypes, with fast paths for the common float conversions. */
final class ConvertingCopy {
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /**
   * Whether the Vector API module was resolved at start-up, so that {@link VectorKernels} may be
   * loaded; {@code -Dloadstone.scalar=true} turns the kernels off.
   */
  static final boolean VECTOR_KERNELS = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
      && !Boolean.getBoolean("loadstone.scalar");

  private ConvertingCopy() {}

  /** Whether {@link #convert} supports copying {@code from} into {@code to}. */
  static boolean supports(DType from, DType to) {
    if (from == to) {
      return true;
    }
    boolean realSource = from != DType.C64;
    boolean floatTarget = to == DType.F32 || to == DType.F16 || to == DType.BF16 || to == DType.F64;
    return realSource && floatTarget;
  }

  /**
   * Copies {@code count} elements starting at element {@code first} of {@code source} (of
   * dtype {@code from}) to {@code target} at byte {@code targetOffset}, as dtype {@code to}.
   */
  static void convert(MemorySegment source, DType from, long first, MemorySegment target,
      long targetOffset, DType to, long count) {
    if (!supports(from, to)) {
      throw new UnsupportedOperationException("cannot convert " + from + " to " + to
          + ": conversions go from real dtypes to F32, F16, BF16 or F64");
    }
    long bits = from.bits();
    // floor(byteSize * 8 / bits), without overflowing for any segment size
    long sourceElements = source.byteSize() / bits * 8 + source.byteSize() % bits * 8 / bits;
    Objects.checkFromIndexSize(first, count, sourceElements);
    if (from == to) {
      if ((first * bits) % 8 != 0 || (count * bits) % 8 != 0) {
        throw new IllegalArgumentException("elements [" + first + ", " + (first + count) + ") of "
            + from + " do not start and end on byte boundaries");
      }
      long sourceOffset = first * bits / 8;
      long bytes = count * bits / 8;
      long streamed = StreamingKernels.copy(source, sourceOffset, target, targetOffset, bytes);
      MemorySegment.copy(source, sourceOffset + streamed, target, targetOffset + streamed, bytes - streamed);
      return;
    }
    long targetBytes = Math.multiplyExact(count, (long) to.bits() / 8);
    Objects.checkFromIndexSize(targetOffset, targetBytes, target.byteSize());
    if (to == DType.F32 && from == DType.BF16) {
      bf16ToF32(source, first * 2, target, targetOffset, count);
    } else if (to == DType.F32 && from == DType.F16) {
      f16ToF32(source, first * 2, target, targetOffset, count);
    } else if (from == DType.F32 && to == DType.BF16) {
      f32ToBf16(source, first * 4, target, targetOffset, count);
    } else if (from == DType.F32 && to == DType.F16) {
      f32ToF16(source, first * 4, target, targetOffset, count);
    } else if (to == DType.F32 && from.bits() == 8 && from.isFloatingPoint()) {
      byteFloatToF32(MiniFloats.table(from), source, first, target, targetOffset, count);
    } else {
      general(source, from, first, target, targetOffset, to, count);
    }
  }

  /** An 8-bit float to F32 through its 256-entry table: one load and one store per element. */
  private static void byteFloatToF32(float[] table, MemorySegment source, long sourceOffset,
      MemorySegment target, long targetOffset, long count) {
    for (long i = 0; i < count; i++) {
      target.set(FLOAT, targetOffset + 4 * i, table[source.get(ValueLayout.JAVA_BYTE, sourceOffset + i) & 0xFF]);
    }
  }

  private static void bf16ToF32(MemorySegment source, long sourceOffset, MemorySegment target,
      long targetOffset, long count) {
    long done = StreamingKernels.widen(Widening.BF16, source, sourceOffset, target, targetOffset, count,
        ConvertingCopy::bf16ToF32Scalar);
    if (done == 0 && VECTOR_KERNELS) {
      done = VectorKernels.bf16ToF32(source, sourceOffset, target, targetOffset, count);
    }
    bf16ToF32Scalar(source, sourceOffset + 2 * done, target, targetOffset + 4 * done, count - done);
  }

  private static void bf16ToF32Scalar(MemorySegment source, long sourceOffset, MemorySegment target,
      long targetOffset, long count) {
    for (long i = 0; i < count; i++) {
      int bits = (source.get(SHORT, sourceOffset + 2 * i) & 0xFFFF) << 16;
      target.set(INT, targetOffset + 4 * i, bits);
    }
  }

  private static void f16ToF32(MemorySegment source, long sourceOffset, MemorySegment target,
      long targetOffset, long count) {
    long done = StreamingKernels.widen(Widening.F16, source, sourceOffset, target, targetOffset, count,
        ConvertingCopy::f16ToF32Scalar);
    f16ToF32Scalar(source, sourceOffset + 2 * done, target, targetOffset + 4 * done, count - done);
  }

  private static void f16ToF32Scalar(MemorySegment source, long sourceOffset, MemorySegment target,
      long targetOffset, long count) {
    for (long i = 0; i < count; i++) {
      target.set(FLOAT, targetOffset + 4 * i, Float.float16ToFloat(source.get(SHORT, sourceOffset + 2 * i)));
    }
  }

  private static void f32ToBf16(MemorySegment source, long sourceOffset, MemorySegment target,
      long targetOffset, long count) {
    for (long i = 0; i < count; i++) {
      target.set(SHORT, targetOffset + 2 * i, DType.floatToBFloat16(source.get(FLOAT, sourceOffset + 4 * i)));
    }
  }

  private static void f32ToF16(MemorySegment source, long sourceOffset, MemorySegment target,
      long targetOffset, long count) {
    for (long i = 0; i < count; i++) {
      target.set(SHORT, targetOffset + 2 * i, Float.floatToFloat16(source.get(FLOAT, sourceOffset + 4 * i)));
    }
  }

  private static void general(MemorySegment source, DType from, long first, MemorySegment target,
      long targetOffset, DType to, long count) {
    int bytes = to.bits() / 8;
    for (long i = 0; i < count; i++) {
      long raw = readBits(source, from, first + i);
      long offset = targetOffset + i * bytes;
      switch (to) {
        case F64 -> target.set(LONG, offset, Double.doubleToRawLongBits(from.decodeDouble(raw)));
        case F32 -> target.set(FLOAT, offset, from.decodeFloat(raw));
        case F16, BF16 -> target.set(SHORT, offset, (short) to.encodeFloat(decodeRoundedToOdd(from, raw)));
        default -> throw new AssertionError(to);
      }
    }
  }

  /**
   * Element {@code raw} of {@code from} as a float32 that rounds to F16 or BF16 exactly as the
   * element's own value would: the value itself where a float32 holds it, else the value rounded
   * to odd (truncated, last bit set). Rounding to nearest float32 first and then to 16 bits would
   * round twice, and a value just above a 16-bit midpoint could land on the midpoint and round to
   * even the wrong way. A float32 has at least two more significand bits than F16 and BF16 at every
   * magnitude they reach, which is what makes round-to-odd then round-to-nearest-even exact.
   */
  private static float decodeRoundedToOdd(DType from, long raw) {
    return switch (from) {
      case F64 -> roundToOdd(Double.longBitsToDouble(raw));
      case I32 -> roundToOdd((int) raw < 0, Math.abs((long) (int) raw));
      case U32 -> roundToOdd(false, raw & 0xFFFF_FFFFL);
      // Negating Long.MIN_VALUE gives itself, which read as unsigned is its magnitude 2^63.
      case I64 -> roundToOdd(raw < 0, raw < 0 ? -raw : raw);
      case U64 -> roundToOdd(false, raw);
      default -> from.decodeFloat(raw); // every other type fits a float32 exactly
    };
  }

  private static float roundToOdd(double value) {
    float nearest = (float) value;
    if (nearest == value || Double.isNaN(value)) {
      return nearest;
    }
    int bits = Float.floatToRawIntBits(nearest);
    if (Math.abs(nearest) > Math.abs(value)) {
      bits--; // one step towards zero: floats are sign-magnitude
    }
    return Float.intBitsToFloat(bits | 1);
  }

  /** Rounds to odd the integer {@code magnitude} (unsigned) with the given sign. */
  private static float roundToOdd(boolean negative, long magnitude) {
    int shift = Math.max(0, 64 - Long.numberOfLeadingZeros(magnitude) - 24);
    long kept = magnitude >>> shift;
    if ((magnitude & ((1L << shift) - 1)) != 0) {
      kept |= 1;
    }
    float value = Math.scalb((float) kept, shift);
    return negative ? -value : value;
  }

  /** The raw bits of element {@code index}, zero-extended. */
  static long readBits(MemorySegment data, DType dtype, long index) {
    int bits = dtype.bits();
    return switch (bits) {
      case 8 -> data.get(ValueLayout.JAVA_BYTE, index) & 0xFFL;
      case 16 -> data.get(SHORT, index * 2) & 0xFFFFL;
      case 32 -> data.get(INT, index * 4) & 0xFFFF_FFFFL;
      case 64 -> data.get(LONG, index * 8);
      default -> readPackedBits(data, index, bits);
    };
  }

  /** Reads element {@code index} of a densely packed sub-byte type (LSB-first bit order). */
  private static long readPackedBits(MemorySegment data, long index, int bits) {
    long bitPosition = index * bits;
    long byteIndex = bitPosition >>> 3;
    int shift = (int) (bitPosition & 7);
    int word = data.get(ValueLayout.JAVA_BYTE, byteIndex) & 0xFF;
    if (shift + bits > 8) {
      word |= (data.get(ValueLayout.JAVA_BYTE, byteIndex + 1) & 0xFF) << 8;
    }
    return (word >>> shift) & ((1 << bits) - 1);
  }
}
