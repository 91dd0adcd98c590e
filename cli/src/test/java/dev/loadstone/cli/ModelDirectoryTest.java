package dev.loadstone.cli;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.checkpoint.CheckpointWriter;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code inspect} and {@code verify} on model directories and index files. */
class ModelDirectoryTest {
  @TempDir Path dir;

  /** Four F32 tensors of 16 bytes each and one I64 of 24 bytes. */
  static List<TensorView> tensors() {
    List<TensorView> tensors = new ArrayList<>();
    for (int t = 0; t < 4; t++) {
      float[] values = new float[4];
      for (int i = 0; i < 4; i++) {
        values[i] = t * 10 + i + 0.5f;
      }
      tensors.add(TensorView.of("layer." + t + ".weight", DType.F32, new long[] {2, 2},
          MemorySegment.ofArray(values)));
    }
    tensors.add(TensorView.of("position_ids", DType.I64, new long[] {3},
        MemorySegment.ofArray(new long[] {0, 1, 2})));
    return tensors;
  }

  /** A model directory in shards of at most 40 bytes: 3 shards. */
  static Path sharded(Path dir) throws IOException {
    Path model = dir.resolve("model");
    CheckpointWriter.write(model, Map.of("format", "pt"), tensors(), 40);
    return model;
  }

