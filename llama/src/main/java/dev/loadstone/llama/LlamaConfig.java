package dev.loadstone.llama;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;

/**
 * The shape and settings of a Llama model, from a Hugging Face {@code config.json}
 * ({@code LlamaForCausalLM}).
 *
 * <pre>{@code
 * LlamaConfig config = LlamaConfig.read(Path.of("Llama-3.2-1B/config.json"));
 * config.layers();        // 16
 * config.ropeScaling();   // Llama3[factor=32.0, ...]
 * }</pre>
 *
 * <p>Defaults are transformers' {@code LlamaConfig} defaults: {@code num_key_value_heads} =
 * {@code num_attention_heads}, {@code head_dim} = hidden / heads, {@code rms_norm_eps} 1e-6,
 * {@code rope_theta} 10000, {@code tie_word_embeddings} false, {@code max_position_embeddings}
 * 2048. The rotary settings may come in the older form ({@code rope_theta} and
 * {@code rope_scaling}) or the newer one ({@code rope_parameters} holding {@code rope_type},
 * {@code rope_theta} and the scaling fields).
 *
 * @param hiddenSize the width of the residual stream
 * @param intermediateSize the width of the MLP
 * @param layers the number of decoder layers
 * @param heads the number of query heads
 * @param kvHeads the number of key/value heads (grouped-query attention when fewer)
 * @param headDim the width of one head
 * @param vocabSize the number of tokens
 * @param rmsNormEps the epsilon of every RMSNorm
 * @param ropeTheta the base of the rotary frequencies
 * @param ropeScaling how the rotary frequencies are scaled
 * @param tieWordEmbeddings whether the output projection is the embedding matrix
 * @param maxPositionEmbeddings the longest context the model is configured for
 * @param bosTokenId the beginning-of-sequence token, if stated
 * @param eosTokenIds the end-of-sequence tokens (one or several), possibly none
 */
