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
import java.util.Optional;

/**
 * Writes a synthetic checkpoint shaped like Llama-3.2-1B (hidden 2048, intermediate 8192, 16
 * layers, 32 heads, 8 key/value heads, vocabulary 128,256, tied embeddings): 146 BF16 tensors of
 * random values, 2,471,628,800 bytes, in a Hugging Face model directory with its
 * {@code config.json}; or the same model with its linear layers quantized ({@link Weights}).
 * For benchmarks: weights of realistic size that need no download.
 */
final class SyntheticLlama {
  static final int HIDDEN = 2048;
  static final int INTERMEDIATE = 8192;
  static final int LAYERS = 16;
  static final int HEADS = 32;
  static final int KV_HEADS = 8;
  static final int VOCAB = 128_256;
  static final int HEAD_DIM = HIDDEN / HEADS;

  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

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

  /** How the linear layers' weights are stored; embeddings and norms stay BF16. */
  enum Weights {
    /** Dense BF16, as the original model. */
    BF16("bf16", ""),
    /**
     * FP8 E4M3 with one F32 {@code weight_scale_inv} per 128 × 128 block, as DeepSeek-V3 and
     * transformers' fine-grained FP8 publish them.
     */
    FP8_BLOCK("fp8", """
        ,
          "quantization_config": {
            "quant_method": "fp8",
            "activation_scheme": "dynamic",
            "fmt": "e4m3",
            "weight_block_size": [128, 128]
          }"""),
    /**
     * GPTQ 4-bit, groups of 128, symmetric, the original checkpoint format: {@code qweight},
     * {@code qzeros} (zero points 8, stored minus one), F16 {@code scales} and {@code g_idx}.
     */
    GPTQ_INT4("gptq", """
        ,
          "quantization_config": {
            "quant_method": "gptq",
            "bits": 4,
            "group_size": 128,
            "desc_act": false,
            "sym": true,
            "checkpoint_format": "gptq"
          }""");

    private final String optionName;
    private final String configEntry;

    Weights(String optionName, String configEntry) {
      this.optionName = optionName;
      this.configEntry = configEntry;
    }

    /** The name {@code bench --scheme} takes. */
    String optionName() {
      return optionName;
    }

    /** The scheme named {@code name} ({@link #optionName()}), if any. */
    static Optional<Weights> named(String name) {
      for (Weights weights : values()) {
        if (weights.optionName.equalsIgnoreCase(name)) {
          return Optional.of(weights);
        }
      }
      return Optional.empty();
    }

    String config() {
      return CONFIG.replace("\n}", configEntry + "\n}");
    }
  }

  /** What fills a tensor. */
  private enum Fill { WEIGHTS, NORMS, FP8, SCALES_F32, SCALES_F16, PACKED, ZEROS, GROUP_INDEX }

  private record Planned(TensorSpec spec, Fill fill) {}

  private SyntheticLlama() {}

  /** The tensors of the dense BF16 checkpoint, as Hugging Face names them. */
  static List<TensorSpec> tensors() {
    return tensors(Weights.BF16);
  }

  /** The tensors of the checkpoint whose linear layers are stored as {@code weights}. */
  static List<TensorSpec> tensors(Weights weights) {
    return plan(weights).stream().map(Planned::spec).toList();
  }

