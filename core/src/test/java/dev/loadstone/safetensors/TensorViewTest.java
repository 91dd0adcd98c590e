package dev.loadstone.safetensors;

import static dev.loadstone.safetensors.TestSafeTensorsFiles.pack;
import static dev.loadstone.safetensors.TestSafeTensorsFiles.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import dev.loadstone.safetensors.ReferenceValues.Binary;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

class TensorViewTest {
  private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final DType[] FLOAT_TARGETS = {DType.F32, DType.F16, DType.BF16, DType.F64};

  @TempDir Path dir;

  // ---------------------------------------------------------------- element reads

  @ParameterizedTest
  @EnumSource(DType.class)
  void everyElementReadsBackAsStored(DType dtype) {
    long[] codes = randomCodes(dtype, 24, dtype.ordinal());
    codes[0] = 0;
    codes[1] = mask(dtype);
    TensorView view = view(dtype, new long[] {2, 3, 4}, codes);
    for (int i = 0; i < codes.length; i++) {
      int index = i;
      long code = codes[i];
      assertEquals(code, view.getBits(i), () -> dtype + " element " + index);
      if (dtype == DType.C64) {
        assertThrows(UnsupportedOperationException.class, () -> view.getFloat(index));
      } else {
        assertEquals(dtype.decodeFloat(code), view.getFloat(i));
        assertEquals(dtype.decodeDouble(code), view.getDouble(i));
      }
      if (dtype.isInteger()) {
        // sign-extended for signed types; U64 as its two's-complement bits
        assertEquals(ReferenceValues.integer(dtype, code).longValue(), view.getLong(i));
      } else if (dtype == DType.BOOL) {
        assertEquals(code != 0 ? 1 : 0, view.getLong(i));
        assertEquals(code != 0, view.getBoolean(i));
      } else {
        assertThrows(UnsupportedOperationException.class, () -> view.getLong(index));
      }
      if (dtype != DType.BOOL) {
        assertThrows(UnsupportedOperationException.class, () -> view.getBoolean(index));
      }
    }
  }

  @ParameterizedTest(name = "{0} 0x{1} is {2}")
  @CsvSource({"I8, FF, -1", "U8, FF, 255", "I8, 80, -128", "I16, 8000, -32768", "U16, FFFF, 65535",
      "I32, 80000000, -2147483648", "U32, FFFFFFFF, 4294967295", "I64, FFFFFFFFFFFFFFFF, -1",
      "U64, FFFFFFFFFFFFFFFF, -1", "U64, 8000000000000000, -9223372036854775808", "BOOL, 02, 1", "BOOL, 00, 0"})
  void getLongSignExtendsSignedTypesAndZeroExtendsUnsignedOnes(DType dtype, String hex, long expected) {
    assertEquals(expected, view(dtype, new long[] {1}, Long.parseUnsignedLong(hex, 16)).getLong(0));
  }

  @Test
  void f4StoresElementZeroInTheLowNibble() {
    TensorView view = TensorView.of("t", DType.F4, new long[] {4}, MemorySegment.ofArray(new byte[] {0x21, (byte) 0xF7}));
    assertArrayEquals(new long[] {0x1, 0x2, 0x7, 0xF}, allBits(view));
    assertArrayEquals(new float[] {0.5f, 1f, 6f, -6f}, view.toFloatArray());
  }

  @ParameterizedTest
  @EnumSource(names = {"F6_E2M3", "F6_E3M2"})
  void f6PacksElementsFromTheLeastSignificantBitOfByteZero(DType dtype) {
    // codes 0x01, 0x3F, 0x00, 0x2A in bits [0,6), [6,12), [12,18), [18,24)
    byte[] bytes = {(byte) 0xC1, 0x0F, (byte) 0xA8};
    TensorView view = TensorView.of("t", dtype, new long[] {4}, MemorySegment.ofArray(bytes));
    assertArrayEquals(new long[] {0x01, 0x3F, 0x00, 0x2A}, allBits(view));
  }

