package dev.loadstone.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsException;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Opening model directories: single files, indexes and shards, and every way an index lies. */
class CheckpointTest {
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

  private static void shard(Path file, TensorView... tensors) throws IOException {
    SafeTensorsWriter.write(file, Map.of("format", "pt"), List.of(tensors));
  }

  private static String index(long totalSize, String weightMapEntries) {
    return "{\n  \"metadata\": {\n    \"total_size\": " + totalSize + "\n  },\n  \"weight_map\": {\n"
        + weightMapEntries + "\n  }\n}\n";
  }

  /** Two shards: a, b in the first (8 + 3 bytes), c in the second (4 bytes). */
  private Path sharded(String indexJson) throws IOException {
    Path dir = Files.createDirectories(root.resolve("model"));
    shard(dir.resolve(SHARD1), f32("a", 1f, 2f), u8("b", 1, 2, 3));
    shard(dir.resolve(SHARD2), f32("c", 3f));
    Files.writeString(dir.resolve(Checkpoint.INDEX_FILE_NAME), indexJson);
    return dir;
  }

  private Path sharded() throws IOException {
    return sharded(index(15, "    \"a\": \"" + SHARD1 + "\",\n    \"b\": \"" + SHARD1
        + "\",\n    \"c\": \"" + SHARD2 + "\""));
  }