  private static List<Planned> plan(Weights weights) {
    List<Planned> planned = new ArrayList<>();
    planned.add(new Planned(spec("model.embed_tokens.weight", VOCAB, HIDDEN), Fill.WEIGHTS));
    int kvDim = KV_HEADS * HEAD_DIM;
    for (int layer = 0; layer < LAYERS; layer++) {
      String prefix = "model.layers." + layer + ".";
      planned.add(new Planned(spec(prefix + "input_layernorm.weight", HIDDEN), Fill.NORMS));
      linear(planned, weights, prefix + "self_attn.q_proj.", HIDDEN, HIDDEN);
      linear(planned, weights, prefix + "self_attn.k_proj.", kvDim, HIDDEN);
      linear(planned, weights, prefix + "self_attn.v_proj.", kvDim, HIDDEN);
      linear(planned, weights, prefix + "self_attn.o_proj.", HIDDEN, HIDDEN);
      planned.add(new Planned(spec(prefix + "post_attention_layernorm.weight", HIDDEN), Fill.NORMS));
      linear(planned, weights, prefix + "mlp.gate_proj.", INTERMEDIATE, HIDDEN);
      linear(planned, weights, prefix + "mlp.up_proj.", INTERMEDIATE, HIDDEN);
      linear(planned, weights, prefix + "mlp.down_proj.", HIDDEN, INTERMEDIATE);
    }
    planned.add(new Planned(spec("model.norm.weight", HIDDEN), Fill.NORMS));
    return planned;
  }

  /** The stored tensors of a linear layer of {@code out} outputs and {@code in} inputs. */
  private static void linear(List<Planned> planned, Weights weights, String prefix, int out, int in) {
    switch (weights) {
      case BF16 -> planned.add(new Planned(spec(prefix + "weight", out, in), Fill.WEIGHTS));
      case FP8_BLOCK -> {
        planned.add(new Planned(new TensorSpec(prefix + "weight", DType.F8_E4M3, new long[] {out, in}), Fill.FP8));
        planned.add(new Planned(new TensorSpec(prefix + "weight_scale_inv", DType.F32,
            new long[] {(out + 127) / 128, (in + 127) / 128}), Fill.SCALES_F32));
      }
      case GPTQ_INT4 -> {
        planned.add(new Planned(new TensorSpec(prefix + "qweight", DType.I32, new long[] {in / 8, out}), Fill.PACKED));
        planned.add(new Planned(new TensorSpec(prefix + "qzeros", DType.I32, new long[] {in / 128, out / 8}), Fill.ZEROS));
        planned.add(new Planned(new TensorSpec(prefix + "scales", DType.F16, new long[] {in / 128, out}), Fill.SCALES_F16));
        planned.add(new Planned(new TensorSpec(prefix + "g_idx", DType.I32, new long[] {in}), Fill.GROUP_INDEX));
      }
    }
  }

  /** Whether {@code directory} already holds a complete dense synthetic checkpoint. */
  static boolean existsIn(Path directory) {
    return existsIn(directory, Weights.BF16);
  }

  /** Whether {@code directory} already holds a complete synthetic checkpoint stored as {@code weights}. */
  static boolean existsIn(Path directory, Weights weights) {
    Path weightsFile = directory.resolve("model.safetensors");
    long expected = 0;
    for (TensorSpec spec : tensors(weights)) {
      expected += spec.byteSize();
    }
    try {
      return Files.isRegularFile(directory.resolve("config.json"))
          && Files.readString(directory.resolve("config.json")).equals(weights.config())
          && Files.size(weightsFile) > expected;
    } catch (IOException e) {
      return false;
    }
  }

  /** Writes the dense BF16 checkpoint ({@link #write(Path, long, Weights)}). */
  static void write(Path directory, long seed) throws IOException {
    write(directory, seed, Weights.BF16);
  }

