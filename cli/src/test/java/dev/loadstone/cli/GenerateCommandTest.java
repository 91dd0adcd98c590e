package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GenerateCommandTest {
  static final Path TINY = Cli.repoRoot().resolve("llama/src/test/resources/llama-tiny");
  static final Path FORTUNE = Cli.repoRoot().resolve(TourCommand.EXAMPLE).getParent();

  @TempDir Path dir;

  @Test
  void greedyIdsReproduceTheTinyFixture() {
    Cli.Result result = Cli.run("generate", "--model", TINY.toString(), "--prompt-ids", "1,17,42,5,9,33",
        "--print-ids", "--max-new-tokens", "12", "--temperature", "0", "--threads", "2");
    assertEquals(0, result.exit(), result.err());
    assertEquals("96,87,18,35,61,38,17,18,35,15,37,36\n", result.out());
    assertTrue(result.err().contains("ALIAS"), result.err());
    assertTrue(result.err().contains("decode"), result.err());
    assertTrue(result.err().contains("tokens/s"), result.err());
  }

  @Test
  void stopsAtTheEndOfSequenceUnlessToldNotTo() {
    String[] args = {"generate", "--model", FORTUNE.toString(), "--prompt-ids", "256,334,511,265,297,300,318,495",
        "--print-ids", "--max-new-tokens", "5", "--temperature", "0"};
    Cli.Result stopped = Cli.run(args);
    assertEquals(0, stopped.exit(), stopped.err());
    assertEquals("46,257\n", stopped.out());
    assertTrue(stopped.err().contains("stopped at end of sequence"), stopped.err());

    String[] ignoring = java.util.Arrays.copyOf(args, args.length + 1);
    ignoring[args.length] = "--ignore-eos";
    Cli.Result full = Cli.run(ignoring);
    assertEquals(0, full.exit(), full.err());
    assertEquals("46,257,256,73,262\n", full.out());
  }

  @Test
  void samplingIsRepeatableWithASeed() {
    String[] args = {"generate", "--model", TINY.toString(), "--prompt-ids", "1,2,3", "--print-ids",
        "--max-new-tokens", "20", "--temperature", "1.5", "--top-p", "0.9", "--seed", "7", "--ignore-eos"};
    Cli.Result first = Cli.run(args);
    Cli.Result second = Cli.run(args);
    assertEquals(0, first.exit(), first.err());
    assertEquals(first.out(), second.out());
    assertEquals(20, first.out().strip().split(",").length);
  }

  @Test
  void textGoesThroughTheModelsTokenizer() {
    Cli.Result result = Cli.run("generate", "--model", FORTUNE.toString(), "--prompt", "The meaning of life",
        "--max-new-tokens", "3", "--temperature", "0");
    assertEquals(0, result.exit(), result.err());
    assertFalse(result.out().isBlank());
    Cli.assertNoStackTrace(result.err());
  }

  @Test
  void usageErrorsExitWithTwo() {
    String model = TINY.toString();
    List<String[]> cases = List.of(
        new String[] {"generate", "--model", model},
        new String[] {"generate", "--model", model, "--prompt", "hi", "--prompt-ids", "1"},
        new String[] {"generate", "--prompt-ids", "1"},
        new String[] {"generate", "--model", model, "--prompt-ids", "1,x", "--print-ids"},
        new String[] {"generate", "--model", model, "--prompt-ids", "1,,2", "--print-ids"},
        new String[] {"generate", "--model", model, "--prompt-ids", "-1", "--print-ids"},
        new String[] {"generate", "--model", model, "--prompt-ids", "1000", "--print-ids"},
        new String[] {"generate", "--model", model, "--prompt-ids", "1", "--print-ids", "--temperature", "-1"},
        new String[] {"generate", "--model", model, "--prompt-ids", "1", "--print-ids", "--temperature", "hot"},
        new String[] {"generate", "--model", model, "--prompt-ids", "1", "--print-ids", "--top-p", "0"},
        new String[] {"generate", "--model", model, "--prompt-ids", "1", "--print-ids", "--max-new-tokens", "0"},
        new String[] {"generate", "--model", model, "--prompt-ids", "1", "--print-ids", "--threads", "0"},
        new String[] {"generate", "--model", model, "--prompt-ids", "1", "--print-ids", "--seed", "x"},
        new String[] {"generate", "--model", TINY.resolve("config.json").toString(), "--prompt-ids", "1", "--print-ids"},
        new String[] {"generate", "--model", dir.resolve("nothing-here").toString(), "--prompt-ids", "1", "--print-ids"});
    for (String[] args : cases) {
      Cli.Result result = Cli.run(args);
      assertEquals(Main.EXIT_USAGE, result.exit(), String.join(" ", args) + "\n" + result.err());
      assertEquals("", result.out(), String.join(" ", args));
      Cli.assertNoStackTrace(result.err());
    }
  }

  @Test
  void aDirectoryWithoutConfigIsAnInvalidModel() throws IOException {
    Files.copy(TINY.resolve("model.safetensors"), dir.resolve("model.safetensors"));
    Cli.Result result = Cli.run("generate", "--model", dir.toString(), "--prompt-ids", "1", "--print-ids");
    assertEquals(Main.EXIT_INVALID, result.exit(), result.err());
    assertTrue(result.err().contains("config.json"), result.err());
    Cli.assertNoStackTrace(result.err());
  }

  @Test
  void aConfigWithoutARequiredFieldIsAnInvalidModel() throws IOException {
    Files.copy(TINY.resolve("model.safetensors"), dir.resolve("model.safetensors"));
    Files.writeString(dir.resolve("config.json"), Files.readString(TINY.resolve("config.json"))
        .replace("\"num_hidden_layers\": 2,", ""));
    Cli.Result result = Cli.run("generate", "--model", dir.toString(), "--prompt-ids", "1", "--print-ids");
    assertEquals(Main.EXIT_INVALID, result.exit(), result.err());
    assertTrue(result.err().contains("num_hidden_layers"), result.err());
  }

  @Test
  void missingTensorsMakeAnInvalidModel() throws IOException {
    Files.copy(TINY.resolve("config.json"), dir.resolve("config.json"));
    SafeTensorsWriter.write(dir.resolve("model.safetensors"), Map.of(), List.of(
        TensorView.of("model.embed_tokens.weight", DType.BF16, new long[] {112, 64},
            Arena.ofAuto().allocate(112 * 64 * 2))));
    Cli.Result result = Cli.run("generate", "--model", dir.toString(), "--prompt-ids", "1", "--print-ids");
    assertEquals(Main.EXIT_INVALID, result.exit(), result.err());
    assertTrue(result.err().contains("missing"), result.err());
    assertTrue(result.err().contains("model.layers.0.self_attn.q_proj.weight"), result.err());
    Cli.assertNoStackTrace(result.err());
  }

}
