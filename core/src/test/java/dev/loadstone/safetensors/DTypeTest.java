package dev.loadstone.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.math.BigDecimal;
import java.util.Arrays;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

class DTypeTest {

  @Test
  void theFormatHasExactlyTheseTwentyTwoDtypes() {
    Set<String> names = Arrays.stream(DType.values()).map(DType::name).collect(Collectors.toSet());
    assertEquals(Set.of("BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "BF16",
        "F32", "F64", "C64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
        "F6_E2M3", "F6_E3M2", "F4"), names);
  }

  @ParameterizedTest(name = "{0} is {1} bits, {2}")
  @CsvSource({
      "BOOL, 8, BOOLEAN", "U8, 8, UNSIGNED", "I8, 8, SIGNED", "I16, 16, SIGNED", "U16, 16, UNSIGNED",
      "I32, 32, SIGNED", "U32, 32, UNSIGNED", "I64, 64, SIGNED", "U64, 64, UNSIGNED",
      "F16, 16, FLOAT", "BF16, 16, FLOAT", "F32, 32, FLOAT", "F64, 64, FLOAT", "C64, 64, COMPLEX",
      "F8_E4M3, 8, FLOAT", "F8_E5M2, 8, FLOAT", "F8_E8M0, 8, FLOAT", "F8_E4M3FNUZ, 8, FLOAT",
      "F8_E5M2FNUZ, 8, FLOAT", "F6_E2M3, 6, FLOAT", "F6_E3M2, 6, FLOAT", "F4, 4, FLOAT"})
  void eachDtypeHasItsSizeInBitsAndCategory(String name, int bits, DType.Category category) {
    DType dtype = DType.parse(name).orElseThrow();
    assertEquals(bits, dtype.bits());
    assertEquals(category, dtype.category());
    assertEquals(category == DType.Category.FLOAT, dtype.isFloatingPoint());
    assertEquals(category == DType.Category.SIGNED || category == DType.Category.UNSIGNED, dtype.isInteger());
    assertEquals(bits % 8 == 0, dtype.isByteSized());
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void parseFindsEveryDtypeByItsHeaderName(DType dtype) {
    assertEquals(Optional.of(dtype), DType.parse(dtype.name()));
  }

  @ParameterizedTest
  @ValueSource(strings = {"f32", "Bf16", "bf16", "f8_e4m3", "F8_e4m3", "bool", " F32", "F32 ", "", "FLOAT32",
      "F8_E4M3FN", "float16"})
  void parseIsCaseSensitiveAndExact(String name) {
    assertEquals(Optional.empty(), DType.parse(name));
  }

  @ParameterizedTest(name = "{1} elements of {0} take {2} bytes")
  @CsvSource({"F32, 3, 12", "U8, 5, 5", "F64, 2, 16", "C64, 2, 16", "F4, 2, 1", "F4, 6, 3", "F6_E2M3, 4, 3",
      "F6_E3M2, 8, 6", "BF16, 0, 0", "F4, 0, 0"})
  void byteSizeCountsPackedBits(DType dtype, long elements, long bytes) {
    assertEquals(bytes, dtype.byteSize(elements));
  }

  @ParameterizedTest(name = "{1} elements of {0}")
  @CsvSource({"F4, 1", "F4, 3", "F6_E2M3, 2", "F6_E3M2, 5", "F32, 4611686018427387904", "U8, 2305843009213693952"})
  void byteSizeRejectsPartialBytesAndOverflow(DType dtype, long elements) {
    assertThrows(ArithmeticException.class, () -> dtype.byteSize(elements));
  }

  @ParameterizedTest(name = "{0} {1} is {2}")
  @CsvSource({
      "I8, 0xFF, -1", "I8, 0x80, -128", "I8, 0x7F, 127", "I8, 0x1FF, -1", "U8, 0xFF, 255", "U8, 0x1FF, 255",
      "I16, 0x8000, -32768", "I16, 0xFFFF, -1", "U16, 0xFFFF, 65535", "I32, 0x80000000, -2147483648",
      "U32, 0xFFFFFFFF, 4294967295", "U32, 0x1FFFFFFFF, 4294967295",
      "I64, 0x8000000000000000, -9223372036854775808", "U64, 0x8000000000000000, 9223372036854775808",
      "U64, 0xFFFFFFFFFFFFFFFF, 18446744073709551615", "BOOL, 0x0, 0", "BOOL, 0x1, 1", "BOOL, 0x80, 1", "BOOL, 0x100, 0"})
  void integersDecodeAsTheirSignedOrUnsignedValue(DType dtype, String rawHex, String expected) {
    long raw = Long.parseUnsignedLong(rawHex.substring(2), 16);
    BigDecimal value = new BigDecimal(expected);
    assertEquals(value.doubleValue(), dtype.decodeDouble(raw));
    assertEquals(value.floatValue(), dtype.decodeFloat(raw));
  }

  @ParameterizedTest(name = "U64 {0} is {1} as float, {2} as double")
  @CsvSource({
      // 2^63 + 2^39 + 1: above the float midpoint 2^63 + 2^39 only by its last bit
      "0x8000008000000001, 0x1.000002p63, 0x1.0000010p63",
      "0x8000000000000001, 0x1p63, 0x1p63",
      "0xFFFFFFFFFFFFFFFF, 0x1p64, 0x1p64",
      // 2^64 - 2^11 is exact in a double; 2^64 - 2^10 - 1 lies below the double midpoint
      "0xFFFFFFFFFFFFF800, 0x1p64, 0x1.fffffffffffffp63",
      "0xFFFFFFFFFFFFFBFF, 0x1p64, 0x1.fffffffffffffp63"})
  void largeU64RoundsOnceToNearest(String rawHex, String asFloat, String asDouble) {
    long raw = Long.parseUnsignedLong(rawHex.substring(2), 16);
    assertEquals(Float.parseFloat(asFloat), DType.U64.decodeFloat(raw));
    assertEquals(Double.parseDouble(asDouble), DType.U64.decodeDouble(raw));
  }

  @ParameterizedTest
  @EnumSource(names = {"U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64"})
  void randomIntegersDecodeToTheNearestFloatAndDouble(DType dtype) {
    Random random = new Random(7 + dtype.ordinal());
    for (int i = 0; i < 20_000; i++) {
      // Vary the width, so small and large magnitudes both appear.
      long raw = random.nextLong() >>> random.nextInt(64);
      raw = random.nextBoolean() ? raw : -raw;
      BigDecimal exact = new BigDecimal(ReferenceValues.integer(dtype, raw));
      long r = raw;
      assertEquals(exact.floatValue(), dtype.decodeFloat(raw), () -> dtype + " " + Long.toHexString(r));
      assertEquals(exact.doubleValue(), dtype.decodeDouble(raw), () -> dtype + " " + Long.toHexString(r));
    }
  }

  @Test
  void f64DecodesExactlyToDoubleAndRoundedToFloat() {
    long raw = Double.doubleToRawLongBits(0.1);
    assertEquals(0.1, DType.F64.decodeDouble(raw));
    assertEquals(0.1f, DType.F64.decodeFloat(raw));
    assertEquals(Float.POSITIVE_INFINITY, DType.F64.decodeFloat(Double.doubleToRawLongBits(1e300)));
    assertEquals(-0.0f, DType.F64.decodeFloat(Double.doubleToRawLongBits(-1e-300)));
  }

  @Test
  void f32DecodesToTheSameFloatAndAnExactDouble() {
    int bits = 0x3DCCCCCD; // 0.1f
    assertEquals(0.1f, DType.F32.decodeFloat(bits & 0xFFFF_FFFFL));
    assertEquals((double) 0.1f, DType.F32.decodeDouble(bits & 0xFFFF_FFFFL));
    assertEquals(-0.0f, DType.F32.decodeFloat(0x8000_0000L));
  }

  @Test
  void complexValuesHaveNoSingleRealDecoding() {
    assertThrows(UnsupportedOperationException.class, () -> DType.C64.decodeFloat(0));
    assertThrows(UnsupportedOperationException.class, () -> DType.C64.decodeDouble(0));
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F64", "F16", "BF16"}, mode = EnumSource.Mode.EXCLUDE)
  void onlyF32F64F16AndBf16CanBeEncoded(DType dtype) {
    assertThrows(UnsupportedOperationException.class, () -> dtype.encodeFloat(1f));
  }

  @Test
  void encodingToF32AndF64KeepsTheValueBitForBit() {
    for (int bits : new int[] {0x3F800000, 0x80000000, 0x00000001, 0x7F800000, 0x7FC00001, 0xFF7FFFFF}) {
      float value = Float.intBitsToFloat(bits);
      assertEquals(bits & 0xFFFF_FFFFL, DType.F32.encodeFloat(value));
      // assertEquals(double, double) tells -0.0 from 0.0 and takes any NaN for any NaN
      assertEquals(value, Double.longBitsToDouble(DType.F64.encodeFloat(value)));
    }
  }
}