  @Test
  void f6E2m3ValuesFollowTheirPackedCodes() {
    byte[] bytes = {(byte) 0xC1, 0x0F, (byte) 0xA8};
    TensorView view = TensorView.of("t", DType.F6_E2M3, new long[] {4}, MemorySegment.ofArray(bytes));
    assertArrayEquals(new float[] {0.125f, -7.5f, 0f, -1.25f}, view.toFloatArray());
  }

  @ParameterizedTest
  @EnumSource(names = {"F4", "F6_E2M3", "F6_E3M2", "U8", "BF16"})
  void elementsAtTheEdgesReadOnlyTheirOwnBytes(DType dtype) {
    long[] codes = randomCodes(dtype, 8, 3);
    byte[] packed = pack(dtype, codes);
    byte[] surrounded = new byte[packed.length + 2];
    Arrays.fill(surrounded, (byte) 0xFF);
    System.arraycopy(packed, 0, surrounded, 1, packed.length);
    MemorySegment data = MemorySegment.ofArray(surrounded).asSlice(1, packed.length);
    TensorView view = TensorView.of("t", dtype, new long[] {8}, data);
    assertArrayEquals(codes, allBits(view));
  }

  @Test
  void indexIsRowMajor() {
    TensorView view = view(DType.I32, new long[] {2, 3, 4}, new long[24]);
    assertEquals(0, view.index(0, 0, 0));
    assertEquals(3, view.index(0, 0, 3));
    assertEquals(7, view.index(0, 1, 3));
    assertEquals(12, view.index(1, 0, 0));
    assertEquals(23, view.index(1, 2, 3));
  }

  @Test
  void indexRejectsWrongRankAndOutOfRangeCoordinates() {
    TensorView view = view(DType.I32, new long[] {2, 3, 4}, new long[24]);
    assertThrows(IllegalArgumentException.class, () -> view.index(1, 2));
    assertThrows(IllegalArgumentException.class, () -> view.index(1, 2, 3, 0));
    assertThrows(IndexOutOfBoundsException.class, () -> view.index(2, 0, 0));
    assertThrows(IndexOutOfBoundsException.class, () -> view.index(0, 3, 0));
    assertThrows(IndexOutOfBoundsException.class, () -> view.index(0, 0, -1));
  }

  @Test
  void readsOutsideTheTensorThrowIndexOutOfBounds() {
    TensorView view = view(DType.F32, new long[] {2, 2}, new long[4]);
    assertThrows(IndexOutOfBoundsException.class, () -> view.getBits(-1));
    assertThrows(IndexOutOfBoundsException.class, () -> view.getBits(4));
    assertThrows(IndexOutOfBoundsException.class, () -> view.getFloat(4));
    assertThrows(IndexOutOfBoundsException.class, () -> view.getDouble(Long.MAX_VALUE));
  }

  @Test
  void aScalarHasRankZeroAndOneElement() {
    TensorView scalar = view(DType.F32, new long[0], Float.floatToRawIntBits(2.5f));
    assertEquals(0, scalar.rank());
    assertEquals(1, scalar.elementCount());
    assertEquals(0, scalar.index());
    assertEquals(2.5f, scalar.getFloat(0));
    assertThrows(IndexOutOfBoundsException.class, () -> scalar.slice(0, 0, 1));
  }

  // ---------------------------------------------------------------- slices

  @ParameterizedTest(name = "axis {0} [{1}, {2})")
  @CsvSource({"0, 0, 3", "0, 1, 3", "0, 2, 3", "0, 1, 1", "1, 0, 4", "1, 1, 3", "1, 3, 4", "1, 2, 2", "2, 0, 5",
      "2, 2, 5", "2, 4, 5"})
  void slicesHoldTheSelectedIndicesAlongEveryAxis(int axis, long from, long to) throws IOException {
    long[] shape = {3, 4, 5};
    long[] codes = randomCodes(DType.I32, 60, 11);
    try (SafeTensors file = open(tensor("cube", DType.I32, shape, pack(DType.I32, codes)))) {
      TensorView slice = file.tensor("cube").slice(axis, from, to);
      long[] expectedShape = shape.clone();
      expectedShape[axis] = to - from;
      assertArrayEquals(expectedShape, slice.shape());
      assertSliceHolds(slice, codes, shape, axis, from);
    }
  }

