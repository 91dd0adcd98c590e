package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.TensorSource;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The quantized weights of a checkpoint, as the hub publishes them: the scheme from
 * {@code config.json}'s {@code quantization_config} (next to the checkpoint's files), each
 * weight found from the tensors present and checked against it. {@code VarStore.load} uses it
 * to dequantize weights into variables of their logical shape; {@code loadstone inspect} shows
 * it.
 *
 * <pre>{@code
 * try (Checkpoint checkpoint = Checkpoint.open(dir)) {
 *   Quantization quantization = Quantization.of(checkpoint);
 *   quantization.scheme().ifPresent(System.out::println);       // "fp8 blocks of 128x128"
 *   for (QuantizedWeight weight : quantization.weights()) {
 *     System.out.println(weight);                                 // name, dtype, [out, in], scheme
 *   }
 * }
 * }</pre>
 *
 * <p>Schemes read: {@code fp8} (blocks, {@code weight_scale_inv}), {@code compressed-tensors}
 * ({@code float-quantized}, {@code int-quantized}, {@code naive-quantized},
 * {@code pack-quantized}), {@code gptq} ({@code gptq} and {@code gptq_v2} formats, 2, 4 and 8
 * bits, {@code desc_act}) and {@code awq} (GEMM, 4 bits). Any other {@code quant_method},
 * format or setting is an error naming it, never a guess. Without a
 * {@code quantization_config}, tensors that look like a quantized weight's parts (a
 * {@code qweight}, a {@code weight_packed}, a weight with a {@code weight_scale} or
 * {@code weight_scale_inv}) are still listed, as weights that cannot be dequantized
 * ({@link QuantizedWeight#problem()}), so that a load cannot take them for plain weights.
 */
public final class Quantization {
  /** The name of the model configuration file, looked for next to the checkpoint's files. */
  public static final String CONFIG_FILE = "config.json";

  /** Companion suffixes that mark a weight as quantized when no scheme says so, by the main tensor's suffix. */
  private static final Map<String, List<String>> COMPANIONS_WITHOUT_SCHEME = new LinkedHashMap<>();

  static {
    COMPANIONS_WITHOUT_SCHEME.put("qweight", List.of("qzeros", "scales", "g_idx"));
    COMPANIONS_WITHOUT_SCHEME.put("weight_packed", List.of("weight_scale", "weight_shape", "weight_zero_point", "weight_g_idx"));
    COMPANIONS_WITHOUT_SCHEME.put("weight", List.of("weight_scale_inv", "weight_scale", "weight_zero_point"));
  }

  private final Optional<String> scheme;
  private final Optional<Path> configFile;
  private final List<QuantizedWeight> weights;
  private final Map<String, QuantizedWeight> byName = new HashMap<>();
  private final Map<String, QuantizedWeight> byTensor = new HashMap<>();

  private Quantization(Optional<String> scheme, Optional<Path> configFile, List<QuantizedWeight> weights) {
    this.scheme = scheme;
    this.configFile = configFile;
    this.weights = List.copyOf(weights);
    for (QuantizedWeight weight : weights) {
      byName.put(weight.name(), weight);
      for (TensorView tensor : weight.tensors()) {
        byTensor.put(tensor.name(), weight);
      }
    }
  }

  /**
   * The quantization of {@code source}, with the scheme of the {@value #CONFIG_FILE} in the
   * directory of {@code source.path()} (a checkpoint's index or single file), if there is one.
   *
   * @throws CheckpointException naming the file, the tensor and the rule: a malformed config
   *     ({@code INVALID_QUANTIZATION_CONFIG}), a scheme Loadstone does not dequantize
   *     ({@code UNSUPPORTED_QUANTIZATION}), a missing companion
   *     ({@code MISSING_QUANTIZATION_COMPANION}) or tensors that do not fit each other
   *     ({@code INCONSISTENT_QUANTIZED_TENSORS})
   * @throws IOException if the config cannot be read
   */
  public static Quantization of(TensorSource source) throws IOException {
    if (source.path() instanceof dev.loadstone.internal.UrlPath) {
      // A remote checkpoint: its config.json is not fetched (yet); quantized-looking tensors
      // are then weights of unknown scheme, which no load dequantizes or copies silently.
      return of(source, Optional.empty());
    }
    Path directory = source.path().toAbsolutePath().getParent();
    Path config = directory == null ? null : directory.resolve(CONFIG_FILE);
    return of(source, config != null && Files.isRegularFile(config) ? Optional.of(config) : Optional.empty());
  }

  /**
   * The quantization of {@code source} with the scheme of {@code configFile} (a model's
   * {@value #CONFIG_FILE}), or with none.
   *
   * @throws CheckpointException as {@link #of(TensorSource)}
   * @throws IOException if the config cannot be read
   */
  public static Quantization of(TensorSource source, Optional<Path> configFile) throws IOException {
    QuantizationConfig config = configFile.isPresent() ? QuantizationConfig.read(configFile.get()) : QuantizationConfig.NONE;
    Parts parts = new Parts(source);
    List<QuantizedWeight> weights = new ArrayList<>();
    if (config.scheme().isPresent()) {
      weights.addAll(config.scheme().get().weights(parts, config.modelDType()));
    }
    weights.addAll(withoutScheme(parts, weights, config.scheme().isPresent()
        ? "it is not a weight of the checkpoint's scheme (" + config.scheme().get().description() + ")"
        : configFile.map(f -> f + " has no quantization_config").orElse("there is no " + CONFIG_FILE + " beside the checkpoint")
            + ", so its scheme is unknown"));
    return new Quantization(config.scheme().map(Scheme::description), configFile, weights);
  }

  /** A weight's tensors that look quantized but that no scheme claimed. */
  private static List<QuantizedWeight> withoutScheme(Parts parts, List<QuantizedWeight> claimed, String why) {
    Set<String> taken = new HashSet<>();
    for (QuantizedWeight weight : claimed) {
      weight.tensors().forEach(t -> taken.add(t.name()));
    }
    List<QuantizedWeight> found = new ArrayList<>();
    for (Map.Entry<String, List<String>> entry : COMPANIONS_WITHOUT_SCHEME.entrySet()) {
      for (TensorView main : parts.named(entry.getKey())) {
        if (taken.contains(main.name())) {
          continue;
        }
        String prefix = Parts.prefix(main, entry.getKey());
        List<TensorView> tensors = new ArrayList<>(List.of(main));
        for (String suffix : entry.getValue()) {
          parts.find(prefix + suffix).filter(t -> !taken.contains(t.name())).ifPresent(tensors::add);
        }
        boolean named = !entry.getKey().equals("weight");   // qweight, weight_packed: quantized by name alone
        if (tensors.size() == 1 && !named) {
          continue;
        }
        tensors.forEach(t -> taken.add(t.name()));
        List<String> companions = tensors.subList(1, tensors.size()).stream().map(TensorView::name).toList();
        found.add(QuantizedWeight.withoutScheme(prefix + "weight", tensors,
            "'" + main.name() + "' looks quantized" + (companions.isEmpty() ? "" : " (with " + String.join(", ", companions) + ")")
                + ", but " + why));
      }
    }
    return found;
  }

  /** The scheme of the {@code quantization_config}, with its parameters; empty where there is none. */
  public Optional<String> scheme() {
    return scheme;
  }

  /** The {@value #CONFIG_FILE} read, if one was. */
  public Optional<Path> configFile() {
    return configFile;
  }

  /** The quantized weights, those of the scheme first, in checkpoint order. */
  public List<QuantizedWeight> weights() {
    return weights;
  }

  /** Whether the checkpoint has no quantized weights. */
  public boolean isEmpty() {
    return weights.isEmpty();
  }

  /** The quantized weight of this logical name ({@code "model.layers.0.mlp.up_proj.weight"}). */
  public Optional<QuantizedWeight> weight(String name) {
    return Optional.ofNullable(byName.get(name));
  }

  /** The quantized weight a stored tensor is part of ({@code "model.layers.0.mlp.up_proj.qzeros"}). */
  public Optional<QuantizedWeight> holding(String tensor) {
    return Optional.ofNullable(byTensor.get(tensor));
  }
}
