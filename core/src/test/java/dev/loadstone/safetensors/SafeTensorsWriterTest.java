package dev.loadstone.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The writer's promises: the reference implementation's exact bytes, a streaming API that
 * checks what it is given, and a target that is either the old file or the whole new one.
 *
 * <p>Every expected file below is written out by hand from the format's rules, and each was
 * checked against the reference implementation (the {@code safetensors} 0.8.0 Python wheel,
 * whose writer is the Rust {@code serialize}), except where a comment says otherwise.
 */
class SafeTensorsWriterTest {
  @TempDir
  Path dir;

  /** A file: the given header length, the header text with its padding spaces, the data. */
  private static byte[] file(long headerLength, String paddedHeader, String dataHex) {
    byte[] header = paddedHeader.getBytes(StandardCharsets.UTF_8);
    assertEquals(headerLength, header.length, "test data: the header literal's length");
    ByteBuffer out = ByteBuffer.allocate(8 + header.length + dataHex.length() / 2)
        .order(ByteOrder.LITTLE_ENDIAN);
    out.putLong(headerLength).put(header).put(HexFormat.of().parseHex(dataHex));
    return out.array();
  }

  private static TensorView tensor(String name, DType dtype, long[] shape, String dataHex) {
    return TensorView.of(name, dtype, shape, MemorySegment.ofArray(HexFormat.of().parseHex(dataHex)));
  }

  private static String hexRun(int first, int count) {
    StringBuilder hex = new StringBuilder();
    for (int i = 0; i < count; i++) {
      hex.append(HexFormat.of().toHexDigits((byte) (first + i)));
    }
    return hex.toString();
  }

