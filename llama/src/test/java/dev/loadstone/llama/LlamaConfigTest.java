package dev.loadstone.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaConfigTest {
  static final String SHAPE = """
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
      "num_attention_heads": 4, "vocab_size": 100""";

  static LlamaConfig parse(String body) throws InvalidModelException {
    return LlamaConfig.parse(Path.of("config.json"), ("{" + body + "}").getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void appliesTransformersDefaults() throws Exception {
    LlamaConfig config = parse(SHAPE);
    assertEquals(4, config.kvHeads());
    assertEquals(16, config.headDim());
    assertEquals(1e-6, config.rmsNormEps());
    assertEquals(10000.0, config.ropeTheta());
    assertEquals(new RopeScaling.None(), config.ropeScaling());
    assertEquals(false, config.tieWordEmbeddings());
    assertEquals(2048, config.maxPositionEmbeddings());
    assertTrue(config.bosTokenId().isEmpty());
    assertEquals(List.of(), config.eosTokenIds());
  }

  @Test
  void readsTheLlama3Settings() throws Exception {
    LlamaConfig config = parse(SHAPE + """
        , "num_key_value_heads": 2, "head_dim": 32, "rope_theta": 500000.0, "tie_word_embeddings": true,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
          "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]""");
    assertEquals(2, config.kvHeads());
    assertEquals(32, config.headDim());
    assertEquals(128, config.queryDim());
    assertEquals(500000.0, config.ropeTheta());
    assertEquals(new RopeScaling.Llama3(32, 1, 4, 8192), config.ropeScaling());
    assertEquals(128000, config.bosTokenId().getAsInt());
    assertEquals(List.of(128001, 128008, 128009), config.eosTokenIds());
  }

  @Test
  void readsTheRopeParametersForm() throws Exception {
    LlamaConfig config = parse(SHAPE + """
        , "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
          "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}""");
    assertEquals(500000.0, config.ropeTheta());
    assertEquals(new RopeScaling.Llama3(8, 1, 4, 8192), config.ropeScaling());
    LlamaConfig plain = parse(SHAPE + ", \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1000.0}");
    assertEquals(1000.0, plain.ropeTheta());
    assertEquals(new RopeScaling.None(), plain.ropeScaling());
    assertEquals(new RopeScaling.Linear(2), parse(SHAPE + ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}").ropeScaling());
  }

  /** Hugging Face writes null for "not set": every field that is null takes its default. */
  @Test
  void aNullFieldIsAMissingOne() throws Exception {
    LlamaConfig config = parse(SHAPE + """
        , "num_key_value_heads": null, "head_dim": null, "rope_theta": null, "rope_scaling": null,
        "rms_norm_eps": null, "tie_word_embeddings": null, "max_position_embeddings": null,
        "bos_token_id": null, "eos_token_id": null, "model_type": null, "hidden_act": null,
        "attention_bias": null""");
    assertEquals(parse(SHAPE), config);
    InvalidModelException e = assertThrows(InvalidModelException.class,
        () -> parse(SHAPE.replace("\"vocab_size\": 100", "\"vocab_size\": null")));
    assertEquals("config.json: vocab_size: missing integer", e.getMessage());
    // In a list, null is not an id.
    e = assertThrows(InvalidModelException.class, () -> parse(SHAPE + ", \"eos_token_id\": [2, null]"));
    assertEquals("config.json: eos_token_id[1]: expected an integer from 0 to 2147483647, found null", e.getMessage());
  }

  @Test
  void theJsonReadersLimitsHoldAndAreNamed(@TempDir Path dir) throws Exception {
    String deep = SHAPE + ", \"extra\": " + "[".repeat(64) + "]".repeat(64);
    InvalidModelException e = assertThrows(InvalidModelException.class, () -> parse(deep));
    assertTrue(e.getMessage().startsWith("config.json: over a limit of the JSON reader: "), e.getMessage());
    assertTrue(e.getMessage().contains("nesting depth"), e.getMessage());
    e = assertThrows(InvalidModelException.class, () -> parse(SHAPE + ", \"rope_theta\": 1" + "0".repeat(64)));
    assertTrue(e.getMessage().contains("Number value length"), e.getMessage());
    // Read from a file, too (and the file is named).
    Path file = dir.resolve(LlamaConfig.FILE_NAME);
    Files.writeString(file, "{" + deep + "}");
    e = assertThrows(InvalidModelException.class, () -> LlamaConfig.read(dir));
    assertEquals(file, e.file());
    assertTrue(e.getMessage().startsWith(file + ": over a limit of the JSON reader: "), e.getMessage());
  }

  /** Llama 3.1's published inverse frequencies at a few indices (head dim 128, theta 500000). */
  @Test
  void llama3ScalingMatchesTransformers() {
    float[] inv = new RopeScaling.Llama3(8, 1, 4, 8192).inverseFrequencies(128, 500000);
    float[] plain = new RopeScaling.None().inverseFrequencies(128, 500000);
    assertEquals(64, inv.length);
    assertEquals(1.0f, inv[0]);                       // high frequency: kept
    assertEquals(plain[10], inv[10]);                 // wavelength 2π/0.0240 < 2048: kept
    assertEquals(plain[63] / 8, inv[63], 1e-12);      // low frequency: divided by the factor
    // Medium band: between the kept and the divided value.
    int medium = 0;
    for (int i = 0; i < 64; i++) {
      double wavelength = 2 * Math.PI / plain[i];
      if (wavelength >= 2048 && wavelength <= 8192) {
        assertTrue(inv[i] < plain[i] && inv[i] > plain[i] / 8, "index " + i);
        medium++;
      }
    }
    assertTrue(medium > 0);
  }

  @Test
  void rejectsWhatItCannotRun() {
    String[][] cases = {
        {"\"hidden_size\": 64, \"intermediate_size\": 128, \"num_attention_heads\": 4, \"vocab_size\": 100", "num_hidden_layers"},
        {SHAPE + ", \"num_key_value_heads\": 3", "multiple"},
        {SHAPE + ", \"hidden_act\": \"gelu\"", "hidden_act"},
        {SHAPE + ", \"attention_bias\": true", "attention_bias"},
        {SHAPE + ", \"model_type\": \"mistral\"", "model_type"},
        {SHAPE + ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}", "yarn"},
        {SHAPE + ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 4}", "low_freq_factor"},
        {SHAPE + ", \"rope_scaling\": 3", "rope_scaling"},
        {SHAPE + ", \"num_hidden_layers\": 2.5", "num_hidden_layers"},
        {SHAPE + ", \"eos_token_id\": \"x\"", "eos_token_id"},
        {SHAPE + ", \"head_dim\": 15", "odd"},
    };
    for (String[] c : cases) {
      InvalidModelException e = assertThrows(InvalidModelException.class, () -> parse(c[0]), c[0]);
      assertTrue(e.getMessage().contains(c[1]), e.getMessage());
      assertTrue(e.getMessage().startsWith("config.json: "), e.getMessage());
    }
    assertEquals("c: not a JSON object", assertThrows(InvalidModelException.class,
        () -> LlamaConfig.parse(Path.of("c"), "[1]".getBytes(StandardCharsets.UTF_8))).getMessage());
    assertTrue(assertThrows(InvalidModelException.class,
        () -> LlamaConfig.parse(Path.of("c"), "{".getBytes(StandardCharsets.UTF_8))).getMessage()
        .startsWith("c: invalid JSON: "));
  }
}
