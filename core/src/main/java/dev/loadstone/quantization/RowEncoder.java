package dev.loadstone.quantization;

import dev.loadstone.safetensors.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Writes rows of exact values (doubles) into memory as F64, F32, F16 or BF16, each value rounded
 * once, to nearest, ties to even: F64 as it is, F32 by the JVM's narrowing, F16 and BF16 by
 * {@link #roundToOdd} to float32 first (exact where the value is, its last bit made sticky where
 * it is not, so that the second rounding to 16 bits rounds the exact value, not a rounded one).
 * One encoder per thread: it reuses one row buffer.
 */
final class RowEncoder {
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfDouble DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final DType target;
  private final short[] halves;
  private final float[] floats;

  RowEncoder(DType target, int columns) {
    this.target = target;
    this.halves = target == DType.F16 || target == DType.BF16 ? new short[columns] : null;
    this.floats = target == DType.F32 ? new float[columns] : null;
  }

  /** Whether values can be written as {@code dtype}. */
  static boolean supports(DType dtype) {
    return dtype == DType.F64 || dtype == DType.F32 || dtype == DType.F16 || dtype == DType.BF16;
  }

  /** Writes {@code count} values at {@code offset} bytes into {@code destination}. */
  void write(double[] values, int count, MemorySegment destination, long offset) {
    switch (target) {
      case F64 -> MemorySegment.copy(values, 0, destination, DOUBLE, offset, count);
      case F32 -> {
        for (int i = 0; i < count; i++) {
          floats[i] = (float) values[i];
        }
        MemorySegment.copy(floats, 0, destination, FLOAT, offset, count);
      }
      case F16, BF16 -> {
        for (int i = 0; i < count; i++) {
          halves[i] = (short) target.encodeFloat(roundToOdd(values[i]));
        }
        MemorySegment.copy(halves, 0, destination, SHORT, offset, count);
      }
      default -> throw new IllegalArgumentException("cannot write values as " + target);
    }
  }

  /**
   * {@code value} as a float32 rounded to odd: the float itself where it is exact, else the one
   * of the two floats around it whose last mantissa bit is 1. Rounding that float to any format
   * at least two bits narrower (F16, BF16) gives the correctly rounded result of the double.
   */
  static float roundToOdd(double value) {
    float nearest = (float) value;
    if ((double) nearest == value || Double.isNaN(value)) {
      return nearest;
    }
    if ((Float.floatToRawIntBits(nearest) & 1) == 0) {
      return Math.nextAfter(nearest, value);
    }
    return nearest;
  }
}
