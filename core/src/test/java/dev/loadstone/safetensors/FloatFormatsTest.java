package dev.loadstone.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import dev.loadstone.safetensors.ReferenceValues.Binary;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/** Decoding every code of every float dtype, and encoding float32 to F16 and BF16. */
class FloatFormatsTest {

  /**
   * The small formats by their definitions (OCP 8-bit floats, OCP MX, and the FNUZ variants):
   * layout, bias, and the codes the spec reserves for NaN and infinity.
   */
  static Stream<Arguments> smallFormats() {
    return Stream.of(
        arguments(DType.F8_E4M3, new Binary(4, 3, 7), Set.of(0x7F, 0xFF), Set.of()),
        arguments(DType.F8_E5M2, new Binary(5, 2, 15), Set.of(0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF), Set.of(0x7C, 0xFC)),
        arguments(DType.F8_E4M3FNUZ, new Binary(4, 3, 8), Set.of(0x80), Set.of()),
        arguments(DType.F8_E5M2FNUZ, new Binary(5, 2, 16), Set.of(0x80), Set.of()),
        arguments(DType.F6_E2M3, new Binary(2, 3, 1), Set.of(), Set.of()),
        arguments(DType.F6_E3M2, new Binary(3, 2, 3), Set.of(), Set.of()),
        arguments(DType.F4, new Binary(2, 1, 1), Set.of(), Set.of()));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("smallFormats")
  void everyCodeOfASmallFloatDecodesExactly(DType dtype, Binary format, Set<Integer> nanCodes,
      Set<Integer> infinityCodes) {
    assertEquals(dtype.bits(), 1 + format.exponentBits() + format.mantissaBits());
    for (int code = 0; code < 1 << dtype.bits(); code++) {
      boolean negative = (code & format.signBit()) != 0;
      double expected = nanCodes.contains(code) ? Double.NaN
          : infinityCodes.contains(code) ? Double.POSITIVE_INFINITY
          : format.magnitude(code & (format.signBit() - 1));
      expected = negative && !Double.isNaN(expected) ? -expected : expected;
      assertBitsEqual(expected, dtype.decodeFloat(code), dtype, code);
    }
  }

  @Test
  void everyE8m0CodeIsAPowerOfTwoExceptNaN() {
    for (int code = 0; code < 255; code++) {
      assertBitsEqual(Math.pow(2, code - 127), DType.F8_E8M0.decodeFloat(code), DType.F8_E8M0, code);
    }
    assertTrue(Float.isNaN(DType.F8_E8M0.decodeFloat(0xFF)));
  }

  @Test
  void everyF16CodeDecodesExactly() {
    for (int code = 0; code < 1 << 16; code++) {
      assertBitsEqual(Binary.HALF.decodeIeee(code), DType.F16.decodeFloat(code), DType.F16, code);
    }
  }

  @Test
  void everyBf16CodeDecodesExactly() {
    for (int code = 0; code < 1 << 16; code++) {
      assertBitsEqual(Binary.BFLOAT16.decodeIeee(code), DType.BF16.decodeFloat(code), DType.BF16, code);
    }
  }

  @ParameterizedTest(name = "{0} {1} is {2}")
  @CsvSource({
      "F8_E4M3, 0x7E, 448", "F8_E4M3, 0xFE, -448", "F8_E4M3, 0x01, 0x1p-9", "F8_E4M3, 0x08, 0x1p-6",
      "F8_E4M3, 0x38, 1", "F8_E4M3, 0x00, 0.0", "F8_E4M3, 0x80, -0.0", "F8_E4M3, 0x7F, NaN", "F8_E4M3, 0xFF, NaN",
      "F8_E4M3, 0x78, 256",
      "F8_E5M2, 0x7B, 57344", "F8_E5M2, 0x01, 0x1p-16", "F8_E5M2, 0x3C, 1", "F8_E5M2, 0x80, -0.0",
      "F8_E5M2, 0x7C, Infinity", "F8_E5M2, 0xFC, -Infinity", "F8_E5M2, 0x7D, NaN", "F8_E5M2, 0x7F, NaN",
      "F8_E5M2, 0xFD, NaN",
      "F8_E4M3FNUZ, 0x7F, 240", "F8_E4M3FNUZ, 0xFF, -240", "F8_E4M3FNUZ, 0x01, 0x1p-10",
      "F8_E4M3FNUZ, 0x40, 1", "F8_E4M3FNUZ, 0x80, NaN", "F8_E4M3FNUZ, 0x00, 0.0",
      "F8_E5M2FNUZ, 0x7F, 57344", "F8_E5M2FNUZ, 0xFF, -57344", "F8_E5M2FNUZ, 0x01, 0x1p-17",
      "F8_E5M2FNUZ, 0x40, 1", "F8_E5M2FNUZ, 0x80, NaN", "F8_E5M2FNUZ, 0x7C, 32768",
      "F8_E8M0, 0x7F, 1", "F8_E8M0, 0x80, 2", "F8_E8M0, 0x00, 0x1p-127", "F8_E8M0, 0xFE, 0x1p127",
      "F8_E8M0, 0xFF, NaN",
      "F6_E2M3, 0x1F, 7.5", "F6_E2M3, 0x3F, -7.5", "F6_E2M3, 0x01, 0.125", "F6_E2M3, 0x08, 1",
      "F6_E2M3, 0x20, -0.0", "F6_E2M3, 0x2A, -1.25",
      "F6_E3M2, 0x1F, 28", "F6_E3M2, 0x3F, -28", "F6_E3M2, 0x01, 0.0625", "F6_E3M2, 0x0C, 1",
      "F6_E3M2, 0x20, -0.0",
      "F16, 0x7BFF, 65504", "F16, 0x0001, 0x1p-24", "F16, 0x0400, 0x1p-14", "F16, 0x3C00, 1",
      "F16, 0x8000, -0.0", "F16, 0x7C00, Infinity", "F16, 0xFC00, -Infinity", "F16, 0x7E00, NaN", "F16, 0x7C01, NaN",
      "BF16, 0x3F80, 1", "BF16, 0x7F7F, 0x1.fep127", "BF16, 0x0001, 0x1p-133", "BF16, 0x8000, -0.0",
      "BF16, 0xFF80, -Infinity", "BF16, 0x7FC0, NaN", "BF16, 0x7F81, NaN"})
  void specValuesDecodeExactly(DType dtype, String codeHex, String expected) {
    int code = Integer.parseInt(codeHex.substring(2), 16);
    assertBitsEqual(Float.parseFloat(expected), dtype.decodeFloat(code), dtype, code);
  }

  @Test
  void f4HoldsTheEightE2m1MagnitudesAndTheirNegatives() {
    float[] values = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    for (int code = 0; code < 16; code++) {
      assertBitsEqual(values[code], DType.F4.decodeFloat(code), DType.F4, code);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("sixteenBitFormats")
  void randomFloatsEncodeToTheNearestEvenCode(DType dtype, Binary format) {
    Random random = new Random(dtype.ordinal());
    for (int i = 0; i < 200_000; i++) {
      // Half of the patterns anywhere, half with exponents around the 16-bit formats' range.
      int bits = i % 2 == 0 ? random.nextInt() : random.nextInt(0x3000_0000, 0x4800_0000) | (random.nextInt() & 0x8000_0000);
      assertEncodes(dtype, format, Float.intBitsToFloat(bits));
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("sixteenBitFormats")
  void midpointsRoundToEvenAndTheirNeighboursToTheNearerCode(DType dtype, Binary format) {
    for (int code = 0; code < format.allOnesExponent(); code++) {
      int even = code % 2 == 0 ? code : code + 1;
      float midpoint = (float) ((format.magnitude(code) + format.magnitude(code + 1)) / 2);
      for (int sign : new int[] {0, format.signBit()}) {
        float signed = sign == 0 ? midpoint : -midpoint;
        assertEquals(even | sign, dtype.encodeFloat(signed), () -> dtype + " midpoint " + signed);
        assertEquals(code | sign, dtype.encodeFloat(Math.nextAfter(signed, 0.0)), () -> dtype + " below " + signed);
        assertEquals(code + 1 | sign, dtype.encodeFloat(Math.nextAfter(signed, signed * Double.POSITIVE_INFINITY)), () -> dtype + " above " + signed);
      }
    }
  }

  @ParameterizedTest(name = "{0} {3}")
  @CsvSource({
      "F16, 0x3F800000, 0x3C00, one",
      "F16, 0x477FE000, 0x7BFF, largest finite 65504",
      "F16, 0x477FEFFF, 0x7BFF, just below 65520",
      "F16, 0x477FF000, 0x7C00, 65520 is a tie that rounds to infinity",
      "F16, 0x4E6E6B28, 0x7C00, 1e9 overflows",
      "F16, 0xFF800000, 0xFC00, negative infinity",
      "F16, 0x33800000, 0x0001, smallest subnormal 2^-24",
      "F16, 0x33000000, 0x0000, 2^-25 is a tie that rounds to zero",
      "F16, 0x33000001, 0x0001, just above 2^-25",
      "F16, 0x33C00000, 0x0002, 1.5 x 2^-24 is a tie that rounds to even 2",
      "F16, 0x387FE000, 0x0400, the largest subnormal's midpoint rounds up to the smallest normal",
      "F16, 0x80000000, 0x8000, negative zero",
      "F16, 0x3F801000, 0x3C00, 1 + 2^-11 is a tie that rounds to even",
      "F16, 0x3F803000, 0x3C02, 1 + 3 x 2^-11 is a tie that rounds to even",
      "BF16, 0x3F800000, 0x3F80, one",
      "BF16, 0x3F808000, 0x3F80, 1 + 2^-8 is a tie that rounds to even",
      "BF16, 0x3F818000, 0x3F82, 1 + 3 x 2^-8 is a tie that rounds to even",
      "BF16, 0x3F808001, 0x3F81, just above a tie",
      "BF16, 0x3F807FFF, 0x3F80, just below a tie",
      "BF16, 0x7F7FFFFF, 0x7F80, the largest float overflows",
      "BF16, 0x7F7F7FFF, 0x7F7F, just below the overflow threshold",
      "BF16, 0x7F800000, 0x7F80, infinity",
      "BF16, 0x80000000, 0x8000, negative zero",
      "BF16, 0x00010000, 0x0001, smallest subnormal 2^-133",
      "BF16, 0x00008000, 0x0000, 2^-134 is a tie that rounds to zero",
      "BF16, 0x00018000, 0x0002, 1.5 x 2^-133 is a tie that rounds to even 2"})
  void specialFloatsEncodeAsTheStandardSays(DType dtype, String floatBitsHex, String expectedHex, String what) {
    float value = Float.intBitsToFloat(Integer.parseUnsignedInt(floatBitsHex.substring(2), 16));
    assertEquals(Integer.parseInt(expectedHex.substring(2), 16), dtype.encodeFloat(value), what);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("sixteenBitFormats")
  void nansEncodeAsNansNeverAsInfinity(DType dtype, Binary format) {
    for (int bits : new int[] {0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7F800100, 0x7FFFFFFF, 0x7FA00000}) {
      long code = dtype.encodeFloat(Float.intBitsToFloat(bits));
      long magnitude = code & (format.signBit() - 1);
      assertTrue(magnitude > format.allOnesExponent(), () -> Integer.toHexString(bits) + " became " + Long.toHexString(code));
    }
  }

  @Test
  void bf16NansAreQuietAndKeepTheirSign() {
    assertEquals(0xFFC0, DType.BF16.encodeFloat(Float.intBitsToFloat(0xFF800001)) & 0xFFC0);
    assertEquals(0x7FC0, DType.BF16.encodeFloat(Float.intBitsToFloat(0x7F800001)) & 0xFFC0);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("sixteenBitFormats")
  void everyNonNanCodeSurvivesADecodeEncodeRoundTrip(DType dtype, Binary format) {
    for (int code = 0; code < 1 << 16; code++) {
      if ((code & (format.signBit() - 1)) <= format.allOnesExponent()) {
        int c = code;
        assertEquals(code, dtype.encodeFloat(dtype.decodeFloat(code)), () -> dtype + " " + Integer.toHexString(c));
      }
    }
  }

  static Stream<Arguments> sixteenBitFormats() {
    return Stream.of(arguments(DType.F16, Binary.HALF), arguments(DType.BF16, Binary.BFLOAT16));
  }

  private static void assertEncodes(DType dtype, Binary format, float value) {
    long actual = dtype.encodeFloat(value);
    if (Float.isNaN(value)) {
      assertTrue((actual & (format.signBit() - 1)) > format.allOnesExponent(), () -> dtype + " NaN " + Long.toHexString(actual));
    } else {
      assertEquals(format.nearestEven(value), actual, () -> dtype + " " + value + " (0x" + Integer.toHexString(Float.floatToRawIntBits(value)) + ")");
    }
  }

  /** Equal as float32 bit patterns (so -0 differs from 0), any NaN matching any NaN. */
  static void assertBitsEqual(double expected, float actual, DType dtype, long code) {
    if (Double.isNaN(expected)) {
      assertTrue(Float.isNaN(actual), () -> dtype + " 0x" + Long.toHexString(code) + " should be NaN, is " + actual);
      return;
    }
    assertEquals((double) (float) expected, expected, "the reference value is not a float32");
    assertEquals(Float.floatToRawIntBits((float) expected), Float.floatToRawIntBits(actual),
        () -> dtype + " 0x" + Long.toHexString(code) + ": expected " + expected + ", got " + actual);
  }
}
