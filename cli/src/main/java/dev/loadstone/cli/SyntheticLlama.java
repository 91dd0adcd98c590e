package dev.loadstone.cli;

import dev.loadstone.internal.AtomicFile;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes a synthetic checkpoint shaped like Llama-3.2-1B (hidden 2048, intermediate 8192, 16
 * layers, 32 heads, 8 key/value heads, vocabulary 128,256, tied embeddings): 146 BF16 tensors of
 * random values, 2,471,628,800 bytes, in a Hugging Face model directory with its
 * {@code config.json}. For benchmarks: weights of realistic size that need no download.
 */
final class SyntheticLlama {
  static final int HIDDEN = 2048;
  static final int INTERMEDIATE = 8192;
  static final int LAYERS = 16;
  static final int HEADS = 32;
  static final int KV_HEADS = 8;
  static final int VOCAB = 128_256;
  static final int HEAD_DIM = HIDDEN / HEADS;

  private static final String CONFIG = """
      {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": %d,
        "intermediate_size": %d,
        "num_hidden_layers": %d,
        "num_attention_heads": %d,
        "num_key_value_heads": %d,
        "head_dim": %d,
        "vocab_size": %d,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-05,
        "rope_theta": 500000.0,
        "rope_scaling": {
          "factor": 32.0,
          "high_freq_factor": 4.0,
          "low_freq_factor": 1.0,
          "original_max_position_embeddings": 8192,
          "rope_type": "llama3"
        },
        "max_position_embeddings": 131072,
        "tie_word_embeddings": true,
        "torch_dtype": "bfloat16",
        "bos_token_id": 128000,
        "eos_token_id": 128001
      }
      """.formatted(HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS, HEAD_DIM, VOCAB);

  private SyntheticLlama() {}

  /** The tensors of the checkpoint, as Hugging Face names them. */
  static List<TensorSpec> tensors() {
    List<TensorSpec> specs = new ArrayList<>();
    specs.add(spec("model.embed_tokens.weight", VOCAB, HIDDEN));
    int kvDim = KV_HEADS * HEAD_DIM;
    for (int layer = 0; layer < LAYERS; layer++) {
      String prefix = "model.layers." + layer + ".";
      specs.add(spec(prefix + "input_layernorm.weight", HIDDEN));
      specs.add(spec(prefix + "self_attn.q_proj.weight", HIDDEN, HIDDEN));
      specs.add(spec(prefix + "self_attn.k_proj.weight", kvDim, HIDDEN));
      specs.add(spec(prefix + "self_attn.v_proj.weight", kvDim, HIDDEN));
      specs.add(spec(prefix + "self_attn.o_proj.weight", HIDDEN, HIDDEN));
      specs.add(spec(prefix + "post_attention_layernorm.weight", HIDDEN));
      specs.add(spec(prefix + "mlp.gate_proj.weight", INTERMEDIATE, HIDDEN));
      specs.add(spec(prefix + "mlp.up_proj.weight", INTERMEDIATE, HIDDEN));
      specs.add(spec(prefix + "mlp.down_proj.weight", HIDDEN, INTERMEDIATE));
    }
    specs.add(spec("model.norm.weight", HIDDEN));
    return specs;
  }

  /** Whether {@code directory} already holds a complete synthetic checkpoint. */
  static boolean existsIn(Path directory) {
    Path weights = directory.resolve("model.safetensors");
    long expected = 0;
    for (TensorSpec spec : tensors()) {
      expected += spec.byteSize();
    }
    try {
      return Files.isRegularFile(directory.resolve("config.json"))
          && Files.size(weights) > expected;
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * Writes {@code model.safetensors} and {@code config.json} into {@code directory}, atomically
   * each. Deterministic for a seed. Norm weights are near 1, the others uniform in ±0.05.
   *
   * <p>The values come from two pools of 1 Mi random elements, one per kind, which every tensor
   * reads from its own pseudo-random starting point: the file is written at disk speed instead
   * of one random draw per element (about 40× slower here), and no two tensors hold the same
   * bytes at the same offsets.
   */
  static void write(Path directory, long seed) throws IOException {
    Files.createDirectories(directory);
    List<TensorSpec> specs = tensors();
    long poolElements = 1L << 20;
    long chunkElements = 4L << 20;
    try (Arena arena = Arena.ofConfined();
        SafeTensorsWriter writer = SafeTensorsWriter.create(directory.resolve("model.safetensors"),
            Map.of("format", "pt"), specs)) {
      java.util.SplittableRandom random = new java.util.SplittableRandom(seed);
      MemorySegment weights = pool(arena, random, poolElements + chunkElements, 0f, 0.1f);
      MemorySegment norms = pool(arena, random, poolElements + chunkElements, 1f, 0.1f);
      for (TensorSpec spec : writer.tensors()) {
        MemorySegment values = spec.name().endsWith("norm.weight") ? norms : weights;
        for (long done = 0; done < spec.elementCount(); done += chunkElements) {
          long count = Math.min(chunkElements, spec.elementCount() - done);
          long start = random.nextLong(poolElements);
          writer.write(spec.name(), values.asSlice(2 * start, 2 * count));
        }
      }
      writer.commit();
    }
    AtomicFile.write(directory.resolve("config.json"), CONFIG.getBytes(StandardCharsets.UTF_8));
  }

  /** {@code count} BF16 values uniform in {@code center ± width / 2}. */
  private static MemorySegment pool(Arena arena, java.util.SplittableRandom random, long count,
      float center, float width) {
    MemorySegment pool = arena.allocate(2 * count, 64);
    for (long i = 0; i < count; i++) {
      float value = center + width * (random.nextFloat() - 0.5f);
      pool.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2 * i,
          (short) DType.BF16.encodeFloat(value));
    }
    return pool;
  }

  private static TensorSpec spec(String name, long... shape) {
    return new TensorSpec(name, DType.BF16, shape);
  }
}