  @ParameterizedTest(name = "{0} {1} axis {2} [{3}, {4})")
  @CsvSource({
      "cube, '3,4,5', 0, 1, 3",
      "cube, '3,4,5', 0, 0, 3",
      "plane, '1,4,5', 1, 1, 3",
      "line, '1,1,6', 2, 2, 5",
      "line, '1,1,6', 1, 0, 1"})
  void slicesOfContiguousBytesShareTheFilesMemory(String name, String shapeText, int axis, long from, long to)
      throws IOException {
    long[] shape = parseShape(shapeText);
    int count = (int) Arrays.stream(shape).reduce(1, Math::multiplyExact);
    long[] codes = randomCodes(DType.I32, count, 5);
    // a tensor before it, so the data does not start at offset 0
    try (SafeTensors file = open(tensor("before", DType.U8, new long[] {3}, new byte[3]),
        tensor(name, DType.I32, shape, pack(DType.I32, codes)))) {
      TensorView whole = file.tensor(name);
      TensorView slice = whole.slice(axis, from, to);
      long innerBytes = 4 * Arrays.stream(shape, axis + 1, shape.length).reduce(1, Math::multiplyExact);
      long start = from * innerBytes;
      assertEquals(whole.segment().address() + start, slice.segment().address());
      assertEquals((to - from) * innerBytes, slice.byteSize());
      assertArrayEquals(new long[] {3 + start, 3 + start + slice.byteSize()}, slice.dataOffsets());
      assertSliceHolds(slice, codes, shape, axis, from);
    }
  }

  @Test
  void slicesAlongInnerAxesGatherTheElementsIntoNewMemory() throws IOException {
    long[] codes = randomCodes(DType.I32, 60, 13);
    try (SafeTensors file = open(tensor("cube", DType.I32, new long[] {3, 4, 5}, pack(DType.I32, codes)))) {
      TensorView whole = file.tensor("cube");
      TensorView slice = whole.slice(1, 1, 3);
      long address = slice.segment().address();
      long begin = whole.segment().address();
      assertFalse(address >= begin && address < begin + whole.byteSize(), "a gathered slice lies inside the file");
      assertThrows(IllegalStateException.class, slice::dataOffsets);
    }
  }

  @ParameterizedTest(name = "{0} [{1}] axis {2} [{3}, {4})")
  @CsvSource({
      "F4, '4,2', 0, 1, 3",
      "F4, '2,4', 1, 2, 4",
      "F4, '3,4', 0, 2, 3",
      "F4, '1,6', 1, 2, 6",
      "F4, '2,2,4', 2, 0, 2",
      "F6_E2M3, '2,8', 1, 4, 8",
      "F6_E3M2, '3,4', 0, 1, 2"})
  void subByteSlicesOnByteBoundariesHoldTheSelectedElements(DType dtype, String shapeText, int axis, long from, long to) {
    long[] shape = parseShape(shapeText);
    long[] codes = randomCodes(dtype, (int) Arrays.stream(shape).reduce(1, Math::multiplyExact), 17);
    TensorView slice = view(dtype, shape, codes).slice(axis, from, to);
    assertEquals(to - from, slice.dim(axis));
    assertSliceHolds(slice, codes, shape, axis, from);
  }

  @ParameterizedTest(name = "{0} [{1}] axis {2} [{3}, {4})")
  @CsvSource({
      "F4, '4,3', 0, 1, 3",
      "F4, '2,3', 1, 0, 2",
      "F4, '2,4', 1, 1, 3",
      "F4, '4,2', 1, 0, 1",
      "F4, '6', 0, 1, 3",
      "F6_E2M3, '2,8', 1, 1, 5",
      "F6_E3M2, '8', 0, 0, 2",
      "F6_E3M2, '8', 0, 4, 6"})
  void subByteSlicesOffByteBoundariesAreRejected(DType dtype, String shapeText, int axis, long from, long to) {
    long[] shape = parseShape(shapeText);
    TensorView view = view(dtype, shape, new long[(int) Arrays.stream(shape).reduce(1, Math::multiplyExact)]);
    assertThrows(IllegalArgumentException.class, () -> view.slice(axis, from, to));
  }

