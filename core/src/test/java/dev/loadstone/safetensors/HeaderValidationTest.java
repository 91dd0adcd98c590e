package dev.loadstone.safetensors;

import static dev.loadstone.safetensors.TestFiles.concat;
import static dev.loadstone.safetensors.TestFiles.entry;
import static dev.loadstone.safetensors.TestFiles.file;
import static dev.loadstone.safetensors.TestFiles.json;
import static dev.loadstone.safetensors.TestFiles.lengthPrefix;
import static dev.loadstone.safetensors.TestFiles.quote;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The rules a file must follow to be opened, each checked on the exact bytes of a tiny file: a
 * broken file must be rejected with the {@link Reason} of the rule it breaks, naming the file
 * and, where the rule concerns one tensor, that tensor; a valid file must open with exactly the
 * tensors its header declares.
 */
class HeaderValidationTest {
  /** Bits per element of each dtype name, from the format's specification (not from DType). */
  static final Map<String, Integer> SPEC_BITS = Map.ofEntries(
      Map.entry("BOOL", 8), Map.entry("U8", 8), Map.entry("I8", 8), Map.entry("I16", 16),
      Map.entry("U16", 16), Map.entry("I32", 32), Map.entry("U32", 32), Map.entry("I64", 64),
      Map.entry("U64", 64), Map.entry("F16", 16), Map.entry("BF16", 16), Map.entry("F32", 32),
      Map.entry("F64", 64), Map.entry("C64", 64), Map.entry("F8_E4M3", 8),
      Map.entry("F8_E5M2", 8), Map.entry("F8_E8M0", 8), Map.entry("F8_E4M3FNUZ", 8),
      Map.entry("F8_E5M2FNUZ", 8), Map.entry("F6_E2M3", 6), Map.entry("F6_E3M2", 6),
      Map.entry("F4", 4));

  /** A valid U8 tensor of one byte at offset 0, to complete headers that test something else. */
  static final String ONE_BYTE = entry("U8", "[1]", 0, 1);

  @TempDir
  Path dir;

  /** Opens the file and returns the exception, after checking it names the file. */
  SafeTensorsException rejected(byte[] bytes) throws IOException {
    Path path = TestFiles.write(dir, bytes);
    SafeTensorsException e =
        assertThrows(SafeTensorsException.class, () -> SafeTensors.open(path).close());
    assertEquals(Optional.of(path), e.file());
    assertTrue(e.getMessage().contains(path.toString()), () -> "no file name in: " + e.getMessage());
    return e;
  }

  /**
   * Expects the file to be rejected for {@code reason}, naming {@code tensor}, or naming no
   * tensor when it is {@code null}.
   */
  SafeTensorsException assertRejected(Reason reason, String tensor, byte[] bytes)
      throws IOException {
    SafeTensorsException e = rejected(bytes);
    assertEquals(reason, e.reason(), e::getMessage);
    assertEquals(Optional.ofNullable(tensor), e.tensor(), e::getMessage);
    if (tensor != null) {
      assertTrue(e.getMessage().contains("'" + tensor + "'"), () -> "no tensor in: " + e.getMessage());
    }
    return e;
  }

  SafeTensors open(byte[] bytes) throws IOException {
    return SafeTensors.open(TestFiles.write(dir, bytes));
  }

  static byte[] hex(String hex) {
    return HexFormat.of().parseHex(hex.replace(" ", ""));
  }

  static byte[] littleEndianFloat(float value) {
    return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(value).array();
  }

  @Nested
  class LengthPrefix {
    @ParameterizedTest
    @ValueSource(ints = {0, 1, 7})
    void fileShorterThanTheLengthFieldIsTooSmall(int size) throws IOException {
      assertRejected(Reason.FILE_TOO_SMALL, null, new byte[size]);
    }

    @ParameterizedTest
    @ValueSource(longs = {100_000_001L, Long.MIN_VALUE, -1L, Long.MAX_VALUE})
    void headerLengthOverTheCapIsTooLarge(long length) throws IOException {
      // The negative longs are lengths with the top bit set, that is, over 2^63 unsigned.
      assertRejected(Reason.HEADER_TOO_LARGE, null, concat(lengthPrefix(length), "{}".getBytes()));
    }

