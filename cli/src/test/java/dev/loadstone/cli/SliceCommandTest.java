package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.Partition;
import dev.loadstone.store.PartitionRules;
import dev.loadstone.store.VarStore;
import dev.loadstone.store.Variable;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code loadstone slice} and {@code bench --rank --world}. */
class SliceCommandTest {
  @TempDir Path dir;

  /** A small Llama-shaped checkpoint (2 query and 2 key/value heads of 4; sizes that divide by 2 but not by 3) with config.json. */
  private Path model() throws IOException {
    Path model = Files.createDirectories(dir.resolve("model"));
    Random random = new Random(9);
    SafeTensorsWriter.write(model.resolve("model.safetensors"), Map.of("format", "pt"), List.of(
        tensor("model.embed_tokens.weight", new long[] {10, 8}, random),
        tensor("model.layers.0.self_attn.q_proj.weight", new long[] {8, 8}, random),
        tensor("model.layers.0.self_attn.k_proj.weight", new long[] {8, 8}, random),
        tensor("model.layers.0.self_attn.o_proj.weight", new long[] {8, 8}, random),
        tensor("model.layers.0.mlp.down_proj.weight", new long[] {8, 12}, random),
        tensor("model.layers.0.mlp.gate_up_proj.weight", new long[] {24, 8}, random),
        tensor("model.norm.weight", new long[] {8}, random)));
    Files.writeString(model.resolve("config.json"),
        "{\"hidden_size\": 8, \"num_attention_heads\": 2, \"num_key_value_heads\": 2, \"vocab_size\": 10}");
    return model;
  }

  private static TensorView tensor(String name, long[] shape, Random random) {
    long elements = 1;
    for (long dim : shape) {
      elements *= dim;
    }
    short[] values = new short[(int) elements];
    for (int i = 0; i < values.length; i++) {
      values[i] = (short) (Float.floatToRawIntBits(random.nextFloat() - 0.5f) >>> 16);
    }
    return TensorView.of(name, DType.BF16, shape, MemorySegment.ofArray(values));
  }

  @Test
  void aSliceLoadsWithAPlainCopyAndEqualsTheRanksSlice() throws IOException {
    Path model = model();
    for (int rank = 0; rank < 2; rank++) {
      Path out = dir.resolve("rank" + rank + ".safetensors");
      Cli.Result result = Cli.run("slice", model.toString(), out.toString(), "--rank", "" + rank, "--world", "2");
      assertEquals(0, result.exit(), result.err());
      assertTrue(result.out().startsWith("Wrote rank " + rank + " of 2 to "), result.out());
      Partition partition = new Partition(rank, 2, PartitionRules.llama(2, 2, 4));
      try (Checkpoint sliced = Checkpoint.open(out);
           VarStore plain = VarStore.fromCheckpoint(sliced, LoadOptions.defaults());
           Checkpoint full = Checkpoint.open(model);
           VarStore expected = VarStore.fromCheckpoint(full, LoadOptions.defaults().withPartition(partition))) {
        assertEquals(expected.variables().size(), plain.variables().size());
        for (Variable variable : expected.variables()) {
          Variable written = plain.variable(variable.name());
          assertArrayEquals(variable.shape(), written.shape(), variable.name());
          assertEquals(-1, variable.segment().mismatch(written.segment()), variable.name());
        }
        assertArrayEquals(new long[] {4, 8}, plain.variable("model.layers.0.self_attn.q_proj.weight").shape());
        assertArrayEquals(new long[] {8, 6}, plain.variable("model.layers.0.mlp.down_proj.weight").shape());
        assertArrayEquals(new long[] {8}, plain.variable("model.norm.weight").shape());
        // gate_up_proj: rows 0-5 (gate) and 12-17 (up) for rank 0.
        TensorView fused = full.tensor("model.layers.0.mlp.gate_up_proj.weight");
        TensorView mine = plain.variable("model.layers.0.mlp.gate_up_proj.weight").view();
        long gate = rank * 6;
        assertEquals(-1, fused.slice(0, gate, gate + 6).segment().mismatch(mine.slice(0, 0, 6).segment()));
        assertEquals(-1, fused.slice(0, 12 + gate, 18 + gate).segment().mismatch(mine.slice(0, 6, 12).segment()));
        Map<String, String> metadata = sliced.metadata().orElseThrow();
        assertEquals("pt", metadata.get("format"));
        assertEquals("" + rank, metadata.get(SliceCommand.RANK_KEY));
        assertEquals("2", metadata.get(SliceCommand.WORLD_KEY));
        assertEquals(partition.rules(), PartitionRules.parse(metadata.get(SliceCommand.RULES_KEY), "metadata"));
      }
    }
  }