  private CheckpointException openFails(Path path, Reason reason) {
    CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(path));
    assertEquals(reason, e.reason(), e.getMessage());
    assertTrue(e.getMessage().contains(reason.rule()), e.getMessage());
    return e;
  }

  @Test
  void opensASafetensorsFile() throws IOException {
    Path file = root.resolve("weights.safetensors");
    shard(file, f32("w", 1f, 2f));
    try (Checkpoint model = Checkpoint.open(file)) {
      assertEquals(List.of(file), model.files());
      assertEquals(List.of("w"), model.names());
      assertEquals(2f, model.tensor("w").getFloat(1));
      assertEquals(Map.of("format", "pt"), model.metadata().orElseThrow());
      assertTrue(model.index().isEmpty());
      assertEquals(OptionalLong.empty(), model.declaredTotalSize());
      assertEquals(8, model.totalSize());
    }
  }

  @Test
  void opensADirectoryWithModelSafetensors() throws IOException {
    Path dir = Files.createDirectories(root.resolve("single"));
    shard(dir.resolve("model.safetensors"), f32("w", 5f));
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(List.of(dir.resolve("model.safetensors")), model.files());
      assertEquals(5f, model.tensor("w").getFloat(0));
    }
  }

  @Test
  void opensShardsThroughTheIndex() throws IOException {
    Path dir = sharded();
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(List.of(dir.resolve(SHARD1).toAbsolutePath(), dir.resolve(SHARD2).toAbsolutePath()),
          model.files());
      assertEquals(List.of("a", "b", "c"), model.names());
      assertEquals(2f, model.tensor("a").getFloat(1));
      assertEquals(3, model.tensor("b").getLong(2));
      assertEquals(3f, model.tensor("c").getFloat(0));
      assertTrue(model.find("d").isEmpty());
      assertTrue(model.contains("c"));
      assertEquals(Map.of("format", "pt"), model.metadata().orElseThrow());
      assertEquals(dir.resolve(Checkpoint.INDEX_FILE_NAME), model.index().orElseThrow());
      assertEquals(OptionalLong.of(15), model.declaredTotalSize());
      assertEquals(15, model.totalSize());
      model.checkTotalSize();
    }
  }

  @Test
  void opensAnIndexFileNamedDirectly() throws IOException {
    Path dir = sharded();
    try (Checkpoint model = Checkpoint.open(dir.resolve(Checkpoint.INDEX_FILE_NAME))) {
      assertEquals(List.of("a", "b", "c"), model.names());
    }
  }

  @Test
  void prefersModelSafetensorsToAnIndexAsTransformersDoes() throws IOException {
    Path dir = sharded();
    shard(dir.resolve("model.safetensors"), u8("only", 9));
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(List.of("only"), model.names());
    }
  }

  @Test
  void aDirectoryWithoutWeightsIsAnError() throws IOException {
    Path dir = Files.createDirectories(root.resolve("empty"));
    openFails(dir, Reason.NO_WEIGHTS);
    assertThrows(NoSuchFileException.class, () -> Checkpoint.open(root.resolve("absent")));
  }

  @Test
  void aMissingShardIsAnErrorNamingIt() throws IOException {
    Path dir = sharded();
    Files.delete(dir.resolve(SHARD2));
    CheckpointException e = openFails(dir, Reason.MISSING_SHARD);
    assertEquals(dir.resolve(SHARD2).toAbsolutePath(), e.file().orElseThrow());
    assertTrue(e.getMessage().contains(SHARD2), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(strings = {"../outside.safetensors", "/tmp/outside.safetensors",
      "sub/../../outside.safetensors", "..\\outside.safetensors", "sub\\..\\..\\outside.safetensors",
      "C:\\outside.safetensors", "\\\\server\\share\\x.safetensors", "", ".", "./"})
  void shardNamesThatCouldLeaveTheDirectoryAreRejected(String shardName) throws IOException {
    // A valid file waits outside, so only the name's escape can make this fail.
    shard(root.resolve("outside.safetensors"), f32("c", 3f));
    Path dir = sharded(index(15, "    \"a\": \"" + SHARD1 + "\",\n    \"b\": \"" + SHARD1
        + "\",\n    \"c\": \"" + shardName.replace("\\", "\\\\") + "\""));

    CheckpointException e = openFails(dir, Reason.INVALID_SHARD_NAME);
    assertEquals("c", e.tensor().orElseThrow());
    assertEquals(dir.resolve(Checkpoint.INDEX_FILE_NAME), e.file().orElseThrow());
  }

  @Test
  void aShardInASubdirectoryIsAllowed() throws IOException {
    Path dir = sharded(index(15, "    \"a\": \"" + SHARD1 + "\",\n    \"b\": \"" + SHARD1
        + "\",\n    \"c\": \"sub/./c.safetensors\""));
    Files.createDirectories(dir.resolve("sub"));
    shard(dir.resolve("sub/c.safetensors"), f32("c", 3f));
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(3f, model.tensor("c").getFloat(0));
      assertEquals(dir.resolve("sub/c.safetensors").toAbsolutePath(), model.files().get(1));
    }
  }

  @Test
  void aShardThatIsASymbolicLinkIsFollowedAsInTheHuggingFaceCache() throws IOException {
    Path blobs = Files.createDirectories(root.resolve("blobs"));
    shard(blobs.resolve("0123abcd"), f32("c", 3f));
    Path dir = sharded();
    Files.delete(dir.resolve(SHARD2));
    Files.createSymbolicLink(dir.resolve(SHARD2), blobs.resolve("0123abcd"));
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(3f, model.tensor("c").getFloat(0));
    }
  }

  @Test
  void aTensorListedInTheIndexButMissingFromItsShardIsAnError() throws IOException {
    Path dir = sharded(index(15, "    \"a\": \"" + SHARD1 + "\",\n    \"b\": \"" + SHARD1
        + "\",\n    \"c\": \"" + SHARD2 + "\",\n    \"d\": \"" + SHARD2 + "\""));
    CheckpointException e = openFails(dir, Reason.TENSOR_MISSING_FROM_SHARD);
    assertEquals("d", e.tensor().orElseThrow());
    assertEquals(dir.resolve(SHARD2).toAbsolutePath(), e.file().orElseThrow());
  }

  @Test
  void aTensorListedUnderTheWrongShardIsAnError() throws IOException {
    Path dir = sharded(index(15, "    \"a\": \"" + SHARD1 + "\",\n    \"b\": \"" + SHARD2
        + "\",\n    \"c\": \"" + SHARD2 + "\""));
    CheckpointException e = openFails(dir, Reason.TENSOR_MISSING_FROM_SHARD);
    assertEquals("b", e.tensor().orElseThrow());
    assertEquals(dir.resolve(SHARD2).toAbsolutePath(), e.file().orElseThrow());
  }

  @Test
  void aTensorInAShardButNotInTheIndexIsAnError() throws IOException {
    Path dir = sharded(index(15, "    \"a\": \"" + SHARD1 + "\",\n    \"c\": \"" + SHARD2 + "\""));
    CheckpointException e = openFails(dir, Reason.TENSOR_NOT_IN_INDEX);
    assertEquals("b", e.tensor().orElseThrow());
    assertEquals(dir.resolve(SHARD1).toAbsolutePath(), e.file().orElseThrow());
  }

  @Test
  void aTensorInTwoShardsIsAnError() throws IOException {
    Path dir = sharded();
    shard(dir.resolve(SHARD2), f32("c", 3f), u8("b", 1, 2, 3));
    CheckpointException e = openFails(dir, Reason.DUPLICATE_TENSOR);
    assertEquals("b", e.tensor().orElseThrow());
  }

  @Test
  void aTensorListedTwiceInTheIndexIsAnError() throws IOException {
    Path dir = sharded(index(15, "    \"a\": \"" + SHARD1 + "\",\n    \"b\": \"" + SHARD1
        + "\",\n    \"c\": \"" + SHARD2 + "\",\n    \"a\": \"" + SHARD1 + "\""));
    CheckpointException e = openFails(dir, Reason.DUPLICATE_TENSOR);
    assertEquals("a", e.tensor().orElseThrow());
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "[]", "{\"weight_map\": []}", "{\"metadata\": {}}",
      "{\"weight_map\": {\"a\": 1}}", "{\"weight_map\": {}} {}", "{\"weight_map\": {\"a\": ",
      "{\"metadata\": {\"total_size\": -1}, \"weight_map\": {}}",
      "{\"metadata\": {\"total_size\": \"15\"}, \"weight_map\": {}}",
      "{\"metadata\": {\"total_size\": 1.5}, \"weight_map\": {}}",
      "{\"metadata\": [], \"weight_map\": {}}",
      "{\"weight_map\": {}, \"weight_map\": {}}"})
  void aMalformedIndexIsAnError(String json) throws IOException {
    Path dir = sharded(json);
    openFails(dir, Reason.INVALID_INDEX);
  }

  @Test
  void unknownIndexFieldsAreIgnoredAndAnIntegralFloatTotalSizeIsAccepted() throws IOException {
    Path dir = sharded("{\"metadata\": {\"total_parameters\": 4, \"total_size\": 1.5e1, \"x\": [1, {}]},"
        + " \"other\": {\"nested\": [null]}, \"weight_map\": {\"a\": \"" + SHARD1 + "\", \"b\": \""
        + SHARD1 + "\", \"c\": \"" + SHARD2 + "\"}}");
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(OptionalLong.of(15), model.declaredTotalSize());
    }
  }

  @Test
  void aWrongTotalSizeOpensButFailsTheCheck() throws IOException {
    Path dir = sharded(index(16, "    \"a\": \"" + SHARD1 + "\",\n    \"b\": \"" + SHARD1
        + "\",\n    \"c\": \"" + SHARD2 + "\""));
    try (Checkpoint model = Checkpoint.open(dir)) {
      CheckpointException e = assertThrows(CheckpointException.class, model::checkTotalSize);
      assertEquals(Reason.TOTAL_SIZE_MISMATCH, e.reason());
      assertTrue(e.getMessage().contains("16") && e.getMessage().contains("15"), e.getMessage());
    }
  }

  @Test
  void aShardThatBreaksTheFormatRaisesTheFormatError() throws IOException {
    Path dir = sharded();
    Files.write(dir.resolve(SHARD2), new byte[] {1, 2, 3});
    SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> Checkpoint.open(dir));
    assertEquals(SafeTensorsException.Reason.FILE_TOO_SMALL, e.reason());
    assertFalse(e instanceof CheckpointException, "the shard's own rule, not the directory's");
  }

  @Test
  void oneCatchCoversBrokenFilesAndBrokenDirectories() throws IOException {
    // A caller that catches the format's exception also gets the directory's rules, with the
    // same accessors: reason, file, tensor, and a message that holds them all.
    Path dir = sharded(index(15, "    \"a\": \"" + SHARD1 + "\",\n    \"c\": \"" + SHARD2 + "\""));
    SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> Checkpoint.open(dir));
    assertTrue(e instanceof CheckpointException);
    assertEquals(Reason.TENSOR_NOT_IN_INDEX, e.reason());
    assertEquals("b", e.tensor().orElseThrow());
    Path shard = dir.resolve(SHARD1).toAbsolutePath();
    assertEquals(shard, e.file().orElseThrow());
    assertEquals(shard + ": TENSOR_NOT_IN_INDEX: tensor 'b': " + e.detail() + " (rule: "
        + Reason.TENSOR_NOT_IN_INDEX.rule() + ")", e.getMessage());
  }

  @Test
  void anIndexWithAnEmptyWeightMapOpensAsAnEmptyCheckpoint() throws IOException {
    Path dir = sharded("{\"weight_map\": {}}");
    // The shards in the directory are not in the index, and are not opened.
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertEquals(List.of(), model.names());
      assertEquals(List.of(), model.files());
      assertTrue(model.metadata().isEmpty());
    }
  }

  @Test
  void closeUnmapsEveryShard() throws IOException {
    Path dir = sharded();
    TensorView a;
    TensorView c;
    try (Checkpoint model = Checkpoint.open(dir)) {
      a = model.tensor("a");
      c = model.tensor("c");
      assertTrue(model.shards().stream().allMatch(s -> s.isOpen()));
    }
    assertThrows(IllegalStateException.class, () -> a.getFloat(0));
    assertThrows(IllegalStateException.class, () -> c.getFloat(0));
  }

  @Test
  void anUnknownTensorNameIsNoSuchElement() throws IOException {
    Path dir = sharded();
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertThrows(java.util.NoSuchElementException.class, () -> model.tensor("zz"));
      assertFalse(model.contains("zz"));
    }
  }

  @Test
  void readsShardsWithNonAsciiNamesAndEscapedTensorNames() throws IOException {
    Path dir = Files.createDirectories(root.resolve("unicode"));
    shard(dir.resolve("poids-é.safetensors"), u8("é\"\n", 1));
    Files.writeString(dir.resolve(Checkpoint.INDEX_FILE_NAME),
        "{\"weight_map\": {\"\\u00e9\\\"\\n\": \"poids-\\u00e9.safetensors\"}}");
    try (Checkpoint model = Checkpoint.open(dir)) {
      assertArrayEquals(new byte[] {1},
          model.tensor("é\"\n").segment().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
    }
  }
}