    @Test
    void headerLengthAtTheCapIsAllowedButMustLieInTheFile() throws IOException {
      assertRejected(Reason.HEADER_OUT_OF_BOUNDS, null, concat(lengthPrefix(100_000_000L), "{}".getBytes()));
    }

    @Test
    void headerLengthPastTheEndOfTheFileIsOutOfBounds() throws IOException {
      assertRejected(Reason.HEADER_OUT_OF_BOUNDS, null, concat(lengthPrefix(3), "{}".getBytes()));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 3, 4, 5, 6, 7, 8})
    void headerLengthNeedNotBeAMultipleOf8(int padding) throws IOException {
      // The data starts right after the header, wherever that is.
      byte[] bytes = file(json("{'t':" + ONE_BYTE + "}") + " ".repeat(padding), new byte[] {42});
      try (SafeTensors st = open(bytes)) {
        assertEquals(8 + st.headerLength(), st.dataOffset());
        assertEquals(42, st.tensor("t").getLong(0));
      }
    }
  }

  @Nested
  class Text {
    @ParameterizedTest
    @ValueSource(strings = {
        "80",             // a continuation byte with no lead byte
        "C3 28",          // a lead byte followed by a non-continuation
        "FF", "FE",       // bytes that never occur in UTF-8
        "C0 AF",          // overlong '/' in 2 bytes
        "E0 80 AF",       // overlong '/' in 3 bytes
        "F0 80 80 AF",    // overlong '/' in 4 bytes
        "ED A0 80",       // lone high surrogate U+D800 encoded as UTF-8
        "ED BF BF",       // lone low surrogate U+DFFF encoded as UTF-8
        "ED A0 BD ED B8 80", // a surrogate pair encoded as two 3-byte sequences (CESU-8)
        "F4 90 80 80",    // U+110000, past the last code point
        "E2 82"           // a truncated 3-byte sequence
    })
    void headerThatIsNotUtf8IsRejected(String badBytes) throws IOException {
      byte[] header = concat(json("{'__metadata__':{'k':'").getBytes(), hex(badBytes), json("'}}").getBytes());
      assertRejected(Reason.HEADER_NOT_UTF8, null, file(header, new byte[0]));
    }

    @Test
    void headerEndingInsideAUtf8SequenceIsRejected() throws IOException {
      assertRejected(Reason.HEADER_NOT_UTF8, null, file(concat("{}".getBytes(), hex("E2 82")), new byte[0]));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "", " ", "{", "}", "{}x", "{} {}", "{}}", "{}[]", "{\"a\"}", "{\"a\":}",
        "{\"__metadata__\":{},}", "/*c*/{}", "{}//c", "{'a':{}}", "{a:{}}",
        "{\"t\":{\"x\":NaN}}", "{\"t\":{\"x\":01}}", "{\"t\":{\"x\":+1}}",
        "{\"__metadata__\":{\"k\":\"\\x\"}}", "{\"__metadata__\":{\"k\":\"a\tb\"}}", "{}\u0000"
    })
    void headerThatIsNotOneJsonValueIsInvalidJson(String header) throws IOException {
      assertRejected(Reason.HEADER_INVALID_JSON, null, file(header, 0));
    }

    @Test
    void byteOrderMarkBeforeTheObjectIsInvalidJson() throws IOException {
      assertRejected(Reason.HEADER_INVALID_JSON, null, file(concat(hex("EF BB BF"), "{}".getBytes()), new byte[0]));
    }

    @ParameterizedTest
    @ValueSource(strings = {"7B 00 7D 00", "00 7B 00 7D", "7B 00 00 00 7D 00 00 00"})
    void utf16OrUtf32TextIsNotReadAsJson(String header) throws IOException {
      // "{}" in UTF-16LE, UTF-16BE and UTF-32LE: valid UTF-8 (NUL is), but never JSON.
      assertRejected(Reason.HEADER_INVALID_JSON, null, file(hex(header), new byte[0]));
    }

    @ParameterizedTest
    @ValueSource(strings = {"[]", "[{}]", "\"{}\"", "1", "-1.5", "null", "true", " [] "})
    void jsonValueThatIsNotAnObjectIsRejected(String header) throws IOException {
      assertRejected(Reason.HEADER_NOT_OBJECT, null, file(header, 0));
    }

    @Test
    void whitespaceAroundTheObjectIsAccepted() throws IOException {
      byte[] bytes = file(" \t\r\n" + json("{'t':" + ONE_BYTE + "}") + "\r\n\t ", new byte[] {7});
      try (SafeTensors st = open(bytes)) {
        assertEquals(List.of("t"), st.names());
      }
    }

    @Test
    void emptyHeaderWithNoDataIsAnEmptyFile() throws IOException {
      try (SafeTensors st = open(file("{}", 0))) {
        assertEquals(List.of(), st.tensors());
        assertEquals(Optional.empty(), st.metadata());
        assertEquals(10, st.fileSize());
      }
    }
  }

  @Nested
  class Metadata {
    @ParameterizedTest
    @ValueSource(strings = {
        "{'__metadata__':{'a':{'b':'c'}}}",
        "{'__metadata__':{'a':1}}",
        "{'__metadata__':{'a':true}}",
        "{'__metadata__':{'a':null}}",
        "{'__metadata__':{'a':['b']}}",
        "{'__metadata__':['a','b']}",
        "{'__metadata__':'a'}",
        "{'__metadata__':{'a':'b','a':'c'}}",
        "{'__metadata__':{},'__metadata__':{}}"
    })
    void metadataThatIsNotAFlatStringMapIsRejected(String header) throws IOException {
      assertRejected(Reason.INVALID_METADATA, null, file(json(header), 0));
    }

    @Test
    void nullMetadataCountsAsAbsent() throws IOException {
      try (SafeTensors st = open(file(json("{'__metadata__':null,'t':" + ONE_BYTE + "}"), 1))) {
        assertEquals(Optional.empty(), st.metadata());
        assertEquals(List.of("t"), st.names());
      }
    }

    @Test
    void emptyMetadataIsPresentAndEmpty() throws IOException {
      try (SafeTensors st = open(file(json("{'__metadata__':{}}"), 0))) {
        assertEquals(Optional.of(Map.of()), st.metadata());
      }
    }

    @Test
    void metadataReadsBackExactlyWithEscapesAndNonAsciiInHeaderOrder() throws IOException {
      String header = "{\"__metadata__\":{"
          + "\"z\":\"plain\","
          + "\"k\\u00e9y\":\"tab\\there \\\"q\\\" \\\\ \\/ \\u00e9 \u00e9 \u4e2d \ud83d\ude00 \\ud83d\\ude00 \\n\","
          + "\"\":\"\","
          + "\"a\":\"\\u0000\""
          + "}}";
      Map<String, String> expected = new LinkedHashMap<>();
      expected.put("z", "plain");
      expected.put("k\u00e9y", "tab\there \"q\" \\ / \u00e9 \u00e9 \u4e2d \ud83d\ude00 \ud83d\ude00 \n");
      expected.put("", "");
      expected.put("a", "\u0000");
      try (SafeTensors st = open(file(header, 0))) {
        Map<String, String> metadata = st.metadata().orElseThrow();
        assertEquals(expected, metadata);
        assertEquals(List.copyOf(expected.keySet()), List.copyOf(metadata.keySet()));
      }
    }
  }

  @Nested
  class Entries {
    @ParameterizedTest
    @ValueSource(strings = {
        "[]", "'F32'", "1", "null", "true",
        "{'dtype':1,'shape':[1],'data_offsets':[0,1]}",
        "{'dtype':null,'shape':[1],'data_offsets':[0,1]}",
        "{'dtype':['U8'],'shape':[1],'data_offsets':[0,1]}",
        "{'dtype':'U8','shape':'1','data_offsets':[0,1]}",
        "{'dtype':'U8','shape':1,'data_offsets':[0,1]}",
        "{'dtype':'U8','shape':null,'data_offsets':[0,1]}",
        "{'dtype':'U8','shape':{},'data_offsets':[0,1]}",
        "{'dtype':'U8','shape':[1],'data_offsets':'0,1'}",
        "{'dtype':'U8','shape':[1],'data_offsets':{'begin':0,'end':1}}",
        "{'dtype':'U8','shape':[1],'data_offsets':null}"
    })
    void entryOrFieldOfTheWrongJsonTypeIsRejected(String entry) throws IOException {
      assertRejected(Reason.INVALID_TENSOR_ENTRY, "t", file(json("{'t':" + entry + "}"), 1));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{}",
        "{'shape':[1],'data_offsets':[0,1]}",
        "{'dtype':'U8','data_offsets':[0,1]}",
        "{'dtype':'U8','shape':[1]}",
        "{'Dtype':'U8','shape':[1],'data_offsets':[0,1]}"
    })
    void entryMissingAFieldIsRejected(String entry) throws IOException {
      assertRejected(Reason.MISSING_FIELD, "t", file(json("{'t':" + entry + "}"), 1));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{'dtype':'U8','dtype':'U8','shape':[1],'data_offsets':[0,1]}",
        "{'dtype':'U8','shape':[1],'shape':[1],'data_offsets':[0,1]}",
        "{'dtype':'U8','shape':[1],'data_offsets':[0,1],'data_offsets':[0,1]}"
    })
    void fieldNamedTwiceInAnEntryIsRejected(String entry) throws IOException {
      assertRejected(Reason.DUPLICATE_FIELD, "t", file(json("{'t':" + entry + "}"), 1));
    }

    @Test
    void tensorNamedTwiceIsRejectedRatherThanOverwritten() throws IOException {
      String header = json("{'t':" + ONE_BYTE + ",'t':" + entry("U8", "[1]", 1, 2) + "}");
      assertRejected(Reason.DUPLICATE_TENSOR, "t", file(header, 2));
    }

    @ParameterizedTest
    @ValueSource(strings = {"f32", "bf16", "Bool", "F128", "", " F32", "U8 ", "F8_E4M3FN", "float32"})
    void unknownOrWrongCaseDtypeIsRejected(String dtype) throws IOException {
      assertRejected(Reason.UNKNOWN_DTYPE, "t", file(json("{'t':" + entry(dtype, "[1]", 0, 1) + "}"), 1));
    }

    @Test
    void unknownFieldsAreIgnoredWhateverTheirValue() throws IOException {
      String header = json("{'t':{'comment':'x','data_offsets':[0,1],'extra':{'a':[1,{'b':null}],'c':{}},"
          + "'shape':[1],'more':[[],[[2.5]]],'dtype':'U8','n':-1e99,'flag':false}}");
      try (SafeTensors st = open(file(header, new byte[] {5}))) {
        TensorView t = st.tensor("t");
        assertEquals(DType.U8, t.dtype());
        assertArrayEquals(new long[] {1}, t.shape());
        assertEquals(5, t.getLong(0));
      }
    }
  }

  @Nested
  class Numbers {
    @ParameterizedTest
    @ValueSource(strings = {
        "-1", "1.0", "1e3", "1E0", "0.5", "-0.0",
        "9223372036854775808",      // 2^63
        "18446744073709551616",     // 2^64
        "1000000000000000000000000000000", // 10^30
        "-9223372036854775809",
        "'1'", "null", "true", "[1]", "{}"
    })
    void dimensionThatIsNotANonNegativeLongIsRejected(String dim) throws IOException {
      assertRejected(Reason.INVALID_DIMENSION, "t", file(json("{'t':" + entry("U8", "[" + dim + "]", 0, 1) + "}"), 1));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "[0]", "[1]", "[0,1,1]", "[]", "[-1,0]", "[0,-1]", "[0,1.0]", "[0,1e0]", "['0','1']",
        "[0,18446744073709551616]", "[0,null]", "[[0],[1]]"
    })
    void offsetsThatAreNotTwoNonNegativeLongsAreRejected(String offsets) throws IOException {
      String header = json("{'t':{'dtype':'U8','shape':[1],'data_offsets':" + offsets + "}}");
      assertRejected(Reason.INVALID_OFFSETS, "t", file(header, 1));
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
        "U8;  [4294967296,4294967296]",      // 2^64 elements
        "U8;  [9223372036854775807]",        // fits in elements, not in bits
        "F32; [288230376151711744]",         // 2^58 elements of 32 bits is 2^63 bits
        "F64; [2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2]",
        // A zero dimension empties the tensor, but views still compute strides from the other
        // dimensions, so their product must fit too, wherever the zero is.
        "F32; [4611686018427387904,0]",
        "F32; [0,4611686018427387904]",
        "U8;  [0,4294967296,4294967296]"
    })
    void shapeWhoseSizeInBitsOverflowsIsRejected(String dtype, String shape) throws IOException {
      assertRejected(Reason.SIZE_OVERFLOW, "t", file(json("{'t':" + entry(dtype, shape, 0, 0) + "}"), 0));
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"F4; [3]", "F4; [1]", "F4; [3,1]", "F6_E2M3; [1]",
        "F6_E3M2; [2]", "F6_E2M3; [2,3]"})
    void subByteTensorThatIsNotWholeBytesIsRejected(String dtype, String shape) throws IOException {
      assertRejected(Reason.MISALIGNED_BITS, "t", file(json("{'t':" + entry(dtype, shape, 0, 1) + "}"), 1));
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"F32; [2]; 4", "F32; []; 0", "U8; []; 2", "U8; [0]; 1",
        "F4; [2]; 2", "F6_E2M3; [4]; 4", "F6_E3M2; [4]; 2", "C64; [1]; 4", "BOOL; [3]; 24"})
    void byteRangeOfTheWrongLengthIsRejected(String dtype, String shape, int length) throws IOException {
      assertRejected(Reason.SIZE_MISMATCH, "t", file(json("{'t':" + entry(dtype, shape, 0, length) + "}"), length));
    }

    @Test
    void endBeforeBeginIsRejected() throws IOException {
      assertRejected(Reason.END_BEFORE_BEGIN, "t", file(json("{'t':" + entry("U8", "[1]", 2, 1) + "}"), 2));
    }

    static Stream<String> dtypeNames() {
      return SPEC_BITS.keySet().stream().sorted();
    }

    @Test
    void specTableCoversEveryDtype() {
      assertEquals(SPEC_BITS.keySet(),
          Arrays.stream(DType.values()).map(DType::name).collect(Collectors.toSet()));
    }

    @ParameterizedTest
    @MethodSource("dtypeNames")
    void everyDtypeIsAcceptedWithItsByteSize(String dtype) throws IOException {
      // 8 elements make whole bytes for every width, F4 and F6 included: 8 * bits / 8 bytes.
      int bytes = SPEC_BITS.get(dtype);
      byte[] data = new byte[bytes];
      new Random(bytes).nextBytes(data);
      try (SafeTensors st = open(file(json("{'t':" + entry(dtype, "[2,4]", 0, bytes) + "}"), data))) {
        TensorView t = st.tensor("t");
        assertEquals(dtype, t.dtype().name());
        assertEquals(8, t.elementCount());
        assertArrayEquals(data, t.segment().toArray(ValueLayout.JAVA_BYTE));
      }
    }

    @ParameterizedTest
    @MethodSource("dtypeNames")
    void everyDtypeIsRejectedOneByteShort(String dtype) throws IOException {
      int bytes = SPEC_BITS.get(dtype) - 1;
      assertRejected(Reason.SIZE_MISMATCH, "t", file(json("{'t':" + entry(dtype, "[2,4]", 0, bytes) + "}"), bytes));
    }
  }

  @Nested
  class Layout {
    @Test
    void gapBetweenTensorsIsRejected() throws IOException {
      String header = json("{'a':" + entry("F32", "[1]", 0, 4) + ",'b':" + entry("F32", "[1]", 8, 12) + "}");
      assertRejected(Reason.OFFSET_GAP, "b", file(header, 12));
    }

    @Test
    void emptyTensorsAtZeroDoNotHideAGapBeforeTheNextTensor() throws IOException {
      String header = json("{'a':" + entry("F32", "[0]", 0, 0) + ",'b':" + entry("U8", "[1]", 5, 6) + "}");
      assertRejected(Reason.OFFSET_GAP, "b", file(header, 6));
    }

    @Test
    void overlappingTensorsAreRejected() throws IOException {
      String header = json("{'a':" + entry("F32", "[1]", 0, 4) + ",'b':" + entry("F32", "[1]", 2, 6) + "}");
      assertRejected(Reason.OFFSET_OVERLAP, "b", file(header, 6));
    }

    @Test
    void emptyTensorInsideAnotherTensorsBytesIsAnOverlap() throws IOException {
      String header = json("{'a':" + entry("F32", "[1]", 0, 4) + ",'e':" + entry("F32", "[0]", 2, 2) + "}");
      assertRejected(Reason.OFFSET_OVERLAP, "e", file(header, 4));
    }

    @Test
    void dataNotStartingAtOffsetZeroIsRejected() throws IOException {
      String header = json("{'a':" + entry("F32", "[1]", 4, 8) + "}");
      assertRejected(Reason.FIRST_OFFSET_NOT_ZERO, "a", file(header, 8));
    }

    @Test
    void bytesAfterTheLastTensorAreRejected() throws IOException {
      assertRejected(Reason.TRAILING_BYTES, null, file(json("{'a':" + entry("F32", "[1]", 0, 4) + "}"), 5));
    }

    @Test
    void dataWithoutAnyTensorIsTrailingBytes() throws IOException {
      assertRejected(Reason.TRAILING_BYTES, null, file("{}", 1));
    }

    @Test
    void fileEndingBeforeTheLastTensorsDataIsTruncated() throws IOException {
      String header = json("{'a':" + entry("U8", "[1]", 0, 1) + ",'b':" + entry("F32", "[1]", 1, 5) + "}");
      assertRejected(Reason.DATA_TRUNCATED, "b", file(header, 4));
    }

    @Test
    void unalignedTensorIsReadCorrectly() throws IOException {
      // Nothing in the format aligns data: an F32 may start at an odd offset.
      String header = json("{'f':" + entry("F32", "[1]", 3, 7) + ",'u':" + entry("U8", "[3]", 0, 3) + "}");
      byte[] data = concat(new byte[] {1, 2, 3}, littleEndianFloat(-1.75f));
      try (SafeTensors st = open(file(header, data))) {
        assertEquals(List.of("u", "f"), st.names());
        assertEquals(-1.75f, st.tensor("f").getFloat(0));
        assertArrayEquals(new long[] {3, 7}, st.tensor("f").dataOffsets());
        assertEquals(3, st.tensor("u").getLong(2));
      }
    }

    @Test
    void emptyTensorsMayShareAnOffsetWithEachOtherAndWithTheNextTensor() throws IOException {
      String header = json("{"
          + "'e2':" + entry("I64", "[0]", 4, 4) + ","
          + "'a':" + entry("F32", "[1]", 0, 4) + ","
          + "'e0':" + entry("F32", "[0]", 0, 0) + ","
          + "'e1':" + entry("BF16", "[2,0]", 0, 0) + ","
          + "'e3':" + entry("F4", "[0,7]", 4, 4) + "}");
      try (SafeTensors st = open(file(header, littleEndianFloat(3f)))) {
        assertEquals(Set.of("a", "e0", "e1", "e2", "e3"), Set.copyOf(st.names()));
        assertEquals(3f, st.tensor("a").getFloat(0));
        for (String empty : List.of("e0", "e1", "e2", "e3")) {
          assertEquals(0, st.tensor(empty).elementCount());
          assertEquals(0, st.tensor(empty).byteSize());
        }
        assertArrayEquals(new long[] {2, 0}, st.tensor("e1").shape());
        assertIsFileOrder(st);
      }
    }

    @Test
    void rankZeroScalarHoldsOneElement() throws IOException {
      try (SafeTensors st = open(file(json("{'s':" + entry("F32", "[]", 0, 4) + "}"), littleEndianFloat(2.5f)))) {
        TensorView s = st.tensor("s");
        assertEquals(0, s.rank());
        assertEquals(1, s.elementCount());
        assertEquals(2.5f, s.getFloat(0));
      }
    }

    @Test
    void entriesInAnyHeaderOrderComeOutInFileOrder() throws IOException {
      String header = json("{'c':{'data_offsets':[6,8],'shape':[1],'dtype':'F16'},"
          + "'a':" + entry("U8", "[2]", 0, 2) + ","
          + "'b':{'shape':[4],'dtype':'I8','data_offsets':[2,6]}}");
      try (SafeTensors st = open(file(header, 8))) {
        assertEquals(List.of("a", "b", "c"), st.names());
      }
    }
  }

  @Nested
  class Adversarial {
    // Each of these is rejected after a single linear pass over the header; a parser that
    // recursed, or compared every pair of tensors, would overflow the stack or take minutes.

    @Test
    void manyTensorsClaimingTheSameBytesAreAnOverlap() throws IOException {
      StringBuilder header = new StringBuilder("{");
      for (int i = 0; i < 200_000; i++) {
        header.append(i == 0 ? "" : ",").append("\"t").append(i).append("\":").append(entry("F32", "[1]", 0, 4));
      }
      SafeTensorsException e = rejected(file(header.append('}').toString(), 4));
      assertEquals(Reason.OFFSET_OVERLAP, e.reason());
      assertTrue(e.tensor().orElseThrow().startsWith("t"), e::getMessage);
    }

    @Test
    void deeplyNestedObjectsExceedTheParserLimit() throws IOException {
      assertRejected(Reason.HEADER_LIMIT_EXCEEDED, null, file("{\"a\":".repeat(200_000), 0));
    }

    @Test
    void deeplyNestedArraysInAnUnknownFieldExceedTheParserLimit() throws IOException {
      assertRejected(Reason.HEADER_LIMIT_EXCEEDED, null, file("{\"t\":{\"x\":" + "[".repeat(200_000), 0));
    }

    @Test
    void deeplyNestedArraysAtTheTopAreNotAnObject() throws IOException {
      // The first token already breaks the rule; nothing after it is read.
      assertRejected(Reason.HEADER_NOT_OBJECT, null, file("[".repeat(200_000), 0));
    }

    @ParameterizedTest
    @ValueSource(strings = {"1", "1.", "-"})
    void veryLongNumberExceedsTheParserLimit(String start) throws IOException {
      String number = start + "1".repeat(1_000_000);
      assertRejected(Reason.HEADER_LIMIT_EXCEEDED, null, file(json("{'t':{'x':" + number + "}}"), 0));
      assertRejected(Reason.HEADER_LIMIT_EXCEEDED, null, file(json("{'t':" + entry("U8", "[" + number + "]", 0, 0) + "}"), 0));
    }
  }

  @Nested
  class Exceptions {
    @Test
    void fileLevelErrorNamesTheFileButNoTensor() throws IOException {
      SafeTensorsException e = rejected(file("[]", 0));
      assertEquals(Optional.empty(), e.tensor());
      assertTrue(e.getMessage().contains(Reason.HEADER_NOT_OBJECT.rule()), e::getMessage);
    }

    @Test
    void tensorErrorNamesTheFileAndTheTensor() throws IOException {
      SafeTensorsException e = rejected(file(json("{'weight \u00e9':" + entry("F99", "[1]", 0, 1) + "}"), 1));
      assertEquals(Reason.UNKNOWN_DTYPE, e.reason());
      assertEquals(Optional.of("weight \u00e9"), e.tensor());
    }

    @Test
    void imageInMemoryHasNoFile() {
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment image = arena.allocateFrom(ValueLayout.JAVA_BYTE, file("[]", 0));
        SafeTensorsException e =
            assertThrows(SafeTensorsException.class, () -> SafeTensors.of(null, arena, image));
        assertEquals(Optional.empty(), e.file());
        assertEquals(Reason.HEADER_NOT_OBJECT, e.reason());
      }
    }
  }

  /** Asserts that the tensors come in the order of their data, as {@link SafeTensors#tensors()} promises. */
  static void assertIsFileOrder(SafeTensors st) {
    List<long[]> ranges = st.tensors().stream().map(TensorView::dataOffsets).toList();
    for (int i = 1; i < ranges.size(); i++) {
      assertTrue(ranges.get(i - 1)[1] <= ranges.get(i)[0], () -> "not in file order: " + st.names());
    }
  }

  /**
   * Random valid files: every one must open with exactly the declared tensors, and every
   * single-byte corruption of one must either open or be rejected with SafeTensorsException.
   */
  @Nested
  class RandomFiles {
    record Tensor(String name, DType dtype, long[] shape, byte[] data) {}

    /** A random valid file and what it declares. */
    record Sample(byte[] bytes, List<Tensor> tensors, Map<String, String> metadata) {}

    static final String NAME_CHARS = "abcXYZ019._-/ \"\\\n\u0001\u00e9\u4e2d\ud83d\ude00";

    static String randomString(Random random, int maxLength) {
      int[] codePoints = NAME_CHARS.codePoints().toArray();
      StringBuilder out = new StringBuilder();
      for (int i = random.nextInt(maxLength + 1); i > 0; i--) {
        out.appendCodePoint(codePoints[random.nextInt(codePoints.length)]);
      }
      return out.toString();
    }

    static Tensor randomTensor(Random random, String name) {
      DType[] dtypes = DType.values();
      while (true) {
        DType dtype = dtypes[random.nextInt(dtypes.length)];
        long[] shape = random.longs(random.nextInt(4), 0, 5).toArray();
        long bits = Arrays.stream(shape).reduce(1, Math::multiplyExact) * SPEC_BITS.get(dtype.name());
        if (bits % 8 == 0) {
          byte[] data = new byte[(int) (bits / 8)];
          random.nextBytes(data);
          return new Tensor(name, dtype, shape, data);
        }
      }
    }

    static Sample randomSample(long seed) {
      Random random = new Random(seed);
      List<Tensor> tensors = new ArrayList<>();
      Set<String> names = new HashSet<>();
      for (int i = random.nextInt(6); i > 0; i--) {
        String name = randomString(random, 6);
        if (names.add(name)) {
          tensors.add(randomTensor(random, name));
        }
      }
      Map<String, String> metadata = null;
      if (random.nextBoolean()) {
        metadata = new LinkedHashMap<>();
        for (int i = random.nextInt(4); i > 0; i--) {
          metadata.put(randomString(random, 4), randomString(random, 8));
        }
      }
      // The data goes in one random order, the header lists the entries in another.
      Collections.shuffle(tensors, random);
      List<String> members = new ArrayList<>();
      ByteArrayOutputStream data = new ByteArrayOutputStream();
      for (Tensor t : tensors) {
        List<String> fields = new ArrayList<>(List.of(
            "\"dtype\":" + quote(t.dtype().name()),
            "\"shape\":" + Arrays.toString(t.shape()),
            "\"data_offsets\":[" + data.size() + "," + (data.size() + t.data().length) + "]"));
        if (random.nextInt(4) == 0) {
          fields.add(quote(randomString(random, 3)) + ":{\"x\":[1,\"y\",null]}");
        }
        Collections.shuffle(fields, random);
        members.add(quote(t.name()) + ":{" + String.join(",", fields) + "}");
        data.writeBytes(t.data());
      }
      if (metadata != null) {
        String map = metadata.entrySet().stream()
            .map(e -> quote(e.getKey()) + ":" + quote(e.getValue()))
            .collect(Collectors.joining(",", "{", "}"));
        members.add("\"__metadata__\":" + map);
      } else if (random.nextBoolean()) {
        members.add("\"__metadata__\":null");
      }
      Collections.shuffle(members, random);
      String header = " ".repeat(random.nextInt(3)) + "{" + String.join(",", members) + "}"
          + " ".repeat(random.nextInt(9));
      return new Sample(file(header, data.toByteArray()), tensors, metadata);
    }

    static IntStream seeds() {
      return IntStream.range(0, 200);
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void randomValidFileOpensWithExactlyTheDeclaredTensors(int seed) throws IOException {
      Sample sample = randomSample(seed);
      try (SafeTensors st = open(sample.bytes())) {
        assertEquals(Optional.ofNullable(sample.metadata()), st.metadata());
        assertEquals(sample.tensors().stream().map(Tensor::name).collect(Collectors.toSet()),
            Set.copyOf(st.names()));
        for (Tensor expected : sample.tensors()) {
          TensorView actual = st.tensor(expected.name());
          assertEquals(expected.dtype(), actual.dtype(), expected.name());
          assertArrayEquals(expected.shape(), actual.shape(), expected.name());
          assertArrayEquals(expected.data(), actual.segment().toArray(ValueLayout.JAVA_BYTE), expected.name());
        }
        assertIsFileOrder(st);
      }
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void singleByteCorruptionIsAcceptedOrRejectedCleanly(int seed) throws IOException {
      byte[] bytes = randomSample(seed).bytes();
      Random random = new Random(~seed);
      int position = random.nextInt(bytes.length);
      bytes[position] = (byte) (bytes[position] + 1 + random.nextInt(255));
      try (SafeTensors st = open(bytes)) {
        // Accepted: then every view must lie within the file.
        for (TensorView t : st.tensors()) {
          t.segment().toArray(ValueLayout.JAVA_BYTE);
        }
      } catch (SafeTensorsException rejected) {
        // A broken rule, reported as such: the only failure a caller has to handle.
      }
    }
  }
}
