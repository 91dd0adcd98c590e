package dev.loadstone.quantization;

import dev.loadstone.safetensors.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Writes rows of exact products into memory as F64, F32, F16 or BF16, each value rounded once,
 * to nearest, ties to even. A value comes as two float factors ({@link Dequantizer.RowSink})
 * whose product a double holds exactly. F64 takes that product; F32 the float product, which
 * IEEE 754 rounds once from the exact one; F16 and BF16 the float product rounded to odd
 * ({@link #productRoundedToOdd}), then to 16 bits, which rounds the exact value, not a rounded
 * one. The float work runs on {@link VectorProducts} where the Vector API module is present.
 * One encoder per thread: it reuses its row buffers.
 */
final class RowEncoder {
  static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfDouble DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /**
   * Whether the Vector API module was resolved at start-up, so that {@link VectorProducts} may be
   * loaded; {@code -Dloadstone.scalar=true} turns it off.
   */
  static final boolean VECTOR_PRODUCTS = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
      && !Boolean.getBoolean("loadstone.scalar");

  /**
   * Below this magnitude a float product's rounding error may not be a float itself (it would
   * be below the subnormals), so {@link #productRoundedToOdd} takes the exact double instead.
   */
  static final float SMALLEST_EXACT_ERROR_PRODUCT = 0x1p-90f;

  private final DType target;
  private final short[] halves;
  private final float[] floats;
  private final double[] doubles;

  RowEncoder(DType target, int columns) {
    this.target = target;
    boolean half = target == DType.F16 || target == DType.BF16;
    this.halves = half ? new short[columns] : null;
    this.floats = half || target == DType.F32 ? new float[columns] : null;
    this.doubles = target == DType.F64 ? new double[columns] : null;
  }

  /** Whether values can be written as {@code dtype}. */
  static boolean supports(DType dtype) {
    return dtype == DType.F64 || dtype == DType.F32 || dtype == DType.F16 || dtype == DType.BF16;
  }

  /**
   * Whether each of {@code scales[0, count)} is zero or of a magnitude in [2^-64, 2^64]: with
   * quantized values that are zero or in [2^-16, 2^17], every product is then zero or of a
   * magnitude in [2^-80, 2^81], where its rounding error is a float
   * ({@link Dequantizer.RowSink}).
   */
  static boolean ordinaryScales(float[] scales, int count) {
    for (int i = 0; i < count; i++) {
      float magnitude = Math.abs(scales[i]);
      if (!(magnitude == 0 || magnitude >= 0x1p-64f && magnitude <= 0x1p64f)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Writes the {@code count} values {@code quantized[i] * scales[i]} at {@code offset} bytes into
   * {@code destination}; {@code ordinary} as {@link Dequantizer.RowSink} defines it.
   */
  void write(float[] quantized, float[] scales, int count, boolean ordinary, MemorySegment destination, long offset) {
    switch (target) {
      case F64 -> {
        for (int i = 0; i < count; i++) {
          doubles[i] = (double) quantized[i] * scales[i];
        }
        MemorySegment.copy(doubles, 0, destination, DOUBLE, offset, count);
      }
      case F32 -> {
        for (int i = 0; i < count; i++) {
          floats[i] = quantized[i] * scales[i];
        }
        MemorySegment.copy(floats, 0, destination, FLOAT, offset, count);
      }
      case BF16 -> {
        int done = VECTOR_PRODUCTS ? VectorProducts.bfloat16(quantized, scales, ordinary, destination, offset, count) : 0;
        for (int i = done; i < count; i++) {
          halves[i] = bfloat16(productRoundedToOdd(quantized[i], scales[i]));
        }
        MemorySegment.copy(halves, done, destination, SHORT, offset + 2L * done, count - done);
      }
      case F16 -> {
        int done = VECTOR_PRODUCTS ? VectorProducts.roundedToOdd(quantized, scales, ordinary, floats, count) : 0;
        for (int i = done; i < count; i++) {
          floats[i] = productRoundedToOdd(quantized[i], scales[i]);
        }
        for (int i = 0; i < count; i++) {
          halves[i] = Float.floatToFloat16(floats[i]);
        }
        MemorySegment.copy(halves, 0, destination, SHORT, offset, count);
      }
      default -> throw new IllegalArgumentException("cannot write values as " + target);
    }
  }

  /** float32 to bfloat16 bits, round to nearest even; NaNs stay (quiet) NaNs. */
  static short bfloat16(float value) {
    int bits = Float.floatToRawIntBits(value);
    if ((bits & 0x7FFF_FFFF) > 0x7F80_0000) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
  }

  /**
   * The exact product {@code quantized * scale} rounded to a float, to odd: the float itself
   * where the product is exact, else the one of the two floats around it whose last mantissa
   * bit is 1. The float product's rounding error is exact too ({@code fma}), and says which
   * way the exact product lies; where it might not be (tiny, huge or NaN products), the exact
   * double decides.
   */
  static float productRoundedToOdd(float quantized, float scale) {
    float product = quantized * scale;
    float magnitude = Math.abs(product);
    if (magnitude >= SMALLEST_EXACT_ERROR_PRODUCT && magnitude <= Float.MAX_VALUE) {
      float error = Math.fma(quantized, scale, -product);
      int bits = Float.floatToRawIntBits(product);
      if (error != 0 && (bits & 1) == 0) {
        // Away from zero where the exact product lies beyond the float, else towards it.
        bits += ((Float.floatToRawIntBits(error) ^ bits) >> 31) | 1;
      }
      return Float.intBitsToFloat(bits);
    }
    if (product == 0 && (quantized == 0 || scale == 0)) {
      return product;   // an exact zero, of the right sign
    }
    return roundToOdd((double) quantized * scale);
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