public record LlamaConfig(int hiddenSize, int intermediateSize, int layers, int heads, int kvHeads,
    int headDim, int vocabSize, double rmsNormEps, double ropeTheta, RopeScaling ropeScaling,
    boolean tieWordEmbeddings, int maxPositionEmbeddings, OptionalInt bosTokenId,
    List<Integer> eosTokenIds) {

  /** The name of the file in a model directory. */
  public static final String FILE_NAME = "config.json";

  /** Checks the values. */
  public LlamaConfig {
    eosTokenIds = List.copyOf(eosTokenIds);
    if (hiddenSize < 1 || intermediateSize < 1 || layers < 1 || heads < 1 || kvHeads < 1
        || headDim < 1 || vocabSize < 1 || maxPositionEmbeddings < 1) {
      throw new IllegalArgumentException("sizes must be positive");
    }
    if (heads % kvHeads != 0) {
      throw new IllegalArgumentException("num_attention_heads (" + heads
          + ") is not a multiple of num_key_value_heads (" + kvHeads + ")");
    }
    if (headDim % 2 != 0) {
      throw new IllegalArgumentException("head_dim " + headDim + " is odd; rotary embedding needs it even");
    }
    if (!(rmsNormEps > 0) || !(ropeTheta > 0)) {
      throw new IllegalArgumentException("rms_norm_eps and rope_theta must be positive");
    }
  }

  /** The width of all query heads together. */
  public int queryDim() {
    return heads * headDim;
  }

  /** The width of all key (or value) heads together. */
  public int kvDim() {
    return kvHeads * headDim;
  }

  /**
   * Reads a {@code config.json}: a file, or a model directory holding one.
   *
   * @throws InvalidModelException if the file is missing, is not JSON, lacks a required field or
   *     asks for something this implementation does not support (biases, another activation,
   *     another kind of rotary scaling, another model type)
   * @throws IOException if the file cannot be read
   */
  public static LlamaConfig read(Path path) throws IOException {
    Path file = Files.isDirectory(path) ? path.resolve(FILE_NAME) : path;
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new InvalidModelException(file, "no such file; a model directory needs its config.json");
    }
    return parse(file, bytes);
  }

  /** Parses the bytes of a {@code config.json}; {@code file} names it in errors. */
  public static LlamaConfig parse(Path file, byte[] bytes) throws InvalidModelException {
    Object document;
    try {
      document = Json.parse(bytes);
    } catch (IOException e) {
      throw new InvalidModelException(file, "not valid JSON: " + e.getMessage(), null, e);
    }
    if (!(document instanceof Map<?, ?> map)) {
      throw new InvalidModelException(file, "is not a JSON object");
    }
    Fields fields = new Fields(file, map);
    String modelType = fields.string("model_type", "llama");
    if (!modelType.equals("llama")) {
      throw new InvalidModelException(file, "model_type is \"" + modelType + "\"; only \"llama\" is supported");
    }
    String activation = fields.string("hidden_act", "silu");
    if (!activation.equals("silu")) {
      throw new InvalidModelException(file, "hidden_act is \"" + activation + "\"; only \"silu\" is supported");
    }
    for (String bias : List.of("attention_bias", "mlp_bias")) {
      if (fields.bool(bias, false)) {
        throw new InvalidModelException(file, bias + " is true; biases are not supported");
      }
    }
    int hidden = fields.requiredInt("hidden_size");
    int heads = fields.requiredInt("num_attention_heads");
    int kvHeads = fields.optionalInt("num_key_value_heads").orElse(heads);
    OptionalInt headDimField = fields.optionalInt("head_dim");
    if (headDimField.isEmpty() && hidden % heads != 0) {
      throw new InvalidModelException(file, "hidden_size " + hidden
          + " is not a multiple of num_attention_heads " + heads + " and head_dim is not given");
    }
    int headDim = headDimField.orElse(hidden / heads);

    // Rotary settings: rope_parameters (newer transformers) or rope_theta + rope_scaling.
    double theta = fields.number("rope_theta", 10000.0);
    Map<?, ?> rope = fields.object("rope_parameters");
    String ropeField = "rope_parameters";
    if (rope != null) {
      theta = new Fields(file, rope, ropeField).number("rope_theta", theta);
    } else {
      rope = fields.object("rope_scaling");
      ropeField = "rope_scaling";
    }
    RopeScaling scaling = rope == null ? new RopeScaling.None() : scaling(new Fields(file, rope, ropeField));

    try {
      return new LlamaConfig(hidden, fields.requiredInt("intermediate_size"),
          fields.requiredInt("num_hidden_layers"), heads, kvHeads, headDim,
          fields.requiredInt("vocab_size"), fields.number("rms_norm_eps", 1e-6), theta, scaling,
          fields.bool("tie_word_embeddings", false),
          fields.optionalInt("max_position_embeddings").orElse(2048),
          fields.optionalInt("bos_token_id"), fields.intList("eos_token_id"));
    } catch (IllegalArgumentException e) {
      throw new InvalidModelException(file, e.getMessage());
    }
  }

  private static RopeScaling scaling(Fields rope) throws InvalidModelException {
    String type = rope.string("rope_type", null);
    if (type == null) {
      type = rope.string("type", "default");
    }
    return switch (type) {
      case "default" -> new RopeScaling.None();
      case "linear" -> new RopeScaling.Linear(rope.requiredNumber("factor"));
      case "llama3" -> {
        RopeScaling.Llama3 llama3 = new RopeScaling.Llama3(rope.requiredNumber("factor"),
            rope.requiredNumber("low_freq_factor"), rope.requiredNumber("high_freq_factor"),
            rope.requiredInt("original_max_position_embeddings"));
        if (!(llama3.highFreqFactor() > llama3.lowFreqFactor())) {
          throw rope.invalid("high_freq_factor must exceed low_freq_factor");
        }
        yield llama3;
      }
      default -> throw rope.invalid("rope_type \"" + type
          + "\" is not supported (default, linear and llama3 are)");
    };
  }

  /** Typed access to the fields of one JSON object, with errors that name the field. */
  private static final class Fields {
    private final Path file;
    private final Map<?, ?> map;
    private final String prefix;

    Fields(Path file, Map<?, ?> map) {
      this(file, map, null);
    }

    Fields(Path file, Map<?, ?> map, String prefix) {
      this.file = file;
      this.map = map;
      this.prefix = prefix;
    }

    private String name(String key) {
      return prefix == null ? key : prefix + "." + key;
    }

    InvalidModelException invalid(String message) {
      return new InvalidModelException(file, (prefix == null ? "" : prefix + ": ") + message);
    }

    private Object present(String key) {
      Object value = map.get(key);
      return value == null || value == Json.NULL ? null : value;
    }

    String string(String key, String fallback) throws InvalidModelException {
      Object value = present(key);
      if (value == null) {
        return fallback;
      }
      if (!(value instanceof String text)) {
        throw new InvalidModelException(file, name(key) + " must be a string, not " + value);
      }
      return text;
    }

    boolean bool(String key, boolean fallback) throws InvalidModelException {
      Object value = present(key);
      if (value == null) {
        return fallback;
      }
      if (!(value instanceof Boolean flag)) {
        throw new InvalidModelException(file, name(key) + " must be true or false, not " + value);
      }
      return flag;
    }

    Map<?, ?> object(String key) throws InvalidModelException {
      Object value = present(key);
      if (value == null) {
        return null;
      }
      if (!(value instanceof Map<?, ?> object)) {
        throw new InvalidModelException(file, name(key) + " must be an object or null, not " + value);
      }
      return object;
    }

    double number(String key, double fallback) throws InvalidModelException {
      Object value = present(key);
      if (value == null) {
        return fallback;
      }
      if (!(value instanceof Number number) || !Double.isFinite(number.doubleValue())) {
        throw new InvalidModelException(file, name(key) + " must be a finite number, not " + value);
      }
      return number.doubleValue();
    }

    double requiredNumber(String key) throws InvalidModelException {
      if (present(key) == null) {
        throw new InvalidModelException(file, "the field " + name(key) + " is missing");
      }
      return number(key, 0);
    }

    OptionalInt optionalInt(String key) throws InvalidModelException {
      Object value = present(key);
      if (value == null) {
        return OptionalInt.empty();
      }
      return OptionalInt.of(toInt(key, value));
    }

    int requiredInt(String key) throws InvalidModelException {
      OptionalInt value = optionalInt(key);
      if (value.isEmpty()) {
        throw new InvalidModelException(file, "the field " + name(key) + " is missing");
      }
      return value.getAsInt();
    }

    List<Integer> intList(String key) throws InvalidModelException {
      Object value = present(key);
      if (value == null) {
        return List.of();
      }
      List<Integer> ids = new ArrayList<>();
      if (value instanceof List<?> list) {
        for (Object item : list) {
          ids.add(toInt(key, item));
        }
      } else {
        ids.add(toInt(key, value));
      }
      return ids;
    }

    private int toInt(String key, Object value) throws InvalidModelException {
      if (value instanceof Number number) {
        double d = number.doubleValue();
        if (d == Math.rint(d) && d >= 0 && d <= Integer.MAX_VALUE) {
          return (int) d;
        }
      }
      throw new InvalidModelException(file, name(key) + " must be a non-negative integer, not "
          + String.valueOf(value).toLowerCase(Locale.ROOT));
    }
  }
}