  private List<Path> directoryListing() throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.sorted().toList();
    }
  }

  @Test
  void writesTheReferenceImplementationsOwnTestVector() throws IOException {
    // tensor.rs, test_serialization: "attn.0", F32 [1, 2, 3], values 0..5
    Path target = dir.resolve("attn.safetensors");
    SafeTensorsWriter.write(target, null, List.of(tensor("attn.0", DType.F32, new long[] {1, 2, 3},
        "00000000" + "0000803f" + "00000040" + "00004040" + "00008040" + "0000a040")));

    assertArrayEquals(file(64,
        "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}",
        "000000000000803f0000004000004040000080400000a040"), Files.readAllBytes(target));
  }

  @Test
  void writesAFileWithoutTensorsAsTheReferenceDoes() throws IOException {
    Path bare = dir.resolve("bare.safetensors");
    Path framework = dir.resolve("framework.safetensors");
    SafeTensorsWriter.write(bare, null, List.of());
    SafeTensorsWriter.write(framework, Map.of("framework", "pt"), List.of());

    assertArrayEquals(file(8, "{}      ", ""), Files.readAllBytes(bare));
    assertArrayEquals(file(40, "{\"__metadata__\":{\"framework\":\"pt\"}}     ", ""),
        Files.readAllBytes(framework));
  }

  @Test
  void writesAnEmptyMetadataMapAsAnEmptyObjectThatReadsBack() throws IOException {
    // The reference writes `{},"__metadata__":{}}` here (serde_json closes a map it was told is
    // empty at once), a header its own reader rejects; this is the valid file it means.
    Path target = dir.resolve("empty-metadata.safetensors");
    SafeTensorsWriter.write(target, Map.of(), List.of());

    assertArrayEquals(file(24, "{\"__metadata__\":{}}     ", ""), Files.readAllBytes(target));
    try (SafeTensors file = SafeTensors.open(target)) {
      assertEquals(Map.of(), file.metadata().orElseThrow());
    }
  }

  @Test
  void ordersTensorsByDtypeInTheReferenceOrderThenPacksThemWithoutGaps() throws IOException {
    // Declared in alphabetical-ish enum order; byte j of the k-th declared tensor is 16k + j.
    // The two F6 dtypes are not in the reference's Python binding: their place comes from the
    // reference's Rust Dtype enum (.. U8, I8 .. F4, F6_E2M3, F6_E3M2, U8 ..), written in reverse.
    DType[] declared = {DType.BOOL, DType.U8, DType.I8, DType.I16, DType.U16, DType.I32,
        DType.U32, DType.I64, DType.U64, DType.F16, DType.BF16, DType.F32, DType.F64, DType.C64,
        DType.F8_E4M3, DType.F8_E5M2, DType.F8_E8M0, DType.F8_E4M3FNUZ, DType.F8_E5M2FNUZ,
        DType.F6_E2M3, DType.F6_E3M2, DType.F4};
    List<TensorView> tensors = new ArrayList<>();
    for (int k = 0; k < declared.length; k++) {
      DType dtype = declared[k];
      long elements = dtype.bits() == 6 ? 4 : 2;
      int bytes = (int) (elements * dtype.bits() / 8);
      tensors.add(tensor(dtype.name().toLowerCase(java.util.Locale.ROOT), dtype,
          new long[] {elements}, hexRun(16 * k, bytes)));
    }
    Path target = dir.resolve("every.safetensors");
    SafeTensorsWriter.write(target, null, tensors);

    String json = "{\"u64\":{\"dtype\":\"U64\",\"shape\":[2],\"data_offsets\":[0,16]},"
        + "\"i64\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[16,32]},"
        + "\"f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[32,48]},"
        + "\"c64\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[48,64]},"
        + "\"f32\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[64,72]},"
        + "\"u32\":{\"dtype\":\"U32\",\"shape\":[2],\"data_offsets\":[72,80]},"
        + "\"i32\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[80,88]},"
        + "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[88,92]},"
        + "\"f16\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[92,96]},"
        + "\"u16\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[96,100]},"
        + "\"i16\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[100,104]},"
        + "\"f8_e5m2fnuz\":{\"dtype\":\"F8_E5M2FNUZ\",\"shape\":[2],\"data_offsets\":[104,106]},"
        + "\"f8_e4m3fnuz\":{\"dtype\":\"F8_E4M3FNUZ\",\"shape\":[2],\"data_offsets\":[106,108]},"
        + "\"f8_e8m0\":{\"dtype\":\"F8_E8M0\",\"shape\":[2],\"data_offsets\":[108,110]},"
        + "\"f8_e4m3\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[110,112]},"
        + "\"f8_e5m2\":{\"dtype\":\"F8_E5M2\",\"shape\":[2],\"data_offsets\":[112,114]},"
        + "\"i8\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[114,116]},"
        + "\"u8\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[116,118]},"
        + "\"f6_e3m2\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[118,121]},"
        + "\"f6_e2m3\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[121,124]},"
        + "\"f4\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[124,125]},"
        + "\"bool\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[125,127]}}";
    String data = "808182838485868788898a8b8c8d8e8f" // u64
        + "707172737475767778797a7b7c7d7e7f" // i64
        + "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf" // f64
        + "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf" // c64
        + "b0b1b2b3b4b5b6b7" + "6061626364656667" + "5051525354555657" // f32 u32 i32
        + "a0a1a2a3" + "90919293" + "40414243" + "30313233" // bf16 f16 u16 i16
        + "2021" + "1011" + "0001" + "e0e1" + "f0f1" // f8: e5m2fnuz e4m3fnuz e8m0 e4m3 e5m2
        + "2021" + "1011" // i8 u8
        + "404142" + "303132" + "50" + "0001"; // f6_e3m2 f6_e2m3 f4 bool
    assertArrayEquals(file(1352, json + "   ", data), Files.readAllBytes(target));
  }

  @Test
  void writesScalarsAndEmptyTensorsWithTheirOffsets() throws IOException {
    Path target = dir.resolve("shapes.safetensors");
    SafeTensorsWriter.write(target, null, List.of(
        tensor("scalar", DType.F32, new long[] {}, "0000c03f"),
        tensor("empty", DType.F32, new long[] {0}, ""),
        tensor("empty2d", DType.I64, new long[] {2, 0}, ""),
        tensor("flags", DType.BOOL, new long[] {0, 3}, ""),
        tensor("vec", DType.F32, new long[] {1}, "000000c0")));

    assertArrayEquals(file(296,
        "{\"empty2d\":{\"dtype\":\"I64\",\"shape\":[2,0],\"data_offsets\":[0,0]},"
            + "\"empty\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
            + "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
            + "\"vec\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
            + "\"flags\":{\"dtype\":\"BOOL\",\"shape\":[0,3],\"data_offsets\":[8,8]}}     ",
        "0000c03f000000c0"), Files.readAllBytes(target));
    try (SafeTensors file = SafeTensors.open(target)) {
      assertEquals(1.5f, file.tensor("scalar").getFloat(0));
      assertEquals(0, file.tensor("empty2d").byteSize());
    }
  }

  @Test
  void escapesStringsAsSerdeJsonDoesAndWritesNonAsciiAsUtf8() throws IOException {
    // Quote and backslash escaped; \b \t \n \f \r short; other controls as backslash-u00XX, lowercase hex;
    // '/' and DEL (U+007F) as themselves; non-ASCII as raw UTF-8.
    String value = "q\" bs\\ sl/ nl\n tab\t cr\r b\b f\f nul\u0000 us\u001f del\u007f é 日本 😀";
    Path target = dir.resolve("escapes.safetensors");
    SafeTensorsWriter.write(target, Map.of("k\u0001é", value),
        List.of(tensor("w\"e\\ird\n/é", DType.U8, new long[] {1}, "07")));

    assertArrayEquals(file(176,
        "{\"__metadata__\":{\"k\\u0001é\":\"q\\\" bs\\\\ sl/ nl\\n tab\\t cr\\r b\\b f\\f"
            + " nul\\u0000 us\\u001f del\u007f é 日本 😀\"},"
            + "\"w\\\"e\\\\ird\\n/é\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}   ",
        "07"), Files.readAllBytes(target));
    try (SafeTensors file = SafeTensors.open(target)) {
      assertEquals(Map.of("k\u0001é", value), file.metadata().orElseThrow());
      assertEquals(List.of("w\"e\\ird\n/é"), file.names());
    }
  }

  @Test
  void writesMetadataKeysInCodePointOrder() throws IOException {
    // The reference keeps __metadata__ in a hash map, in no fixed order; this order is the
    // writer's documented choice, so this expectation is not from the reference.
    Map<String, String> metadata = new LinkedHashMap<>();
    metadata.put("😀", "5");
    metadata.put("b", "2");
    metadata.put("～", "4");
    metadata.put("a", "1");
    metadata.put("é", "3");
    metadata.put("Z", "0");
    Path target = dir.resolve("keys.safetensors");
    SafeTensorsWriter.write(target, metadata, List.of());

    assertArrayEquals(file(72,
        "{\"__metadata__\":{\"Z\":\"0\",\"a\":\"1\",\"b\":\"2\",\"é\":\"3\",\"～\":\"4\",\"😀\":\"5\"}}",
        ""), Files.readAllBytes(target));
  }

  @Test
  void ordersNamesByCodePointLikeTheReferenceNotByUtf16Units() throws IOException {
    // U+FF5E sorts before U+1F600 by code point (and UTF-8 bytes), after it by UTF-16 units.
    List<String> names = List.of("a", "B", "～", "😀", "ab", "");
    List<TensorView> tensors = new ArrayList<>();
    for (int i = 0; i < names.size(); i++) {
      tensors.add(tensor(names.get(i), DType.U8, new long[] {1}, hexRun(i, 1)));
    }
    Path target = dir.resolve("names.safetensors");
    SafeTensorsWriter.write(target, null, tensors);

    assertArrayEquals(file(320,
        "{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
            + "\"B\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
            + "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]},"
            + "\"ab\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]},"
            + "\"～\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[4,5]},"
            + "\"😀\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[5,6]}}  ",
        "050100040203"), Files.readAllBytes(target));
  }

  @Test
  void headerReturnsExactlyTheBytesBeforeTheData() {
    byte[] header = SafeTensorsWriter.header(Map.of("format", "pt"),
        List.of(new TensorSpec("x", DType.F32, new long[] {2})));

    byte[] expected = file(88, "{\"__metadata__\":{\"format\":\"pt\"},"
        + "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ", "");
    assertArrayEquals(expected, header);
  }

  @Test
  void roundTripsEveryTensorThroughTheReader() throws IOException {
    Random random = new Random(7);
    List<TensorView> tensors = new ArrayList<>();
    Map<String, byte[]> bytes = new LinkedHashMap<>();
    DType[] dtypes = DType.values();
    for (int i = 0; i < 40; i++) {
      DType dtype = dtypes[i % dtypes.length];
      long[] shape = {1 + random.nextInt(3), 2 * (1 + random.nextInt(4))};
      if (dtype.bits() == 6) {
        shape[1] = 4;
      }
      byte[] data = new byte[(int) dtype.byteSize(shape[0] * shape[1])];
      random.nextBytes(data);
      String name = "layers." + i + "." + dtype.name().toLowerCase(java.util.Locale.ROOT);
      tensors.add(TensorView.of(name, dtype, shape, MemorySegment.ofArray(data)));
      bytes.put(name, data);
    }
    Path target = dir.resolve("round.safetensors");
    SafeTensorsWriter.write(target, Map.of("format", "pt", "note", "ünïcode"), tensors);

    try (SafeTensors file = SafeTensors.open(target)) {
      assertEquals(Map.of("format", "pt", "note", "ünïcode"), file.metadata().orElseThrow());
      assertEquals(bytes.keySet(), new java.util.HashSet<>(file.names()));
      for (TensorView written : tensors) {
        TensorView read = file.tensor(written.name());
        assertEquals(written.dtype(), read.dtype());
        assertArrayEquals(written.shape(), read.shape());
        assertArrayEquals(bytes.get(written.name()), read.segment().toArray(ValueLayout.JAVA_BYTE));
      }
    }
  }

  @Test
  void rewritingAFilesOwnMappedTensorsReproducesItByteForByte() throws IOException {
    Path original = dir.resolve("original.safetensors");
    SafeTensorsWriter.write(original, Map.of("format", "pt"), List.of(
        tensor("b", DType.F16, new long[] {2}, "003c0040"),
        tensor("a", DType.F32, new long[] {1}, "0000803f"),
        tensor("c", DType.I8, new long[] {3}, "01ff02")));
    Path copy = dir.resolve("copy.safetensors");
    try (SafeTensors file = SafeTensors.open(original)) {
      SafeTensorsWriter.write(copy, file.metadata().orElse(null), file.tensors());
    }

    assertArrayEquals(Files.readAllBytes(original), Files.readAllBytes(copy));
  }

  @Test
  void writesHeapSegmentsOfAnyArrayTypeLargerThanOneStagingBuffer() throws IOException {
    float[] values = new float[700_000]; // 2.8 MB: staged through the writer's 2 MiB block buffer twice
    for (int i = 0; i < values.length; i++) {
      values[i] = i * 0.5f;
    }
    Path target = dir.resolve("floats.safetensors");
    SafeTensorsWriter.write(target, null, List.of(TensorView.of("f", DType.F32,
        new long[] {values.length}, MemorySegment.ofArray(values))));

    try (SafeTensors file = SafeTensors.open(target)) {
      assertArrayEquals(values, file.tensor("f").toFloatArray());
    }
  }

  @Test
  void streamingInChunksWritesTheSameBytesAsOneCall() throws IOException {
    Random random = new Random(11);
    List<TensorView> tensors = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      byte[] data = new byte[4 * (1 + random.nextInt(5000))];
      random.nextBytes(data);
      tensors.add(TensorView.of("t" + i, i % 2 == 0 ? DType.F32 : DType.I32,
          new long[] {data.length / 4}, MemorySegment.ofArray(data)));
    }
    Path whole = dir.resolve("whole.safetensors");
    SafeTensorsWriter.write(whole, Map.of("format", "pt"), tensors);

    Path streamed = dir.resolve("streamed.safetensors");
    try (SafeTensorsWriter out = SafeTensorsWriter.create(streamed, Map.of("format", "pt"),
        tensors.stream().map(TensorSpec::of).toList())) {
      for (TensorSpec spec : out.tensors()) {
        MemorySegment data = tensors.stream().filter(t -> t.name().equals(spec.name()))
            .findFirst().orElseThrow().segment();
        for (long offset = 0; offset < data.byteSize(); ) {
          long size = Math.min(data.byteSize() - offset, 1 + random.nextInt(3000));
          out.write(spec.name(), data.asSlice(offset, size));
          offset += size;
        }
      }
      assertFalse(Files.exists(streamed), "nothing at the target before commit");
      out.commit();
    }

    assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(streamed));
  }

  @Test
  void chunksOfAnySizeFromAnySourceLandWhereTheyBelongAcrossTheWritersBlocks() throws IOException {
    // The writer hands the file whole 2 MiB blocks, buffering what falls short of a boundary:
    // tensors of a few MiB in chunks from 1 byte to 5 MiB, from byte[], float[] (staged),
    // off-heap memory and a file mapping, must still give header + data, byte for byte.
    Random random = new Random(12);
    List<TensorSpec> specs = new ArrayList<>();
    ByteArrayOutputStream data = new ByteArrayOutputStream();
    for (int i = 0; i < 3; i++) {
      int floats = (3 << 18) + random.nextInt(1 << 19);
      specs.add(new TensorSpec("t" + i, DType.F32, new long[] {floats}));
      byte[] bytes = new byte[4 * floats];
      random.nextBytes(bytes);
      data.writeBytes(bytes);
    }
    byte[] all = data.toByteArray();
    Path raw = dir.resolve("raw.bin");
    Files.write(raw, all);
    Path target = dir.resolve("blocks.safetensors");
    try (Arena arena = Arena.ofConfined(); FileChannel channel = FileChannel.open(raw)) {
      MemorySegment mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, all.length, arena);
      MemorySegment offHeap = arena.allocate(all.length).copyFrom(MemorySegment.ofArray(all));
      try (SafeTensorsWriter out = SafeTensorsWriter.create(target, null, specs)) {
        long position = 0;
        for (TensorSpec spec : out.tensors()) {
          for (long done = 0; done < spec.byteSize(); ) {
            int[] sizes = {1, 4, 4093, 65_536, (2 << 20) - 12, 2 << 20, 5 << 20};
            long size = Math.min(spec.byteSize() - done, sizes[random.nextInt(sizes.length)]);
            MemorySegment chunk = switch (random.nextInt(4)) {
              case 0 -> MemorySegment.ofArray(Arrays.copyOfRange(all, (int) position, (int) (position + size)));
              case 1 -> size % 4 == 0 && position % 4 == 0 ? floats(all, position, size) : offHeap.asSlice(position, size);
              case 2 -> offHeap.asSlice(position, size);
              default -> mapped.asSlice(position, size);
            };
            out.write(spec.name(), chunk);
            done += size;
            position += size;
          }
        }
        out.commit();
      }
    }
    ByteArrayOutputStream expected = new ByteArrayOutputStream();
    expected.writeBytes(SafeTensorsWriter.header(null, specs));
    expected.writeBytes(all);
    assertArrayEquals(expected.toByteArray(), Files.readAllBytes(target));
  }

  /** Bytes {@code [position, position + size)} of {@code all} as a float[] segment (not a byte[] one). */
  private static MemorySegment floats(byte[] all, long position, long size) {
    float[] values = new float[(int) (size / 4)];
    MemorySegment.copy(MemorySegment.ofArray(all), position, MemorySegment.ofArray(values), 0, size);
    return MemorySegment.ofArray(values);
  }

  @Test
  void streamingWriterListsTensorsInFileOrder() throws IOException {
    try (SafeTensorsWriter out = SafeTensorsWriter.create(dir.resolve("o.safetensors"), null,
        List.of(new TensorSpec("z", DType.U8, new long[] {1}),
            new TensorSpec("y", DType.BF16, new long[] {1}),
            new TensorSpec("x", DType.U8, new long[] {1})))) {
      assertEquals(List.of("y", "x", "z"), out.tensors().stream().map(TensorSpec::name).toList());
    }
  }

  @Test
  void streamingRejectsBytesForATensorThatDoesNotComeNext() throws IOException {
    Path target = dir.resolve("order.safetensors");
    try (SafeTensorsWriter out = SafeTensorsWriter.create(target, null,
        List.of(new TensorSpec("a", DType.F32, new long[] {2}),
            new TensorSpec("b", DType.F32, new long[] {2})))) {
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> out.write("b", MemorySegment.ofArray(new byte[8])));
      assertTrue(e.getMessage().contains("'a'") && e.getMessage().contains("8 of its 8 bytes"),
          e.getMessage());

      out.write("a", MemorySegment.ofArray(new byte[8]));
      IllegalStateException again = assertThrows(IllegalStateException.class,
          () -> out.write("a", MemorySegment.ofArray(new byte[1])));
      assertTrue(again.getMessage().contains("already complete"), again.getMessage());
    }
    assertEquals(List.of(), directoryListing());
  }

  @Test
  void streamingRejectsAChunkLargerThanWhatRemainsOfItsTensor() throws IOException {
    try (SafeTensorsWriter out = SafeTensorsWriter.create(dir.resolve("x.safetensors"), null,
        List.of(new TensorSpec("a", DType.F32, new long[] {2})))) {
      out.write("a", MemorySegment.ofArray(new byte[5]));
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> out.write("a", MemorySegment.ofArray(new byte[4])));
      assertTrue(e.getMessage().contains("3 of its 8 bytes remain"), e.getMessage());
      // the rejected chunk wrote nothing: the writer goes on
      out.write("a", MemorySegment.ofArray(new byte[3]));
      out.commit();
    }
    try (SafeTensors file = SafeTensors.open(dir.resolve("x.safetensors"))) {
      assertEquals(8, file.tensor("a").byteSize());
    }
  }

  @Test
  void commitRefusesAnIncompleteTensorAndNamesIt() throws IOException {
    Path target = dir.resolve("short.safetensors");
    try (SafeTensorsWriter out = SafeTensorsWriter.create(target, null,
        List.of(new TensorSpec("a", DType.F32, new long[] {1}),
            new TensorSpec("b", DType.F32, new long[] {2})))) {
      out.write("a", MemorySegment.ofArray(new byte[4]));
      out.write("b", MemorySegment.ofArray(new byte[3]));
      assertFalse(out.isComplete());
      IllegalStateException e = assertThrows(IllegalStateException.class, out::commit);
      assertTrue(e.getMessage().contains("'b' has 3 of its 8 bytes"), e.getMessage());
    }
    assertFalse(Files.exists(target));
    assertEquals(List.of(), directoryListing());
  }

  @Test
  void writeOfAWholeTensorChecksItsDtypeAndShapeAgainstTheSpec() throws IOException {
    try (SafeTensorsWriter out = SafeTensorsWriter.create(dir.resolve("x.safetensors"), null,
        List.of(new TensorSpec("a", DType.F32, new long[] {2})))) {
      assertThrows(IllegalArgumentException.class,
          () -> out.write(tensor("a", DType.I32, new long[] {2}, "0000000000000000")));
      assertThrows(IllegalArgumentException.class,
          () -> out.write(tensor("a", DType.F32, new long[] {1, 2}, "0000000000000000")));
      assertThrows(IllegalArgumentException.class,
          () -> out.write(tensor("other", DType.F32, new long[] {2}, "0000000000000000")));
    }
  }

  @Test
  void rejectsTwoTensorsWithTheSameName() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> SafeTensorsWriter.write(dir.resolve("x.safetensors"), null, List.of(
            tensor("w", DType.U8, new long[] {1}, "01"), tensor("w", DType.I8, new long[] {1}, "02"))));
    assertTrue(e.getMessage().contains("'w'"), e.getMessage());
    assertFalse(Files.exists(dir.resolve("x.safetensors")));
  }

  @Test
  void rejectsATensorNamedLikeTheMetadataKey() {
    assertThrows(IllegalArgumentException.class,
        () -> SafeTensorsWriter.write(dir.resolve("x.safetensors"), null,
            List.of(tensor("__metadata__", DType.U8, new long[] {1}, "01"))));
  }

  @Test
  void rejectsStringsThatUtf8CannotEncode() {
    assertThrows(IllegalArgumentException.class,
        () -> SafeTensorsWriter.header(null, List.of(new TensorSpec("bad\uD800", DType.U8, new long[] {1}))));
    assertThrows(IllegalArgumentException.class,
        () -> SafeTensorsWriter.header(Map.of("k", "\uDC00x"), List.of()));
    assertThrows(IllegalArgumentException.class,
        () -> SafeTensorsWriter.header(Map.of("\uD83D", "v"), List.of()));
  }

  @Test
  void rejectsSubByteTensorsWhoseBitsAreNotWholeBytes() {
    assertThrows(IllegalArgumentException.class, () -> new TensorSpec("f4", DType.F4, new long[] {3}));
    assertThrows(IllegalArgumentException.class, () -> new TensorSpec("f6", DType.F6_E2M3, new long[] {2, 3}));
    assertEquals(3, new TensorSpec("f6", DType.F6_E3M2, new long[] {4}).byteSize());
    assertEquals(2, new TensorSpec("f4", DType.F4, new long[] {2, 2}).byteSize());
  }

  @Test
  void rejectsNegativeDimensionsAndSizesBeyond63Bits() {
    assertThrows(IllegalArgumentException.class, () -> new TensorSpec("n", DType.U8, new long[] {-1}));
    assertThrows(IllegalArgumentException.class,
        () -> new TensorSpec("big", DType.F64, new long[] {1L << 40, 1L << 30}));
    // Each tensor's bits fit in 63 bits, but nine eighths of 2^63 bytes do not.
    List<TensorSpec> nine = new ArrayList<>();
    for (int i = 0; i < 9; i++) {
      nine.add(new TensorSpec("t" + i, DType.U8, new long[] {Long.MAX_VALUE / 8}));
    }
    assertThrows(IllegalArgumentException.class, () -> SafeTensorsWriter.header(null, nine));
  }

  @Test
  void tensorSpecCopiesItsShape() {
    long[] shape = {2, 3};
    TensorSpec spec = new TensorSpec("s", DType.F32, shape);
    shape[0] = 99;
    spec.shape()[1] = 99;
    assertArrayEquals(new long[] {2, 3}, spec.shape());
    assertEquals(new TensorSpec("s", DType.F32, new long[] {2, 3}), spec);
  }

  // ---- the target is the old file or the whole new one ----

  private static final String OLD_HEADER = "{\"old\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}} ";

  private Path oldTarget(String name) throws IOException {
    Path target = dir.resolve(name);
    Files.write(target, file(56, OLD_HEADER, "0a0b0c"));
    return target;
  }

  private void assertOldTargetIntact(Path target) throws IOException {
    assertArrayEquals(file(56, OLD_HEADER, "0a0b0c"), Files.readAllBytes(target));
    try (SafeTensors file = SafeTensors.open(target)) {
      assertEquals(List.of("old"), file.names());
    }
  }

  @Test
  void aSourceThatFailsMidWayLeavesTheOldTargetIntactAndNoTemporaryFile() throws IOException {
    Path target = oldTarget("model.safetensors");
    Arena closed = Arena.ofConfined();
    MemorySegment gone = closed.allocate(8);
    closed.close();
    List<TensorView> tensors = List.of(
        tensor("first", DType.F64, new long[] {1}, "0000000000000000"),
        TensorView.of("second", DType.F32, new long[] {2}, gone));

    assertThrows(IllegalStateException.class, () -> SafeTensorsWriter.write(target, null, tensors));

    assertOldTargetIntact(target);
    assertEquals(List.of(target), directoryListing());
  }

  @Test
  void anIoErrorWhileWritingLeavesTheOldTargetIntactAndNoTemporaryFile() throws IOException {
    Path target = oldTarget("model.safetensors");
    try (SafeTensorsWriter out = SafeTensorsWriter.create(target, null,
        List.of(new TensorSpec("a", DType.U8, new long[] {8 << 20})))) {
      out.write("a", MemorySegment.ofArray(new byte[1000]));
      // An interrupt closes the channel under the next write (large enough to reach the file,
      // not only the writer's 2 MiB buffer): a real I/O error.
      Thread.currentThread().interrupt();
      try {
        assertThrows(ClosedByInterruptException.class,
            () -> out.write("a", MemorySegment.ofArray(new byte[4 << 20])));
      } finally {
        Thread.interrupted();
      }
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> out.write("a", MemorySegment.ofArray(new byte[1])));
      assertTrue(e.getMessage().contains("failed"), e.getMessage());
      assertThrows(IllegalStateException.class, out::commit);
    }
    assertOldTargetIntact(target);
    assertEquals(List.of(target), directoryListing());
  }

  @Test
  void aFailedRenameLeavesTheTargetAsItWas() throws IOException {
    Path target = dir.resolve("taken.safetensors");
    Files.createDirectory(target);
    Files.writeString(target.resolve("keep.txt"), "keep");
    try (SafeTensorsWriter out = SafeTensorsWriter.create(target, null, List.of())) {
      assertThrows(IOException.class, out::commit);
    }
    assertEquals("keep", Files.readString(target.resolve("keep.txt")));
    assertEquals(List.of(target), directoryListing());
  }

  @Test
  void commitReplacesAnExistingTarget() throws IOException {
    Path target = oldTarget("model.safetensors");
    SafeTensorsWriter.write(target, null, List.of(tensor("new", DType.U8, new long[] {1}, "ff")));
    try (SafeTensors file = SafeTensors.open(target)) {
      assertEquals(List.of("new"), file.names());
    }
    assertEquals(List.of(target), directoryListing());
  }

  @Test
  @Timeout(120)
  void aWriterProcessKilledMidWayLeavesTheOldTargetIntact() throws Exception {
    Path target = oldTarget("model.safetensors");
    // 64 chunks of 1 MiB, 100 ms apart: killed after the 4th, seconds before it could finish.
    Process child = ChildJvm.start(List.of("-Xmx64m"), "file", target.toString(), "64", "100");
    try {
      BufferedReader output = ChildJvm.output(child);
      String line;
      while ((line = output.readLine()) != null && !line.equals("progress 4")) {
        // wait until the child is into the data
      }
      assertEquals("progress 4", line, "the child stopped early");
      child.destroyForcibly();
      child.waitFor();
    } finally {
      child.destroyForcibly();
    }

    assertOldTargetIntact(target);
    List<Path> leftovers = directoryListing().stream().filter(p -> !p.equals(target)).toList();
    assertEquals(1, leftovers.size(), "the killed writer's temporary file: " + leftovers);
    assertTrue(leftovers.get(0).getFileName().toString().startsWith(".model.safetensors.tmp-"));
    long size = Files.size(leftovers.get(0));
    // The writer hands the file whole 2 MiB blocks: after 4 MiB of data, at least 2 MiB are in.
    assertTrue(size >= 2L << 20 && size < 64L << 20, "the child was killed mid-write: " + size);
  }

  @Test
  @Timeout(300)
  void streamsAFileFourTimesLargerThanTheWritersHeap() throws Exception {
    Path target = dir.resolve("big.safetensors");
    Process child = ChildJvm.start(List.of("-Xmx64m", "-XX:+UseSerialGC"),
        "file", target.toString(), "256", "0");
    String output = ChildJvm.finish(child);
    assertEquals(0, child.exitValue(), output);
    assertTrue(output.endsWith("committed\n"), output);

    try (SafeTensors file = SafeTensors.open(target)) {
      assertEquals(256L << 20, file.dataLength());
      assertEquals(Map.of("format", "pt"), file.metadata().orElseThrow());
      WriterProcess.verify(file.tensors());
    }
  }

  @Test
  void closeIsIdempotentAndWritesAfterItFail() throws IOException {
    SafeTensorsWriter out = SafeTensorsWriter.create(dir.resolve("c.safetensors"), null,
        List.of(new TensorSpec("a", DType.U8, new long[] {1})));
    out.close();
    out.close();
    assertThrows(IllegalStateException.class, () -> out.write("a", MemorySegment.ofArray(new byte[1])));
    assertThrows(IllegalStateException.class, out::commit);
    assertEquals(List.of(), directoryListing());
  }
}
