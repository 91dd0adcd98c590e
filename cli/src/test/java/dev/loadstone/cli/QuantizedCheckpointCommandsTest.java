package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code inspect} and {@code convert --dequantize} on the quantized fixtures of core's tests
 * (written by {@code core/src/test/python/make_quantized_fixtures.py}).
 */
class QuantizedCheckpointCommandsTest {
  private static final Path FIXTURES = Cli.repoRoot().resolve("core/src/test/resources/dev/loadstone/quantization");
  private static final String O_PROJ = "model.layers.0.self_attn.o_proj.";

  @TempDir Path dir;

  @Test
  void inspectShowsTheSchemeAndEachWeightsLogicalDTypeAndShape() {
    Cli.Result result = Cli.run("inspect", FIXTURES.resolve("gptq-v1").toString());
    assertEquals(0, result.exit(), result.err());
    List<String> lines = result.outLines();
    assertTrue(lines.contains("Quantization: gptq 4-bit, groups of 16, sym, gptq (v1) (config.json), 2 quantized weights"),
        result.out());
    String row = lines.stream().filter(l -> l.strip().startsWith(O_PROJ + "weight")).findFirst().orElseThrow();
    assertTrue(row.matches(".*\\sF16\\s+\\[16, 64\\]\\s.*"), row);
    assertTrue(row.contains(O_PROJ + "qweight, " + O_PROJ + "qzeros, " + O_PROJ + "scales, " + O_PROJ + "g_idx"), row);
  }

  @Test
  void inspectJsonGivesTheQuantization() {
    Cli.Result result = Cli.run("inspect", "--json", FIXTURES.resolve("fp8-block").toString());
    assertEquals(0, result.exit(), result.err());
    assertTrue(result.out().contains("\"quantization\":{\"scheme\":\"fp8 blocks of 8x16\""), result.out());
    assertTrue(result.out().contains("{\"name\":\"model.layers.0.mlp.up_proj.weight\",\"dtype\":\"BF16\","
        + "\"shape\":[17,33],\"scheme\":\"fp8 blocks of 8x16\",\"tensors\":[\"model.layers.0.mlp.up_proj.weight\","
        + "\"model.layers.0.mlp.up_proj.weight_scale_inv\"]}"), result.out());
  }

  @Test
  void inspectNamesAnUnsupportedScheme() throws IOException {
    Path copy = Files.createDirectories(dir.resolve("bnb"));
    Files.copy(FIXTURES.resolve("gptq-v1/model.safetensors"), copy.resolve("model.safetensors"));
    Files.writeString(copy.resolve("config.json"), "{\"quantization_config\": {\"quant_method\": \"bitsandbytes\"}}");
    Cli.Result result = Cli.run("inspect", copy.toString());
    assertEquals(Main.EXIT_INVALID, result.exit(), result.out());
    assertTrue(result.err().contains("bitsandbytes") && result.err().contains("UNSUPPORTED_QUANTIZATION"), result.err());
  }

  @Test
  void convertDequantizeWritesTheDenseCheckpointAndItsConfig() throws IOException {
    Path out = dir.resolve("dense");
    Cli.Result result = Cli.run(new Main(List.of(new ConvertCommand(256)), false),
        "convert", FIXTURES.resolve("gptq-v2-desc-act").toString(), out + "/", "--dequantize", "--dtype", "BF16");
    assertEquals(0, result.exit(), result.err());
    try (Checkpoint dense = Checkpoint.open(out);
         SafeTensors expected = SafeTensors.open(FIXTURES.resolve("gptq-v2-desc-act/expected.safetensors"))) {
      assertEquals(List.of("model.layers.0.self_attn.o_proj.bias", "model.layers.0.self_attn.o_proj.weight",
          "model.layers.0.self_attn.v_proj.bias", "model.layers.0.self_attn.v_proj.weight", "model.norm.weight"),
          dense.names().stream().sorted().toList());
      for (TensorView values : expected.tensors()) {
        TensorView written = dense.tensor(values.name());
        assertEquals(DType.BF16, written.dtype());
        assertEquals(List.of(values.shape()[0], values.shape()[1]), List.of(written.shape()[0], written.shape()[1]));
        for (long i = 0; i < values.elementCount(); i++) {
          // BF16 keeps 8 bits: the nearest BF16 is within half an ulp of the exact value.
          double exact = values.getDouble(i);
          double got = written.getDouble(i);
          assertTrue(Math.abs(got - exact) <= Math.ulp((float) exact) * 65536 / 2 + Double.MIN_VALUE,
              values.name() + "[" + i + "]: " + exact + " written as " + got);
        }
      }
    }
    String config = Files.readString(out.resolve("config.json"));
    assertFalse(config.contains("quantization_config"), config);
    assertTrue(config.contains("\"torch_dtype\" : \"float16\""), config);
  }

  @Test
  void convertRefusesToConvertAQuantizedCheckpointWithoutDequantizing() {
    Cli.Result result = Cli.run("convert", FIXTURES.resolve("fp8-block").toString(),
        dir.resolve("out.safetensors").toString(), "--dtype", "BF16");
    assertEquals(Main.EXIT_USAGE, result.exit(), result.out());
    assertTrue(result.err().contains("--dequantize"), result.err());
    assertFalse(Files.exists(dir.resolve("out.safetensors")));
  }
}