  /** The shard of each tensor, as the index written by {@link #sharded} names it. */
  private static Map<String, String> weightMap(Path model) throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(model)) {
      Map<String, String> map = new TreeMap<>();
      for (TensorView tensor : checkpoint.tensors()) {
        map.put(tensor.name(), tensor.file().orElseThrow().getFileName().toString());
      }
      return map;
    }
  }

  private static void writeIndex(Path model, String totalSize, Map<String, String> weightMap)
      throws IOException {
    StringBuilder json = new StringBuilder("{\"metadata\": {\"total_size\": " + totalSize
        + "}, \"weight_map\": {");
    String separator = "";
    for (Map.Entry<String, String> entry : weightMap.entrySet()) {
      json.append(separator).append('"').append(entry.getKey()).append("\": \"")
          .append(entry.getValue()).append('"');
      separator = ", ";
    }
    json.append("}}\n");
    Files.writeString(model.resolve(Checkpoint.INDEX_FILE_NAME), json, UTF_8);
  }

  @Test
  void inspectJsonNamesEachTensorsShard() throws IOException {
    Path model = sharded(dir);
    Map<String, String> expected = weightMap(model);
    assertEquals(3, Set.copyOf(expected.values()).size(), expected.toString());
    for (Path path : List.of(model, model.resolve(Checkpoint.INDEX_FILE_NAME))) {
      Cli.Result result = Cli.run("inspect", "--json", path.toString());
      assertEquals(0, result.exit(), result.err());
      assertEquals(1, result.outLines().size());
      @SuppressWarnings("unchecked")
      Map<String, Object> json = (Map<String, Object>) InspectCommandTest.parse(result.out());
      assertEquals(Map.of("format", "pt"), json.get("metadata"));
      assertEquals(4 * 16L + 24, json.get("total_bytes"));
      @SuppressWarnings("unchecked")
      List<Map<String, Object>> listed = (List<Map<String, Object>>) json.get("tensors");
      Map<String, String> files = new TreeMap<>();
      for (Map<String, Object> tensor : listed) {
        files.put((String) tensor.get("name"), (String) tensor.get("file"));
      }
      assertEquals(expected, files);
      // Shards in name order, each tensor's offsets within its own shard.
      assertEquals(List.of("model-00001-of-00003.safetensors", "model-00001-of-00003.safetensors",
          "model-00002-of-00003.safetensors", "model-00002-of-00003.safetensors",
          "model-00003-of-00003.safetensors"), listed.stream().map(t -> t.get("file")).toList());
      assertEquals(Map.of("name", "position_ids", "dtype", "I64", "shape", List.of(3L),
          "data_offsets", List.of(0L, 24L), "file", "model-00001-of-00003.safetensors"), listed.get(0));
      assertEquals(List.of(24L, 40L), listed.get(1).get("data_offsets"));
      assertEquals(List.of(0L, 16L), listed.get(2).get("data_offsets"));
    }
  }

  @Test
  void inspectTextHasAFileColumnForShards() throws IOException {
    Path model = sharded(dir);
    Cli.Result result = Cli.run("inspect", model.toString());
    assertEquals(0, result.exit(), result.err());
    List<String> lines = result.outLines();
    assertEquals(model.resolve(Checkpoint.INDEX_FILE_NAME) + " (3 shards)", lines.get(0));
    assertEquals(List.of("NAME", "DTYPE", "SHAPE", "BYTES", "FILE", "DATA", "OFFSETS"), words(lines.get(2)));
    assertEquals(List.of("position_ids", "I64", "[3]", "24", "model-00001-of-00003.safetensors", "[0,", "24]"),
        words(lines.get(3)));
    assertEquals(List.of("layer.3.weight", "F32", "[2,", "2]", "16", "model-00003-of-00003.safetensors", "[0,", "16]"),
        words(lines.get(7)));
    assertTrue(lines.get(9).startsWith("5 tensors, 88 bytes of tensor data (88 B) in 3 files of "), lines.get(9));
    assertTrue(lines.get(9).endsWith(", index total_size agrees"), lines.get(9));
    assertEquals(List.of("Metadata:", "  format = pt"), lines.subList(11, 13));
  }

  @Test
  void aDirectoryWithOneFile() throws IOException {
    Path model = dir.resolve("single");
    CheckpointWriter.write(model, null, tensors());
    Cli.Result json = Cli.run("inspect", "--json", model.toString());
    assertEquals(0, json.exit(), json.err());
    @SuppressWarnings("unchecked")
    Map<String, Object> parsed = (Map<String, Object>) InspectCommandTest.parse(json.out());
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> listed = (List<Map<String, Object>>) parsed.get("tensors");
    assertEquals(5, listed.size());
    assertTrue(listed.stream().allMatch(t -> t.get("file").equals("model.safetensors")), listed.toString());

    Cli.Result text = Cli.run("inspect", model.toString());
    assertEquals(0, text.exit(), text.err());
    assertEquals(model.resolve("model.safetensors").toString(), text.outLines().get(0));
    assertEquals(List.of("NAME", "DTYPE", "SHAPE", "BYTES", "DATA", "OFFSETS"), words(text.outLines().get(2)));

    Cli.Result verify = Cli.run("verify", model.toString());
    assertEquals(0, verify.exit(), verify.err());
    assertEquals("OK " + model + ": 5 tensors in 1 file, 88 bytes\n", verify.out());
  }

  @Test
  void verifyAShardedDirectoryAndItsIndex() throws IOException {
    Path model = sharded(dir);
    Cli.Result result = Cli.run("verify", model.toString());
    assertEquals(0, result.exit(), result.err());
    assertEquals("OK " + model + ": 5 tensors in 3 files, 88 bytes\n", result.out());
    assertEquals("", result.err());
    Path index = model.resolve(Checkpoint.INDEX_FILE_NAME);
    Cli.Result byIndex = Cli.run("verify", index.toString());
    assertEquals(0, byIndex.exit(), byIndex.err());
    assertEquals("OK " + index + ": 5 tensors in 3 files, 88 bytes\n", byIndex.out());
  }

  @Test
  void indexNamingAMissingShard() throws IOException {
    Path model = sharded(dir);
    Map<String, String> map = weightMap(model);
    map.put("layer.3.weight", "model-00009-of-00009.safetensors");
    Files.delete(model.resolve("model-00003-of-00003.safetensors"));
    writeIndex(model, "88", map);
    assertInvalid(model, CheckpointException.Reason.MISSING_SHARD, "model-00009-of-00009.safetensors");
  }

  @Test
  void shardEscapingTheDirectory() throws IOException {
    Path model = sharded(dir);
    Map<String, String> map = weightMap(model);
    Files.move(model.resolve("model-00003-of-00003.safetensors"), dir.resolve("x.safetensors"));
    map.put("layer.3.weight", "../x.safetensors");
    writeIndex(model, "88", map);
    assertInvalid(model, CheckpointException.Reason.INVALID_SHARD_NAME, Checkpoint.INDEX_FILE_NAME);
  }

  @Test
  void tensorListedButMissingFromItsShard() throws IOException {
    Path model = sharded(dir);
    Map<String, String> map = weightMap(model);
    map.put("ghost", "model-00002-of-00003.safetensors");
    writeIndex(model, "88", map);
    assertInvalid(model, CheckpointException.Reason.TENSOR_MISSING_FROM_SHARD, "model-00002-of-00003.safetensors");
  }

  @Test
  void totalSizeMismatch() throws IOException {
    Path model = sharded(dir);
    writeIndex(model, "89", weightMap(model));
    assertInvalid(model, CheckpointException.Reason.TOTAL_SIZE_MISMATCH, Checkpoint.INDEX_FILE_NAME);
    // inspect shows the checkpoint all the same, and says the statement is wrong.
    Cli.Result inspect = Cli.run("inspect", model.toString());
    assertEquals(0, inspect.exit(), inspect.err());
    assertTrue(inspect.out().contains(", index total_size 89 DIFFERS\n"), inspect.out());
  }

  @Test
  void directoryWithoutWeights() {
    assertInvalid(dir, CheckpointException.Reason.NO_WEIGHTS, dir.toString());
  }

  @Test
  void aBrokenShardIsAFormatError() throws IOException {
    Path model = sharded(dir);
    Path shard = model.resolve("model-00002-of-00003.safetensors");
    Files.write(shard, new byte[] {0, 1}, java.nio.file.StandardOpenOption.APPEND);
    Cli.Result result = Cli.run("verify", model.toString());
    assertEquals(1, result.exit());
    assertEquals(1, result.errLines().size(), result.err());
    assertTrue(result.err().startsWith("INVALID " + shard + ": TRAILING_BYTES"), result.err());
  }

  /** verify and inspect (text and JSON) exit 1 with one line naming the file, reason and rule. */
  private static void assertInvalid(Path model, CheckpointException.Reason reason, String file) {
    Cli.Result verify = Cli.run("verify", model.toString());
    assertEquals(1, verify.exit(), verify.err());
    assertEquals("", verify.out());
    assertEquals(1, verify.errLines().size(), verify.err());
    String line = verify.errLines().get(0);
    assertTrue(line.startsWith("INVALID "), line);
    assertTrue(line.contains(file), line);
    assertTrue(line.contains(reason.name()), line);
    assertTrue(line.contains(reason.rule()), line);
    Cli.assertNoStackTrace(verify.err());
    if (reason == CheckpointException.Reason.TOTAL_SIZE_MISMATCH) {
      return; // inspect does not check total_size
    }
    for (String[] args : List.of(new String[] {"inspect", model.toString()},
        new String[] {"inspect", "--json", model.toString()})) {
      Cli.Result inspect = Cli.run(args);
      assertEquals(1, inspect.exit(), inspect.err());
      assertEquals("", inspect.out());
      assertEquals(1, inspect.errLines().size(), inspect.err());
      assertTrue(inspect.err().startsWith("loadstone inspect: invalid checkpoint: "), inspect.err());
      assertTrue(inspect.err().contains(reason.name()), inspect.err());
    }
  }

  private static List<String> words(String line) {
    return List.of(line.trim().split("\\s+"));
  }
}