  @Test
  void sliceRejectsBadAxesAndRanges() {
    TensorView view = view(DType.I32, new long[] {2, 3}, new long[6]);
    assertThrows(IndexOutOfBoundsException.class, () -> view.slice(2, 0, 1));
    assertThrows(IndexOutOfBoundsException.class, () -> view.slice(-1, 0, 1));
    assertThrows(IndexOutOfBoundsException.class, () -> view.slice(0, 2, 1));
    assertThrows(IndexOutOfBoundsException.class, () -> view.slice(0, -1, 1));
    assertThrows(IndexOutOfBoundsException.class, () -> view.slice(1, 0, 4));
  }

  // ---------------------------------------------------------------- copies and conversions

  static Stream<Arguments> floatConversions() {
    return Arrays.stream(DType.values()).filter(DType::isFloatingPoint)
        .flatMap(from -> Arrays.stream(FLOAT_TARGETS).map(to -> arguments(from, to)));
  }

  @ParameterizedTest(name = "{0} to {1}")
  @MethodSource("floatConversions")
  void floatCopiesHoldEachValueRoundedOnceToNearestEven(DType from, DType to) {
    long[] codes = sampleFloatCodes(from);
    byte[] out = new byte[codes.length * to.bits() / 8];
    view(from, new long[] {codes.length}, codes).copyTo(MemorySegment.ofArray(out), to);
    for (int i = 0; i < codes.length; i++) {
      // decodeDouble is exact for every float dtype, so this is the element's own value
      assertConverted(from.decodeDouble(codes[i]), null, to, rawAt(out, to, i), from, codes[i]);
    }
  }

  @ParameterizedTest(name = "{0} to {1}")
  @MethodSource("integerConversions")
  void integerCopiesHoldEachValueRoundedOnceToNearestEven(DType from, DType to) {
    long[] codes = sampleIntegerCodes(from);
    byte[] out = new byte[codes.length * to.bits() / 8];
    view(from, new long[] {codes.length}, codes).copyTo(MemorySegment.ofArray(out), to);
    for (int i = 0; i < codes.length; i++) {
      BigInteger exact = from == DType.BOOL ? BigInteger.valueOf(codes[i] != 0 ? 1 : 0) : ReferenceValues.integer(from, codes[i]);
      assertConverted(Double.NaN, exact, to, rawAt(out, to, i), from, codes[i]);
    }
  }

  static Stream<Arguments> integerConversions() {
    return Arrays.stream(DType.values()).filter(d -> d.isInteger() || d == DType.BOOL)
        .flatMap(from -> Arrays.stream(FLOAT_TARGETS).map(to -> arguments(from, to)));
  }

