package dev.loadstone.llama;

import dev.loadstone.llama.internal.JsonDocument;
import dev.loadstone.llama.internal.JsonException;
import dev.loadstone.llama.internal.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
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
   * @throws InvalidModelException if the file is missing, is not JSON (within the limits of
   *     {@link #parse}), lacks a required field or asks for something this implementation does
   *     not support (biases, another activation, another kind of rotary scaling, another model
   *     type); the message names the file and the field
   * @throws IOException if the file cannot be read
   */
  public static LlamaConfig read(Path path) throws IOException {
    Path file = Files.isDirectory(path) ? path.resolve(FILE_NAME) : path;
    try {
      return fromJson(JsonDocument.read(file));
    } catch (NoSuchFileException e) {
      throw new InvalidModelException(file, "no such file; a model directory needs its config.json");
    } catch (JsonException e) {
      throw new InvalidModelException(file, e.reason(), null, e);
    }
  }

  /**
   * Parses the bytes of a {@code config.json}; {@code file} names it in errors. JSON
   * {@code null} is the same as a missing field (so {@code "rope_scaling": null} is no scaling),
   * and the document is read under the limits of the module's one JSON reader: at most 64 MiB,
   * nested at most 64 deep, numbers of at most 64 characters.
   *
   * @throws InvalidModelException if the bytes are not one JSON object within those limits, a
   *     required field is missing, a field has the wrong type, or a setting is not supported;
   *     the message names the file and the field
   */
  public static LlamaConfig parse(Path file, byte[] bytes) throws InvalidModelException {
    try {
      return fromJson(JsonDocument.parse(file, bytes));
    } catch (JsonException e) {
      throw new InvalidModelException(file, e.reason(), null, e);
    }
  }

  private static LlamaConfig fromJson(JsonObject fields) throws JsonException {
    String modelType = Objects.requireNonNullElse(fields.optString("model_type"), "llama");
    if (!modelType.equals("llama")) {
      throw fields.error("model_type", "\"" + modelType + "\" is not supported (only \"llama\" is)");
    }
    String activation = Objects.requireNonNullElse(fields.optString("hidden_act"), "silu");
    if (!activation.equals("silu")) {
      throw fields.error("hidden_act", "\"" + activation + "\" is not supported (only \"silu\" is)");
    }
    for (String bias : List.of("attention_bias", "mlp_bias")) {
      if (fields.bool(bias, false)) {
        throw fields.error(bias, "true, but biases are not supported");
      }
    }
    int hidden = fields.integer("hidden_size");
    int heads = fields.integer("num_attention_heads");
    int kvHeads = fields.integer("num_key_value_heads", heads);
    OptionalInt headDimField = fields.optInteger("head_dim");
    if (headDimField.isEmpty() && (heads == 0 || hidden % heads != 0)) {
      throw fields.error("hidden_size", hidden + " is not a multiple of num_attention_heads "
          + heads + " and head_dim is not given");
    }
    int headDim = headDimField.orElseGet(() -> hidden / heads);

    // Rotary settings: rope_parameters (newer transformers) or rope_theta + rope_scaling.
    double theta = fields.number("rope_theta", 10000.0);
    JsonObject rope = fields.optObject("rope_parameters");
    if (rope != null) {
      theta = rope.number("rope_theta", theta);
    } else {
      rope = fields.optObject("rope_scaling");
    }
    RopeScaling scaling = rope == null ? new RopeScaling.None() : scaling(rope);

    try {
      return new LlamaConfig(hidden, fields.integer("intermediate_size"),
          fields.integer("num_hidden_layers"), heads, kvHeads, headDim,
          fields.integer("vocab_size"), fields.number("rms_norm_eps", 1e-6), theta, scaling,
          fields.bool("tie_word_embeddings", false),
          fields.integer("max_position_embeddings", 2048),
          fields.optInteger("bos_token_id"), ids(fields, "eos_token_id"));
    } catch (IllegalArgumentException e) {
      throw fields.error(null, e.getMessage());
    }
  }

  private static RopeScaling scaling(JsonObject rope) throws JsonException {
    String typeKey = rope.has("rope_type") ? "rope_type" : "type";
    String type = Objects.requireNonNullElse(rope.optString(typeKey), "default");
    return switch (type) {
      case "default" -> new RopeScaling.None();
      case "linear" -> new RopeScaling.Linear(rope.number("factor"));
      case "llama3" -> {
        RopeScaling.Llama3 llama3 = new RopeScaling.Llama3(rope.number("factor"),
            rope.number("low_freq_factor"), rope.number("high_freq_factor"),
            rope.integer("original_max_position_embeddings"));
        if (!(llama3.highFreqFactor() > llama3.lowFreqFactor())) {
          throw rope.error("high_freq_factor", "must exceed low_freq_factor");
        }
        yield llama3;
      }
      default -> throw rope.error(typeKey, "\"" + type
          + "\" is not supported (default, linear and llama3 are)");
    };
  }

  /** Field {@code key}: one id or an array of them, none if absent. */
  private static List<Integer> ids(JsonObject fields, String key) throws JsonException {
    Object value = fields.get(key);
    if (value == null) {
      return List.of();
    }
    if (!(value instanceof List<?> list)) {
      return List.of(fields.toInt(value, fields.pathOf(key)));
    }
    List<Integer> ids = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      ids.add(fields.toInt(list.get(i), fields.pathOf(key) + "[" + i + "]"));
    }
    return ids;
  }
}
