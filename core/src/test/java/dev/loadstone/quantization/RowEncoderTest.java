package dev.loadstone.quantization;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Values are rounded once, from the exact product of their two factors, not twice (through a
 * float product rounded to nearest), on the Vector API path and the scalar one alike; checked
 * against an independent rounding of the exact double with {@link Math#rint}.
 */
class RowEncoderTest {

  /** What {@link RowEncoder#write} stores for the products, decoded; ordinary as a dequantizer would say. */
  private static double[] written(float[] quantized, float[] scales, DType dtype) {
    boolean ordinary = RowEncoder.ordinaryScales(scales, scales.length);
    for (float q : quantized) {
      ordinary &= q == 0 || Math.abs(q) >= 0x1p-16f && Math.abs(q) <= 0x1p17f;
    }
    return written(quantized, scales, ordinary, dtype);
  }

  private static double[] written(float[] quantized, float[] scales, boolean ordinary, DType dtype) {
    int count = quantized.length;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(dtype.byteSize(count));
      new RowEncoder(dtype, count).write(quantized, scales, count, ordinary, out, 0);
      double[] values = new double[count];
      for (int i = 0; i < count; i++) {
        long bits = switch (dtype) {
          case F64 -> out.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
          case F32 -> out.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i) & 0xFFFF_FFFFL;
          default -> out.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i) & 0xFFFFL;
        };
        values[i] = dtype.decodeDouble(bits);
      }
      return values;
    }
  }

  /** The product written alone and in a row of 67 (whole vectors and a remainder): the same. */
  private static double written(float quantized, float scale, DType dtype) {
    double alone = written(new float[] {quantized}, new float[] {scale}, dtype)[0];
    float[] quantizedRow = new float[67];
    float[] scaleRow = new float[67];
    java.util.Arrays.fill(quantizedRow, quantized);
    java.util.Arrays.fill(scaleRow, scale);
    for (double value : written(quantizedRow, scaleRow, dtype)) {
      assertEquals(alone, value, 0.0, "in a row");
    }
    return alone;
  }

  /**
   * {@code exact} rounded to nearest, ties to even, into a binary format of {@code precision}
   * significant bits, smallest normal exponent {@code minExponent} and largest finite value
   * {@code max}: scaled so that the last kept bit is 1, rounded by {@link Math#rint}.
   */
  private static double reference(double exact, int precision, int minExponent, double max) {
    if (exact == 0 || Double.isNaN(exact) || Double.isInfinite(exact)) {
      return exact;
    }
    int exponent = Math.max(Math.getExponent(exact), minExponent);
    double quantum = Math.scalb(1.0, exponent - (precision - 1));
    double rounded = Math.rint(exact / quantum) * quantum;
    return Math.abs(rounded) > max ? Math.copySign(Double.POSITIVE_INFINITY, exact) : rounded;
  }

  private static double reference(double exact, DType dtype) {
    return switch (dtype) {
      case BF16 -> reference(exact, 8, -126, 0x1.FEp127);
      case F16 -> reference(exact, 11, -14, 65504);
      case F32 -> (float) exact;
      default -> exact;
    };
  }

  @Test
  void aProductJustAboveAHalfwayPointRoundsUpThoughItsFloatIsTheHalfwayPoint() {
    // (1 + 2^-8 - 2^-20)(1 + 2^-20) = 1 + 2^-8 + 2^-28 - 2^-40: above the BF16 halfway point
    // 1 + 2^-8, though the float product is that point (and would round to even: 1).
    float q = 1 + 0x1p-8f - 0x1p-20f;
    float s = 1 + 0x1p-20f;
    assertEquals(1 + 0x1p-8f, q * s);
    assertEquals(1 + 0x1p-7, written(q, s, DType.BF16));
    assertEquals(-(1 + 0x1p-7), written(-q, s, DType.BF16));
    // F16: (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24, above the halfway point 1 + 2^-11; the float
    // product ties to 1 + 2^-11.
    float r = 1 + 0x1p-12f;
    assertEquals(1 + 0x1p-11f, r * r);
    assertEquals(1 + 0x1p-10, written(r, r, DType.F16));
  }

  @Test
  void exactHalfwayPointsGoToEven() {
    assertEquals(1.0, written(1 + 0x1p-8f, 1, DType.BF16));
    assertEquals(1 + 0x1p-6, written(1 + 0x1p-7f + 0x1p-8f, 1, DType.BF16));
    assertEquals(1 + 0x1p-6, written((1 + 0x1p-7f + 0x1p-8f) / 4, 4, DType.BF16));
  }

  @Test
  void f32AndF64TakeTheProductRoundedOnce() {
    float q = 1 + 0x1p-20f;
    float s = 1 + 0x1p-5f + 0x1p-23f;
    assertEquals((float) ((double) q * s), written(q, s, DType.F32));
    assertEquals((double) q * s, written(q, s, DType.F64));
  }

  @Test
  void randomProductsOfEveryMagnitudeRoundAsTheExactValue() {
    SplittableRandom random = new SplittableRandom(20261203);
    int count = 1 << 16;
    float[] quantized = new float[count];
    float[] scales = new float[count];
    float[] fp8 = new float[256];
    for (int bits = 0; bits < 256; bits++) {
      fp8[bits] = (float) DType.F8_E4M3.decodeDouble(bits);
    }
    for (int i = 0; i < count; i++) {
      // Runs of 64 ordinary products (which whole vectors take) between runs of anything.
      boolean ordinary = (i / 64) % 2 == 0;
      quantized[i] = switch (ordinary ? random.nextInt(2) : random.nextInt(3)) {
        case 0 -> fp8[random.nextInt(256) & (ordinary ? 0xFE : 0xFF)];   // FP8 weights (NaN only among the others)
        case 1 -> random.nextInt(31) - 15;            // 4-bit integers minus their zero point
        default -> Float.intBitsToFloat(random.nextInt());   // anything, for the rounding rule
      };
      // Scales with full mantissas over the whole range: subnormal, tiny, ordinary and huge.
      int exponent = switch (ordinary ? 2 : random.nextInt(4)) {
        case 0 -> random.nextInt(0, 20);
        case 1 -> random.nextInt(20, 60);
        case 2 -> random.nextInt(100, 140);
        default -> random.nextInt(200, 256);
      };
      scales[i] = Float.intBitsToFloat((random.nextInt(2) << 31) | (exponent << 23) | random.nextInt(1 << 23));
      if (random.nextInt(64) == 0) {
        scales[i] = random.nextBoolean() ? 0f : -0f;
      }
    }
    // The ordinary runs alone, written as ordinary (no per-vector check): the same rule.
    int ordinaryCount = count / 2;
    float[] ordinaryQuantized = new float[ordinaryCount];
    float[] ordinaryScales = new float[ordinaryCount];
    for (int i = 0, at = 0; i < count; i++) {
      if ((i / 64) % 2 == 0) {
        ordinaryQuantized[at] = quantized[i];
        ordinaryScales[at++] = scales[i];
      }
    }
    assertTrue(RowEncoder.ordinaryScales(ordinaryScales, ordinaryCount));
    for (DType dtype : new DType[] {DType.BF16, DType.F16}) {
      double[] values = written(ordinaryQuantized, ordinaryScales, true, dtype);
      for (int i = 0; i < ordinaryCount; i++) {
        double expected = reference((double) ordinaryQuantized[i] * ordinaryScales[i], dtype);
        assertEquals(expected, values[i], 0.0, "ordinary " + dtype + " of " + ordinaryQuantized[i] + " * " + ordinaryScales[i]);
        assertEquals(Math.copySign(1.0, expected), Math.copySign(1.0, values[i]), "the sign of zero");
      }
    }
    for (DType dtype : new DType[] {DType.BF16, DType.F16, DType.F32, DType.F64}) {
      double[] values = written(quantized, scales, false, dtype);
      for (int i = 0; i < count; i++) {
        double exact = (double) quantized[i] * scales[i];
        double expected = reference(exact, dtype);
        if (Double.isNaN(expected)) {
          assertTrue(Double.isNaN(values[i]), dtype + " of " + quantized[i] + " * " + scales[i]);
        } else {
          assertEquals(expected, values[i], 0.0, dtype + " of " + quantized[i] + " * " + scales[i]);
          assertEquals(Math.copySign(1.0, expected), Math.copySign(1.0, values[i]), "the sign of zero");
        }
        if (dtype == DType.BF16 || dtype == DType.F16) {
          // The scalar rule, which the Vector API path leaves the remainder and odd vectors to.
          float odd = RowEncoder.productRoundedToOdd(quantized[i], scales[i]);
          double scalar = dtype.decodeDouble(dtype.encodeFloat(odd));
          assertEquals(Double.doubleToLongBits(values[i]), Double.doubleToLongBits(scalar),
              "scalar and vector paths of " + quantized[i] + " * " + scales[i]);
        }
      }
    }
  }

  @Test
  void ordinaryScalesAreZeroOrBetweenTwoToTheMinusAndPlus64() {
    assertTrue(RowEncoder.ordinaryScales(new float[] {0f, -0f, 0x1p-64f, -0x1p64f, 1e-3f}, 5));
    for (float outside : new float[] {0x1p-65f, 0x1.000002p64f, Float.MIN_VALUE, Float.NaN, Float.POSITIVE_INFINITY}) {
      assertTrue(!RowEncoder.ordinaryScales(new float[] {1f, outside}, 2), "not ordinary: " + outside);
      assertTrue(RowEncoder.ordinaryScales(new float[] {1f, outside}, 1), "only the first count are looked at");
    }
  }
}
