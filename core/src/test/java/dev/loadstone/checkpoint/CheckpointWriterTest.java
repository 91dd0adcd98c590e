package dev.loadstone.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.ChildJvm;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorSpec;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Writing model directories as Hugging Face does, and reading them back. */
class CheckpointWriterTest {
  private static final String SHARD1 = "model-00001-of-00002.safetensors";
  private static final String SHARD2 = "model-00002-of-00002.safetensors";

  @TempDir
  Path root;

  private static TensorView u8(String name, int... values) {
    byte[] bytes = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      bytes[i] = (byte) values[i];
    }
    return TensorView.of(name, DType.U8, new long[] {values.length}, MemorySegment.ofArray(bytes));
  }

  private static TensorView f32(String name, float... values) {
    return TensorView.of(name, DType.F32, new long[] {values.length}, MemorySegment.ofArray(values));
  }

  /** A file: the header length, the header text with its padding, the data. */
  private static byte[] file(long headerLength, String paddedHeader, String dataHex) {
    byte[] header = paddedHeader.getBytes(StandardCharsets.UTF_8);
    assertEquals(headerLength, header.length, "test data: the header literal's length");
    ByteBuffer out = ByteBuffer.allocate(8 + header.length + dataHex.length() / 2)
        .order(ByteOrder.LITTLE_ENDIAN);
    out.putLong(headerLength).put(header).put(HexFormat.of().parseHex(dataHex));
    return out.array();
  }

  private List<String> listing(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void writesASingleModelSafetensorsWhenEverythingFitsInOneShard() throws IOException {
    Path dir = root.resolve("small");
    CheckpointWriter.write(dir, Map.of("format", "pt"), List.of(u8("b", 2), f32("a", 1f)));

    assertEquals(List.of("model.safetensors"), listing(dir));
    assertArrayEquals(file(144, "{\"__metadata__\":{\"format\":\"pt\"},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[4,5]}}       ",
        "0000803f02"), Files.readAllBytes(dir.resolve("model.safetensors")));
  }

  @Test
  void writesShardsAndAnIndexAsTransformersDoes() throws IOException {
    Path dir = root.resolve("sharded");
    CheckpointWriter.write(dir, Map.of("format", "pt"),
        List.of(f32("c", 3f, 3f), f32("a", 1f, 1f), f32("b", 2f, 2f)), 16);

    assertEquals(List.of(SHARD1, SHARD2, "model.safetensors.index.json"), listing(dir));
    assertEquals("{\n"
        + "  \"metadata\": {\n"
        + "    \"total_size\": 24\n"
        + "  },\n"
        + "  \"weight_map\": {\n"
        + "    \"a\": \"model-00001-of-00002.safetensors\",\n"
        + "    \"b\": \"model-00001-of-00002.safetensors\",\n"
        + "    \"c\": \"model-00002-of-00002.safetensors\"\n"
        + "  }\n"
        + "}\n", Files.readString(dir.resolve("model.safetensors.index.json")));
    assertArrayEquals(file(88, "{\"__metadata__\":{\"format\":\"pt\"},"
            + "\"c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ",
        "0000404000004040"), Files.readAllBytes(dir.resolve(SHARD2)));
    try (SafeTensors first = SafeTensors.open(dir.resolve(SHARD1))) {
      assertEquals(List.of("a", "b"), first.names());
    }
  }

  @Test
  void escapesTheIndexAsPythonsJsonDumpsDoes() throws IOException {
    // sort_keys orders by code point; ensure_ascii escapes all but printable ASCII as lowercase
    // \\uXXXX, a supplementary character as its surrogate pair.
    Path dir = root.resolve("unicode");
    CheckpointWriter.write(dir, null, List.of(u8("😀", 1), u8("～", 2), u8("日本", 3),
        u8("é", 4), u8("\u007f\n\u0001", 5), u8("a\"b\\", 6)), 3);

    assertEquals("{\n"
        + "  \"metadata\": {\n"
        + "    \"total_size\": 6\n"
        + "  },\n"
        + "  \"weight_map\": {\n"
        + "    \"a\\\"b\\\\\": \"model-00001-of-00002.safetensors\",\n"
        + "    \"\\u007f\\n\\u0001\": \"model-00001-of-00002.safetensors\",\n"
        + "    \"\\u00e9\": \"model-00001-of-00002.safetensors\",\n"
        + "    \"\\u65e5\\u672c\": \"model-00002-of-00002.safetensors\",\n"
        + "    \"\\uff5e\": \"model-00002-of-00002.safetensors\",\n"
        + "    \"\\ud83d\\ude00\": \"model-00002-of-00002.safetensors\"\n"
        + "  }\n"
        + "}\n", Files.readString(dir.resolve("model.safetensors.index.json")));
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(4, model.tensor("é").getLong(0));
      assertEquals(1, model.tensor("😀").getLong(0));
    }
  }

  @Test
  void splitsAsHuggingFaceHubDoesWithAnOversizedTensorInAShardOfItsOwn() throws IOException {
    // huggingface_hub's split over a (4 B), big (40 B), c (4 B), d (12 B) with a 16-byte
    // maximum: big is appended at once as shard 1; a and c fill shard 2; d starts shard 3.
    Path dir = root.resolve("oversized");
    List<TensorSpec> specs = List.of(new TensorSpec("d", DType.U8, new long[] {12}),
        new TensorSpec("big", DType.U8, new long[] {40}),
        new TensorSpec("c", DType.U8, new long[] {4}),
        new TensorSpec("a", DType.U8, new long[] {4}));
    try (CheckpointWriter out = CheckpointWriter.create(dir, null, specs, 16)) {
      assertEquals(List.of("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
          "model-00003-of-00003.safetensors"), out.files());
      assertEquals(List.of(List.of("big"), List.of("a", "c"), List.of("d")),
          out.shards().stream().map(s -> s.stream().map(TensorSpec::name).toList()).toList());
      assertEquals(List.of("a", "big", "c", "d"), out.tensors().stream().map(TensorSpec::name).toList());
      for (TensorSpec spec : out.tensors()) {
        out.write(spec.name(), MemorySegment.ofArray(new byte[(int) spec.byteSize()]));
      }
      out.commit();
    }
    assertTrue(Files.readString(dir.resolve("model.safetensors.index.json"))
        .contains("\"big\": \"model-00001-of-00003.safetensors\""));
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(List.of("big", "a", "c", "d"), model.names());
      model.checkTotalSize();
      assertEquals(60, model.totalSize());
    }
  }

  @Test
  void roundTripsEveryTensorThroughCheckpointOpen() throws IOException {
    Random random = new Random(3);
    List<TensorView> tensors = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      byte[] data = new byte[2 * (1 + random.nextInt(200))];
      random.nextBytes(data);
      DType dtype = i % 3 == 0 ? DType.BF16 : i % 3 == 1 ? DType.I16 : DType.U8;
      tensors.add(TensorView.of("layers." + i + ".w", dtype,
          new long[] {data.length / (dtype.bits() / 8)}, MemorySegment.ofArray(data)));
    }
    Path dir = root.resolve("round");
    CheckpointWriter.write(dir, Map.of("format", "pt"), tensors, 1000);

    try (Checkpoint model = Checkpoint.open(dir)) {
      assertTrue(model.files().size() > 3, "several shards: " + model.files());
      model.checkTotalSize();
      assertEquals(Map.of("format", "pt"), model.metadata().orElseThrow());
      assertEquals(tensors.size(), model.names().size());
      for (TensorView written : tensors) {
        TensorView read = model.tensor(written.name());
        assertEquals(written.dtype(), read.dtype());
        assertArrayEquals(written.segment().toArray(ValueLayout.JAVA_BYTE),
            read.segment().toArray(ValueLayout.JAVA_BYTE));
      }
      for (SafeTensors shard : model.shards()) {
        assertTrue(shard.dataLength() <= 1000, shard + " holds at most the maximum");
      }
    }
  }

  @Test
  void writesAnEmptyModelSafetensorsForNoTensors() throws IOException {
    Path dir = root.resolve("none");
    CheckpointWriter.write(dir, null, List.of());
    assertEquals(List.of("model.safetensors"), listing(dir));
    assertArrayEquals(file(8, "{}      ", ""), Files.readAllBytes(dir.resolve("model.safetensors")));
  }

  @Test
  void commitRefusesAnIncompleteTensorAndPutsNothingInPlace() throws IOException {
    Path dir = root.resolve("incomplete");
    try (CheckpointWriter out = CheckpointWriter.create(dir, null,
        List.of(new TensorSpec("a", DType.U8, new long[] {8}),
            new TensorSpec("b", DType.U8, new long[] {8})), 8)) {
      out.write("a", MemorySegment.ofArray(new byte[8]));
      out.write("b", MemorySegment.ofArray(new byte[7]));
      IllegalStateException e = assertThrows(IllegalStateException.class, out::commit);
      assertTrue(e.getMessage().contains("'b' has 7 of its 8 bytes"), e.getMessage());
    }
    assertEquals(List.of(), listing(dir));
  }

  @Test
  void aFailureMidWayLeavesTheEarlierCheckpointIntact() throws IOException {
    Path dir = root.resolve("keep");
    CheckpointWriter.write(dir, null, List.of(u8("a", 1), u8("b", 2), u8("c", 3)), 1);
    Map<String, byte[]> before = new java.util.TreeMap<>();
    for (String name : listing(dir)) {
      before.put(name, Files.readAllBytes(dir.resolve(name)));
    }
    Arena arena = Arena.ofConfined();
    MemorySegment gone = arena.allocate(1);
    arena.close();

    assertThrows(IllegalStateException.class, () -> CheckpointWriter.write(dir, null,
        List.of(u8("a", 9), TensorView.of("b", DType.U8, new long[] {1}, gone), u8("c", 9)), 1));

    assertEquals(before.keySet(), new java.util.TreeSet<>(listing(dir)));
    for (Map.Entry<String, byte[]> entry : before.entrySet()) {
      assertArrayEquals(entry.getValue(), Files.readAllBytes(dir.resolve(entry.getKey())), entry.getKey());
    }
  }

  @Test
  void closingWithoutCommitOnceEveryShardIsOnDiskLeavesTheEarlierCheckpointAndNoTemporaryFile()
      throws IOException {
    Path dir = root.resolve("abort");
    CheckpointWriter.write(dir, null, List.of(u8("a", 1), u8("b", 2), u8("c", 3)), 1);
    Map<String, byte[]> before = new java.util.TreeMap<>();
    for (String name : listing(dir)) {
      before.put(name, Files.readAllBytes(dir.resolve(name)));
    }

    try (CheckpointWriter out = CheckpointWriter.create(dir, null,
        Stream.of("a", "b", "c").map(name -> new TensorSpec(name, DType.U8, new long[] {1})).toList(),
        1)) {
      for (TensorSpec spec : out.tensors()) {
        out.write(spec.name(), MemorySegment.ofArray(new byte[] {9}));
      }
      List<String> during = listing(dir);
      assertEquals(before.size() + 3, during.size(), "a temporary file per shard: " + during);
      assertTrue(during.containsAll(before.keySet()), during.toString());
    }

    assertEquals(before.keySet(), new java.util.TreeSet<>(listing(dir)));
    for (Map.Entry<String, byte[]> entry : before.entrySet()) {
      assertArrayEquals(entry.getValue(), Files.readAllBytes(dir.resolve(entry.getKey())), entry.getKey());
    }
  }

  @Test
  void writingOneFileOverShardsRemovesTheStaleIndexAndShards() throws IOException {
    Path dir = root.resolve("shrink");
    CheckpointWriter.write(dir, null, List.of(u8("a", 1), u8("b", 2), u8("c", 3)), 1);
    Files.writeString(dir.resolve("config.json"), "{}");
    assertEquals(List.of("config.json", "model-00001-of-00003.safetensors",
        "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
        "model.safetensors.index.json"), listing(dir));

    CheckpointWriter.write(dir, null, List.of(u8("x", 7)));

    assertEquals(List.of("config.json", "model.safetensors"), listing(dir));
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(List.of("x"), model.names());
    }
  }

  @Test
  void writingShardsOverOneFileRemovesTheStaleModelSafetensors() throws IOException {
    // Checkpoint.open (like transformers) prefers model.safetensors: left behind, it would hide
    // the new shards.
    Path dir = root.resolve("grow");
    CheckpointWriter.write(dir, null, List.of(u8("old", 1)));
    CheckpointWriter.write(dir, null, List.of(u8("a", 1), u8("b", 2)), 1);

    assertEquals(List.of(SHARD1, SHARD2, "model.safetensors.index.json"), listing(dir));
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(List.of("a", "b"), model.names());
    }
  }

  @Test
  void rejectsDuplicateNamesAndANonPositiveShardSize() {
    assertThrows(IllegalArgumentException.class, () -> CheckpointWriter.create(root.resolve("d"),
        null, List.of(new TensorSpec("a", DType.U8, new long[] {1}),
            new TensorSpec("a", DType.U8, new long[] {1})), 1));
    assertThrows(IllegalArgumentException.class, () -> CheckpointWriter.create(root.resolve("d"),
        null, List.of(new TensorSpec("__metadata__", DType.U8, new long[] {1})), 1));
    assertThrows(IllegalArgumentException.class, () -> CheckpointWriter.create(root.resolve("d"),
        null, List.of(), 0));
    assertFalse(Files.exists(root.resolve("d")));
  }

  @Test
  @Timeout(300)
  void streamsAShardedCheckpointLargerThanTheWritersHeap() throws Exception {
    Path dir = root.resolve("big");
    // 128 MiB in four 32 MiB tensors, at most 64 MiB a shard: two shards, a 32 MiB heap.
    Process child = ChildJvm.start(List.of("-Xmx32m", "-XX:+UseSerialGC"),
        "checkpoint", dir.toString(), "128", "0", String.valueOf(64L << 20));
    String output = ChildJvm.finish(child);
    assertEquals(0, child.exitValue(), output);

    assertEquals(List.of(SHARD1, SHARD2, "model.safetensors.index.json"), listing(dir));
    try (Checkpoint model = Checkpoint.open(dir)) {
      model.checkTotalSize();
      assertEquals(128L << 20, model.totalSize());
      dev.loadstone.safetensors.WriterProcess.verify(model.tensors());
    }
  }
}