  /**
   * Writes {@code model.safetensors} and {@code config.json} into {@code directory}, atomically
   * each, the linear layers stored as {@code weights}. Deterministic for a seed. Norm weights
   * are near 1, the other BF16 values uniform in ±0.05; FP8 weights are any E4M3 value but NaN,
   * with scales of about 1/448 (so that the largest values are near 1); GPTQ's integers are
   * uniform in 0..15 with zero points 8 and F16 scales of about 1/8 · 0.05.
   *
   * <p>The values come from pools of 1 Mi random elements, one per kind, which every tensor
   * reads from its own pseudo-random starting point: the file is written at disk speed instead
   * of one random draw per element (about 40× slower here), and no two tensors hold the same
   * bytes at the same offsets.
   */
  static void write(Path directory, long seed, Weights weights) throws IOException {
    Files.createDirectories(directory);
    List<Planned> planned = plan(weights);
    long poolElements = 1L << 20;
    long chunkElements = 4L << 20;
    try (Arena arena = Arena.ofConfined();
        SafeTensorsWriter writer = SafeTensorsWriter.create(directory.resolve("model.safetensors"),
            Map.of("format", "pt"), planned.stream().map(Planned::spec).toList())) {
      java.util.SplittableRandom random = new java.util.SplittableRandom(seed);
      Map<Fill, MemorySegment> pools = new java.util.EnumMap<>(Fill.class);
      long poolSize = poolElements + chunkElements;
      pools.put(Fill.WEIGHTS, pool(arena, poolSize, 2, i -> (int) DType.BF16.encodeFloat(0.1f * (random.nextFloat() - 0.5f))));
      pools.put(Fill.NORMS, pool(arena, poolSize, 2, i -> (int) DType.BF16.encodeFloat(1f + 0.1f * (random.nextFloat() - 0.5f))));
      pools.put(Fill.FP8, pool(arena, poolSize, 1, i -> {
        int bits = random.nextInt(256);
        return (bits & 0x7F) == 0x7F ? bits - 1 : bits;   // 0x7F and 0xFF are E4M3's NaNs
      }));
      pools.put(Fill.SCALES_F32, pool(arena, poolSize, 4,
          i -> Float.floatToRawIntBits((1f + 0.25f * random.nextFloat()) / 448f)));
      pools.put(Fill.SCALES_F16, pool(arena, poolSize, 2,
          i -> (int) DType.F16.encodeFloat((1f + 0.25f * random.nextFloat()) * 0.05f / 8f)));
      pools.put(Fill.PACKED, pool(arena, poolSize, 4, i -> random.nextInt()));
      pools.put(Fill.ZEROS, pool(arena, poolSize, 4, i -> 0x7777_7777));   // zero point 8, stored as 7 (gptq v1)
      pools.put(Fill.GROUP_INDEX, pool(arena, poolSize, 4, i -> (int) (i / 128)));
      Map<String, Fill> fills = new java.util.HashMap<>();
      planned.forEach(tensor -> fills.put(tensor.spec().name(), tensor.fill()));
      for (TensorSpec spec : writer.tensors()) {   // in the writer's order
        Fill fill = fills.get(spec.name());
        MemorySegment values = pools.get(fill);
        long width = spec.dtype().byteSize(1);
        for (long done = 0; done < spec.elementCount(); done += chunkElements) {
          long count = Math.min(chunkElements, spec.elementCount() - done);
          // The group index counts from the tensor's first input; the others start anywhere.
          long start = fill == Fill.GROUP_INDEX ? done : random.nextLong(poolElements);
          writer.write(spec.name(), values.asSlice(width * start, width * count));
        }
      }
      writer.commit();
    }
    AtomicFile.write(directory.resolve("config.json"), weights.config().getBytes(StandardCharsets.UTF_8));
  }

  /** {@code count} elements of {@code width} bytes, element {@code i} the low bytes of {@code value(i)}. */
  private static MemorySegment pool(Arena arena, long count, int width, java.util.function.LongToIntFunction value) {
    MemorySegment pool = arena.allocate(width * count, 64);
    for (long i = 0; i < count; i++) {
      int bits = value.applyAsInt(i);
      switch (width) {
        case 1 -> pool.set(ValueLayout.JAVA_BYTE, i, (byte) bits);
        case 2 -> pool.set(SHORT, 2 * i, (short) bits);
        default -> pool.set(INT, 4 * i, bits);
      }
    }
    return pool;
  }

  private static TensorSpec spec(String name, long... shape) {
    return new TensorSpec(name, DType.BF16, shape);
  }
}