  @ParameterizedTest(name = "{0} {1} to {2} is {3}")
  @CsvSource({
      // 1 + 2^-11 + 2^-40: rounding to float32 first would land on the F16 midpoint and round down
      "F64, 0x3FF0020000001000, F16, 0x3C01",
      "F64, 0xBFF0020000001000, F16, 0xBC01",
      "F64, 0x3E60000000020000, F16, 0x0001",
      "F64, 0x3FF0100000001000, BF16, 0x3F81",
      "I32, 0x01010001, BF16, 0x4B81",
      "U32, 0x80800001, BF16, 0x4F01",
      "I64, 0x4040000000000001, BF16, 0x5E81",
      "U64, 0x8080000000000001, BF16, 0x5F01"})
  void conversionsRoundOnceNotTwice(DType from, String rawHex, DType to, String expectedHex) {
    long raw = Long.parseUnsignedLong(rawHex.substring(2), 16);
    byte[] out = new byte[2];
    view(from, new long[] {1}, raw).copyTo(MemorySegment.ofArray(out), to);
    assertEquals(Integer.parseInt(expectedHex.substring(2), 16), rawAt(out, to, 0));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void sameDtypeCopiesAreByteExact(DType dtype) {
    byte[] bytes = new byte[16 * dtype.bits() / 8];
    new Random(dtype.ordinal()).nextBytes(bytes);
    TensorView view = TensorView.of("t", dtype, new long[] {4, 4}, MemorySegment.ofArray(bytes));
    byte[] out = new byte[bytes.length];
    view.copyTo(MemorySegment.ofArray(out), dtype);
    assertArrayEquals(bytes, out);

    byte[] part = new byte[bytes.length + 3];
    Arrays.fill(part, (byte) 0x5A);
    byte[] expected = part.clone();
    int half = bytes.length / 2;
    System.arraycopy(bytes, half, expected, 3, half);
    view.copyRangeTo(8, 8, MemorySegment.ofArray(part), 3, dtype);
    assertArrayEquals(expected, part);
  }

  @ParameterizedTest(name = "{0} [{1}, +{2})")
  @CsvSource({"F4, 1, 2", "F4, 0, 3", "F4, 3, 4", "F6_E2M3, 2, 4", "F6_E3M2, 0, 2", "F6_E2M3, 0, 3", "F6_E3M2, 5, 3"})
  void subByteCopiesOffByteBoundariesMustConvert(DType dtype, long first, long count) {
    long[] codes = randomCodes(dtype, 8, 23);
    TensorView view = view(dtype, new long[] {8}, codes);
    assertThrows(IllegalArgumentException.class,
        () -> view.copyRangeTo(first, count, MemorySegment.ofArray(new byte[8]), 0, dtype));
    float[] out = new float[(int) count];
    view.copyRangeTo(first, count, MemorySegment.ofArray(out), 0, DType.F32);
    for (int k = 0; k < count; k++) {
      assertEquals(dtype.decodeFloat(codes[(int) first + k]), out[k]);
    }
  }

  @ParameterizedTest(name = "{0} to {1}")
  @CsvSource({"F32, I32", "F32, U8", "BF16, I64", "I32, I64", "F32, BOOL", "C64, F32", "C64, F64", "F32, C64",
      "F16, F8_E4M3", "U8, F4", "F32, F6_E2M3"})
  void conversionsToNonFloatTypesOrFromComplexAreUnsupported(DType from, DType to) {
    TensorView view = view(from, new long[] {2}, 0, 0);
    MemorySegment out = MemorySegment.ofArray(new byte[64]);
    assertThrows(UnsupportedOperationException.class, () -> view.copyTo(out, to));
  }

  @Test
  void copiesCheckBothRanges() {
    TensorView view = view(DType.F32, new long[] {4}, new long[4]);
    assertThrows(IndexOutOfBoundsException.class, () -> view.copyTo(MemorySegment.ofArray(new byte[15]), DType.F32));
    assertThrows(IndexOutOfBoundsException.class, () -> view.copyTo(MemorySegment.ofArray(new byte[7]), DType.BF16));
    assertThrows(IndexOutOfBoundsException.class, () -> view.copyTo(MemorySegment.ofArray(new byte[31]), DType.F64));
    assertThrows(IndexOutOfBoundsException.class, () -> view.copyRangeTo(0, 4, MemorySegment.ofArray(new byte[16]), 1, DType.F32));
    assertThrows(IndexOutOfBoundsException.class, () -> view.copyRangeTo(0, 1, MemorySegment.ofArray(new byte[8]), -1, DType.F16));
    assertThrows(IndexOutOfBoundsException.class, () -> view.copyRangeTo(2, 3, MemorySegment.ofArray(new byte[64]), 0, DType.F32));
    assertThrows(IndexOutOfBoundsException.class, () -> view.copyRangeTo(-1, 1, MemorySegment.ofArray(new byte[64]), 0, DType.F16));
    assertThrows(IndexOutOfBoundsException.class, () -> view.copyRangeTo(0, -1, MemorySegment.ofArray(new byte[64]), 0, DType.F32));
  }

  @Test
  void copyErrorsNameTheTensor() {
    TensorView view = TensorView.of("model.norm.weight", DType.F32, new long[] {4}, MemorySegment.ofArray(new byte[16]));
    MemorySegment out = MemorySegment.ofArray(new byte[64]);
    String range = assertThrows(IndexOutOfBoundsException.class, () -> view.copyRangeTo(2, 3, out, 0, DType.F32))
        .getMessage();
    assertEquals("tensor 'model.norm.weight': elements [2, 5) lie outside its 4 elements", range);
    String destination = assertThrows(IndexOutOfBoundsException.class,
        () -> view.copyTo(MemorySegment.ofArray(new byte[7]), DType.BF16)).getMessage();
    assertEquals("tensor 'model.norm.weight': 8 bytes of BF16 at offset 0 do not fit a destination of 7 bytes",
        destination);
    String conversion = assertThrows(UnsupportedOperationException.class, () -> view.copyTo(out, DType.I32))
        .getMessage();
    assertTrue(conversion.startsWith("tensor 'model.norm.weight': cannot convert F32 to I32"), conversion);
    TensorView f4 = TensorView.of("packed", DType.F4, new long[] {4}, MemorySegment.ofArray(new byte[2]));
    String alignment = assertThrows(IllegalArgumentException.class, () -> f4.copyRangeTo(1, 2, out, 0, DType.F4))
        .getMessage();
    assertTrue(alignment.startsWith("tensor 'packed': elements [1, 3) of F4"), alignment);
  }

  @Test
  void convertedCopiesWriteLittleEndianAtAnyByteOffset() {
    byte[] out = new byte[11];
    view(DType.BF16, new long[] {2}, 0x3F80, 0xC040).copyRangeTo(0, 2, MemorySegment.ofArray(out), 3, DType.F32);
    assertArrayEquals(new byte[] {0, 0, 0, 0, 0, (byte) 0x80, 0x3F, 0, 0, 0x40, (byte) 0xC0}, out);

    byte[] half = new byte[5];
    view(DType.F32, new long[] {2}, 0x3F800000L, 0xC0000000L).copyRangeTo(0, 2, MemorySegment.ofArray(half), 1, DType.F16);
    assertArrayEquals(new byte[] {0, 0, 0x3C, 0, (byte) 0xC0}, half);
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = "C64", mode = EnumSource.Mode.EXCLUDE)
  void toFloatArrayHoldsEveryElementAsFloat(DType dtype) {
    long[] codes = randomCodes(dtype, 16, 29);
    float[] values = view(dtype, new long[] {4, 4}, codes).toFloatArray();
    assertEquals(codes.length, values.length);
    for (int i = 0; i < codes.length; i++) {
      assertEquals(dtype.decodeFloat(codes[i]), values[i]);
    }
  }

  @Test
  void toFloatArrayOfComplexIsUnsupported() {
    assertThrows(UnsupportedOperationException.class, () -> view(DType.C64, new long[] {1}, 0).toFloatArray());
  }

  // ---------------------------------------------------------------- TensorView.of

  @Test
  void ofWrapsTheSegmentWithoutCopyingAndReadOnly() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment data = arena.allocate(24);
      long[] shape = {2, 3};
      TensorView view = TensorView.of("w", DType.F32, shape, data);
      data.set(FLOAT_LE, 4, 2.5f);
      assertEquals(2.5f, view.getFloat(1));
      assertEquals(data.address(), view.segment().address());
      assertTrue(view.segment().isReadOnly());
      assertEquals("w", view.name());
      assertEquals(DType.F32, view.dtype());
      assertEquals(2, view.rank());
      assertEquals(3, view.dim(1));
      assertEquals(6, view.elementCount());
      assertEquals(24, view.byteSize());
      shape[0] = 7;
      view.shape()[1] = 9;
      assertArrayEquals(new long[] {2, 3}, view.shape());
      assertThrows(IllegalStateException.class, view::dataOffsets);
    }
  }

  @ParameterizedTest(name = "{0} {1} in {2} bytes")
  @CsvSource({
      "F32, '2,3', 20", "F32, '2,3', 28", "F32, '-1,3', 0", "F32, '-2,-3', 24", "F4, '3', 2", "F4, '3', 1",
      "F6_E2M3, '2', 2", "F32, '4611686018427387904,4', 0", "U8, '9223372036854775807,2', 0", "BF16, '', 4"})
  void ofRejectsShapesThatDoNotFitTheSegment(DType dtype, String shapeText, int bytes) {
    long[] shape = shapeText == null ? new long[0] : parseShape(shapeText);
    MemorySegment data = MemorySegment.ofArray(new byte[bytes]);
    assertThrows(IllegalArgumentException.class, () -> TensorView.of("t", dtype, shape, data));
  }

  @Test
  void anEmptyTensorHasNoElementsAndCopiesNothing() {
    TensorView empty = TensorView.of("e", DType.F32, new long[] {0, 5}, MemorySegment.ofArray(new byte[0]));
    assertEquals(0, empty.elementCount());
    assertEquals(0, empty.toFloatArray().length);
    empty.copyTo(MemorySegment.ofArray(new byte[0]), DType.BF16);
    assertArrayEquals(new long[] {0, 2}, empty.slice(1, 1, 3).shape());
  }

  // ---------------------------------------------------------------- helpers

  private SafeTensors open(TestSafeTensorsFiles.Tensor... tensors) throws IOException {
    return SafeTensors.open(TestSafeTensorsFiles.write(dir.resolve("t.safetensors"), tensors));
  }

  private static TensorView view(DType dtype, long[] shape, long... codes) {
    return TensorView.of("t", dtype, shape, MemorySegment.ofArray(pack(dtype, codes)));
  }

  private static long mask(DType dtype) {
    return dtype.bits() == 64 ? -1L : (1L << dtype.bits()) - 1;
  }

  private static long[] randomCodes(DType dtype, int count, long seed) {
    return new Random(seed).longs(count).map(code -> code & mask(dtype)).toArray();
  }

  private static long[] allBits(TensorView view) {
    return LongStream.range(0, view.elementCount()).map(view::getBits).toArray();
  }

  private static long[] parseShape(String text) {
    return text.isBlank() ? new long[0] : Arrays.stream(text.split(",")).mapToLong(Long::parseLong).toArray();
  }

  /**
   * Checks every element of {@code slice} against {@code codes}, the row-major codes of the
   * tensor of {@code shape} it was cut from along {@code axis} starting at {@code from}.
   */
  private static void assertSliceHolds(TensorView slice, long[] codes, long[] shape, int axis, long from) {
    long[] sliceShape = slice.shape();
    for (long flat = 0; flat < slice.elementCount(); flat++) {
      long rest = flat;
      long source = 0;
      long stride = 1;
      for (int a = shape.length - 1; a >= 0; a--) {
        long coordinate = rest % sliceShape[a] + (a == axis ? from : 0);
        rest /= sliceShape[a];
        source += coordinate * stride;
        stride *= shape[a];
      }
      long f = flat;
      long s = source;
      assertEquals(codes[(int) source], slice.getBits(flat), () -> "slice element " + f + " (source " + s + ")");
    }
  }

  /** Every code of a float dtype up to 16 bits; for F32 and F64 random codes, specials and near-midpoints. */
  private static long[] sampleFloatCodes(DType dtype) {
    if (dtype.bits() <= 16) {
      return LongStream.range(0, 1L << dtype.bits()).toArray();
    }
    Random random = new Random(dtype.ordinal());
    LongStream.Builder codes = LongStream.builder();
    for (int i = 0; i < 4000; i++) {
      // values near the midpoints between two F16 or BF16 codes, where double rounding shows
      Binary format = i % 2 == 0 ? Binary.HALF : Binary.BFLOAT16;
      int code = random.nextInt(format.allOnesExponent());
      double midpoint = (format.magnitude(code) + format.magnitude(code + 1)) / 2;
      double near = switch (i % 3) {
        case 0 -> midpoint;
        case 1 -> midpoint * (1 + 0x1p-30 * random.nextGaussian());
        default -> midpoint * (1 + 0x1p-45 * random.nextGaussian());
      };
      near = random.nextBoolean() ? near : -near;
      long raw = dtype == DType.F64 ? Double.doubleToRawLongBits(near) : Float.floatToRawIntBits((float) near) & 0xFFFF_FFFFL;
      codes.add(raw).add(random.nextLong() & mask(dtype));
    }
    for (double special : new double[] {0.0, -0.0, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NaN,
        Double.MAX_VALUE, Double.MIN_VALUE, Float.MAX_VALUE, Float.MIN_VALUE, 65504, 65520, -65520, 1e-8, 1e38, 1e39}) {
      codes.add(dtype == DType.F64 ? Double.doubleToRawLongBits(special) : Float.floatToRawIntBits((float) special) & 0xFFFF_FFFFL);
    }
    return codes.build().toArray();
  }

  /** Random integers of every width, and integers just at and above 16-bit float midpoints. */
  private static long[] sampleIntegerCodes(DType dtype) {
    Random random = new Random(dtype.ordinal());
    long[] codes = new long[6000];
    for (int i = 0; i < codes.length; i++) {
      long value;
      if (i % 2 == 0) {
        value = random.nextLong() >>> random.nextInt(64);
      } else {
        // a few leading bits, a 1 right after the position a 16-bit float rounds at, maybe a last 1
        int shift = 1 + random.nextInt(Math.max(1, dtype.bits() - 12));
        value = (long) random.nextInt(1, 1 << 11) << shift | 1L << (shift - 1) | (random.nextBoolean() ? 1 : 0);
      }
      codes[i] = (random.nextBoolean() ? value : -value) & mask(dtype);
    }
    return codes;
  }

  /** The raw bits of element {@code i} of {@code bytes}, little-endian. */
  private static long rawAt(byte[] bytes, DType dtype, int i) {
    ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    return switch (dtype.bits()) {
      case 16 -> buffer.getShort(2 * i) & 0xFFFFL;
      case 32 -> buffer.getInt(4 * i) & 0xFFFF_FFFFL;
      case 64 -> buffer.getLong(8 * i);
      default -> throw new IllegalArgumentException(dtype.toString());
    };
  }

  /**
   * Checks a converted element: the exact value (a double, or an integer when {@code exactInteger}
   * is not null) rounded once to nearest even in {@code to}; a NaN must stay a NaN.
   */
  private static void assertConverted(double exact, BigInteger exactInteger, DType to, long actual, DType from, long code) {
    String what = from + " 0x" + Long.toHexString(code) + " to " + to + ": 0x" + Long.toHexString(actual);
    if (exactInteger == null && Double.isNaN(exact)) {
      boolean nan = switch (to) {
        case F32 -> Float.isNaN(Float.intBitsToFloat((int) actual));
        case F64 -> Double.isNaN(Double.longBitsToDouble(actual));
        case F16 -> (actual & 0x7FFF) > 0x7C00;
        case BF16 -> (actual & 0x7FFF) > 0x7F80;
        default -> throw new IllegalArgumentException(to.toString());
      };
      assertTrue(nan, what);
      return;
    }
    long expected = switch (to) {
      case F32 -> Float.floatToRawIntBits(exactInteger != null ? new BigDecimal(exactInteger).floatValue() : (float) exact) & 0xFFFF_FFFFL;
      case F64 -> Double.doubleToRawLongBits(exactInteger != null ? new BigDecimal(exactInteger).doubleValue() : exact);
      case F16 -> exactInteger != null ? Binary.HALF.nearestEven(exactInteger) : Binary.HALF.nearestEven(exact);
      case BF16 -> exactInteger != null ? Binary.BFLOAT16.nearestEven(exactInteger) : Binary.BFLOAT16.nearestEven(exact);
      default -> throw new IllegalArgumentException(to.toString());
    };
    assertEquals(expected, actual, what);
  }
}