  @Test
  void aRefusedSliceLeavesNoOutputBehind() throws IOException {
    Path model = model();
    Path out = dir.resolve("out");
    Files.createDirectories(out);
    // k_proj has 1 head per rank at most: 3 ranks cannot share 2 heads.
    Cli.Result result = Cli.run("slice", model.toString(), out.toString() + "/", "--rank", "0", "--world", "3");
    assertFalse(result.exit() == 0);
    assertTrue(result.err().contains("model.layers.0.self_attn.q_proj.weight")
        || result.err().contains("model.layers.0.self_attn.k_proj.weight"), result.err());
    assertTrue(result.err().contains("fewer than the 3 ranks"), result.err());
    try (Stream<Path> files = Files.list(out)) {
      assertEquals(List.of(), files.toList());
    }
  }

  @Test
  void aRulesFileCutsAsItSaysAndAMalformedOneIsNamedByLine() throws IOException {
    Path model = model();
    Path rules = dir.resolve("tp.rules");
    Files.writeString(rules, "# only the embedding\nembed_tokens\\.weight$ dim1\n");
    Path out = dir.resolve("r1.safetensors");
    Cli.Result result = Cli.run("slice", model.toString(), out.toString(), "--rank", "1", "--world", "2",
        "--rules", rules.toString());
    assertEquals(0, result.exit(), result.err());
    try (Checkpoint sliced = Checkpoint.open(out)) {
      assertArrayEquals(new long[] {10, 4}, sliced.tensor("model.embed_tokens.weight").shape());
      assertArrayEquals(new long[] {8, 8}, sliced.tensor("model.layers.0.self_attn.q_proj.weight").shape());
    }
    Files.writeString(rules, "embed_tokens dim0\nq_proj dim2x\n");
    Cli.Result bad = Cli.run("slice", model.toString(), dir.resolve("bad.safetensors").toString(), "--rank", "0",
        "--world", "2", "--rules", rules.toString());
    assertEquals(Main.EXIT_USAGE, bad.exit());
    assertTrue(bad.err().contains(rules + ": line 2: 'dim2x' is not a split"), bad.err());
    assertFalse(Files.exists(dir.resolve("bad.safetensors")));
  }

  @Test
  void benchLoadsOneRanksSliceAndReportsTheBytesItRead() throws IOException {
    Path model = model();
    long total;
    try (Checkpoint checkpoint = Checkpoint.open(model)) {
      total = checkpoint.totalSize();
    }
    long sliced = 0;
    for (int rank = 0; rank < 2; rank++) {
      Cli.Result result = Cli.run("bench", model.toString(), "--rank", "" + rank, "--world", "2", "--runs", "2",
          "--threads", "2", "--read", rank == 0 ? "positional" : "mapped", "--json");
      assertEquals(0, result.exit(), result.err());
      Map<String, Object> json = fields(result.out());
      assertEquals((double) rank, json.get("rank"));
      assertEquals(2.0, json.get("world"));
      assertEquals((double) total, json.get("bytes"));
      double cut = (double) json.get("sliced_bytes");
      double replicated = (double) json.get("replicated_bytes");
      assertEquals(total, cut + replicated);
      assertEquals(16.0, replicated, "the norm");
      assertEquals(cut / 2 + replicated, json.get("ideal_bytes_read"));
      assertEquals(json.get("ideal_bytes_read"), json.get("bytes_read"), "sizes divide by 2: exactly the ideal");
      assertEquals(json.get("bytes_read"), json.get("bytes_written"), "kept dtype: written as read");
      assertTrue(((String) json.get("rules")).contains("o_proj"));
      sliced = (long) cut;
    }
    assertTrue(sliced > 0);
    Cli.Result torch = Cli.run("bench", model.toString(), "--rank", "0", "--world", "2", "--backend", "torch");
    assertEquals(Main.EXIT_USAGE, torch.exit());
    Cli.Result half = Cli.run("bench", model.toString(), "--rank", "0");
    assertEquals(Main.EXIT_USAGE, half.exit());
    assertTrue(half.err().contains("give both --rank R and --world N"), half.err());
  }

  /** The numbers and strings of a flat JSON object (arrays and objects skipped). */
  private static Map<String, Object> fields(String json) throws IOException {
    Map<String, Object> fields = new HashMap<>();
    try (JsonParser parser = new JsonFactory().createParser(json.getBytes(StandardCharsets.UTF_8))) {
      assertEquals(JsonToken.START_OBJECT, parser.nextToken());
      while (parser.nextToken() == JsonToken.FIELD_NAME) {
        String name = parser.currentName();
        JsonToken value = parser.nextToken();
        if (value.isNumeric()) {
          fields.put(name, parser.getDoubleValue());
        } else if (value == JsonToken.VALUE_STRING) {
          fields.put(name, parser.getText());
        } else {
          parser.skipChildren();
        }
      }
    }
    return fields;
  }

  static byte[] bytes(MemorySegment segment) {
    return segment.toArray(ValueLayout.JAVA_BYTE);
  }
}
