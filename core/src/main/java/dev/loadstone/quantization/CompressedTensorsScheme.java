package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code quant_method: "compressed-tensors"} (neuralmagic's compressed-tensors, as llm-compressor
 * writes it): each config group's {@code weights} arguments (bits, int or float, symmetric,
 * strategy, group size or block structure) and the group's (or the config's) {@code format}
 * say how a weight is stored:
 *
 * <ul>
 *   <li>{@code float-quantized}, {@code int-quantized}, {@code naive-quantized}:
 *       {@code X.weight} F8_E4M3 or I8 {@code [out, in]} and {@code X.weight_scale} per tensor
 *       ({@code [1]}), channel ({@code [out, 1]}), group ({@code [out, ceil(in / group_size)]})
 *       or block ({@code [ceil(out / b0), ceil(in / b1)]}); asymmetric integers add
 *       {@code X.weight_zero_point} (I8, shaped as the scale). The value is
 *       {@code (weight - zero_point) * weight_scale} ({@link ScaledElements}).
 *   <li>{@code pack-quantized}: {@code X.weight_packed} I32 {@code [out, ceil(in * bits / 32)]}
 *       (each integer offset by {@code 2^(bits-1)} to store it unsigned), {@code X.weight_shape}
 *       {@code [out, in]}, {@code X.weight_scale} per channel or group, optionally
 *       {@code X.weight_zero_point} (I32 packed along the outputs, or I8) and
 *       {@code X.weight_g_idx} (activation order) ({@link PackedInts}).
 * </ul>
 *
 * <p>A group's {@code targets} name module classes ({@code "Linear"}), which a checkpoint does
 * not record; so the group that applies to a weight is the one whose arguments fit its tensors,
 * and a weight that several groups of different arguments fit is an error.
 */
record CompressedTensorsScheme(List<WeightArguments> groups) implements Scheme {
  private static final Set<String> ELEMENT_FORMATS = Set.of("float-quantized", "int-quantized", "naive-quantized");
  private static final String PACKED = "pack-quantized";
  private static final Pattern BLOCK_TEXT = Pattern.compile("(\\d+)x(\\d+)");

  /**
   * One config group's weight arguments.
   *
   * @param groupSize for the group strategy
   * @param block {@code [b0, b1]} for the block strategy
   */
  record WeightArguments(String group, String format, int bits, boolean floats, boolean symmetric, String strategy,
      int groupSize, int[] block) {
    String description() {
      String detail = switch (strategy) {
        case "group" -> "groups of " + groupSize;
        case "block" -> "blocks of " + block[0] + "x" + block[1];
        default -> "per " + strategy;
      };
      return "compressed-tensors " + format + " " + (floats ? "fp" : "int") + bits + ", " + detail
          + (symmetric ? ", sym" : ", asym");
    }
  }

  static CompressedTensorsScheme from(ConfigSection config) throws CheckpointException {
    Optional<String> status = config.optionalString("quantization_status");
    if (status.isPresent() && !status.get().equals("compressed")) {
      throw config.unsupported("compressed-tensors with quantization_status '" + status.get()
          + "' (Loadstone reads compressed checkpoints)");
    }
    Optional<ConfigSection> sparsity = config.optionalObject("sparsity_config");
    if (sparsity.isPresent() && !sparsity.get().values().isEmpty()
        && !sparsity.get().optionalString("format").orElse("dense").equals("dense")) {
      throw config.unsupported("compressed-tensors sparsity format '" + sparsity.get().optionalString("format").get() + "'");
    }
    Optional<String> format = config.optionalString("format");
    ConfigSection groups = config.optionalObject("config_groups")
        .orElseThrow(() -> config.invalid("config_groups", "is missing"));
    List<WeightArguments> arguments = new ArrayList<>();
    for (Map.Entry<String, Object> entry : groups.values().entrySet()) {
      ConfigSection group = groups.asObject(entry.getValue(), groups.path() + "." + entry.getKey());
      Optional<ConfigSection> weights = group.optionalObject("weights");
      if (weights.isEmpty()) {
        continue;   // activations only
      }
      String groupFormat = group.optionalString("format").or(() -> format)
          .orElseThrow(() -> config.invalid("format", "is missing (and config group " + entry.getKey() + " names none)"));
      if (groupFormat.equals("dense")) {
        continue;   // stored unquantized
      }
      arguments.add(weightArguments(entry.getKey(), groupFormat, weights.get()));
    }
    return new CompressedTensorsScheme(arguments);
  }

  private static WeightArguments weightArguments(String group, String format, ConfigSection weights)
      throws CheckpointException {
    int bits = weights.integer("num_bits");
    String type = weights.optionalString("type").orElse("int");
    boolean symmetric = weights.bool("symmetric", true);
    String strategy = weights.optionalString("strategy").orElse("tensor").toLowerCase(Locale.ROOT);
    if (weights.bool("dynamic", false)) {
      throw weights.unsupported("compressed-tensors weights quantized dynamically");
    }
    if (!type.equals("int") && !type.equals("float")) {
      throw weights.invalid("type", "is '" + type + "', not int or float");
    }
    boolean floats = type.equals("float");
    boolean elements = ELEMENT_FORMATS.contains(format);
    if (!elements && !format.equals(PACKED)) {
      throw weights.unsupported("compressed-tensors format '" + format + "'");
    }
    if (elements && bits != 8) {
      throw weights.unsupported("compressed-tensors " + format + " with " + bits + " bits (one byte per value is read)");
    }
    if (format.equals(PACKED) && (floats || (bits != 2 && bits != 4 && bits != 8))) {
      throw weights.unsupported("compressed-tensors pack-quantized " + type + bits
          + " (Loadstone reads integers of 2, 4 or 8 bits)");
    }
    if (floats && !symmetric) {
      throw weights.unsupported("compressed-tensors asymmetric float weights");
    }
    int groupSize = 0;
    int[] block = null;
    switch (strategy) {
      case "tensor", "channel" -> { }
      case "group" -> {
        groupSize = weights.integer("group_size");
        if (groupSize <= 0) {
          throw weights.invalid("group_size", "is " + groupSize + ", not positive");
        }
      }
      case "block" -> block = blockStructure(weights);
      default -> throw weights.unsupported("compressed-tensors strategy '" + strategy + "' for weights");
    }
    if (format.equals(PACKED) && !strategy.equals("group") && !strategy.equals("channel")) {
      throw weights.unsupported("compressed-tensors pack-quantized with strategy '" + strategy + "'");
    }
    return new WeightArguments(group, format, bits, floats, symmetric, strategy, groupSize, block);
  }

  /** {@code block_structure}: {@code [b0, b1]}, or as older versions wrote it, {@code "b0xb1"}. */
  private static int[] blockStructure(ConfigSection weights) throws CheckpointException {
    Optional<List<Object>> list = weights.values().get("block_structure") instanceof List<?>
        ? weights.optionalList("block_structure") : Optional.empty();
    if (list.isPresent() && list.get().size() == 2 && list.get().get(0) instanceof BigDecimal a
        && list.get().get(1) instanceof BigDecimal b && a.signum() > 0 && b.signum() > 0) {
      try {
        return new int[] {a.intValueExact(), b.intValueExact()};
      } catch (ArithmeticException e) {
        // reported below
      }
    }
    Optional<String> text = weights.values().get("block_structure") instanceof String
        ? weights.optionalString("block_structure") : Optional.empty();
    if (text.isPresent()) {
      Matcher matcher = BLOCK_TEXT.matcher(text.get());
      if (matcher.matches()) {
        try {
          int a = Integer.parseInt(matcher.group(1));
          int b = Integer.parseInt(matcher.group(2));
          if (a > 0 && b > 0) {
            return new int[] {a, b};
          }
        } catch (NumberFormatException e) {
          // reported below
        }
      }
    }
    throw weights.invalid("block_structure", "is not two positive integers");
  }

  @Override
  public String description() {
    if (groups.isEmpty()) {
      return "compressed-tensors (no quantized weights)";
    }
    return String.join("; ", groups.stream().map(WeightArguments::description).distinct().toList());
  }

  @Override
  public List<QuantizedWeight> weights(Parts parts, Optional<DType> modelDType) throws CheckpointException {
    List<QuantizedWeight> weights = new ArrayList<>();
    for (TensorView packed : parts.named("weight_packed")) {
      weights.add(packedWeight(parts, packed, modelDType));
    }
    for (TensorView scale : parts.named("weight_scale")) {
      String prefix = Parts.prefix(scale, "weight_scale");
      if (parts.find(prefix + "weight_packed").isPresent()) {
        continue;
      }
      Optional<TensorView> weight = parts.find(prefix + "weight");
      if (weight.isEmpty()) {
        throw parts.inconsistent(scale, "it is the scale of '" + prefix + "weight', which is not in the checkpoint");
      }
      weights.add(elementWeight(parts, weight.get(), scale, modelDType));
    }
    Unscaled.requireNone(parts, weights, description(), "_scale");
    return weights;
  }

  private QuantizedWeight elementWeight(Parts parts, TensorView weight, TensorView scale, Optional<DType> modelDType)
      throws CheckpointException {
    String prefix = Parts.prefix(weight, "weight");
    parts.requireRank(weight, "compressed-tensors", 2);
    long rows = weight.dim(0);
    int columns = parts.columns(weight, weight.dim(1));
    Optional<TensorView> zeros = parts.find(prefix + "weight_zero_point");
    WeightArguments arguments = chooseGroup(parts, weight, candidate -> elementProblem(candidate, weight, scale, zeros, rows, columns));
    long[] block = switch (arguments.strategy()) {
      case "tensor" -> new long[] {Math.max(1, rows), columns};
      case "channel" -> new long[] {1, columns};
      case "group" -> new long[] {1, arguments.groupSize()};
      default -> new long[] {arguments.block()[0], arguments.block()[1]};
    };
    if (arguments.symmetric() && zeros.isPresent()) {
      throw parts.inconsistent(zeros.get(), "the weight is quantized symmetrically (" + arguments.description()
          + "), which has no zero points");
    }
    List<TensorView> tensors = new ArrayList<>(List.of(weight, scale));
    zeros.ifPresent(tensors::add);
    addActivationScales(parts, prefix, tensors);
    return QuantizedWeight.of(weight.name(), arguments.description(), rows, columns,
        Scheme.logicalDType(modelDType, scale.dtype()), tensors,
        new ScaledElements(weight, scale, zeros, block[0], (int) block[1]));
  }

  /** Why a group's arguments do not fit an element-wise weight, or empty if they do. */
  private static Optional<String> elementProblem(WeightArguments arguments, TensorView weight, TensorView scale,
      Optional<TensorView> zeros, long rows, int columns) {
    if (!ELEMENT_FORMATS.contains(arguments.format())) {
      return Optional.of("its format is " + arguments.format());
    }
    List<DType> dtypes = arguments.floats() ? List.of(DType.F8_E4M3, DType.F8_E5M2) : List.of(DType.I8);
    if (!dtypes.contains(weight.dtype())) {
      return Optional.of(weight.name() + " is " + weight.dtype() + ", the group stores " + dtypes);
    }
    if (!Parts.SCALE_DTYPES.contains(scale.dtype())) {
      return Optional.of(scale.name() + " is " + scale.dtype() + ", not one of " + Parts.SCALE_DTYPES);
    }
    long[] grid = switch (arguments.strategy()) {
      case "tensor" -> new long[] {1, 1};
      case "channel" -> new long[] {rows, 1};
      case "group" -> new long[] {rows, Scheme.ceilDiv(columns, arguments.groupSize())};
      default -> new long[] {Scheme.ceilDiv(rows, arguments.block()[0]), Scheme.ceilDiv(columns, arguments.block()[1])};
    };
    if (!gridFits(scale.shape(), grid)) {
      return Optional.of(scale.name() + " has shape " + Arrays.toString(scale.shape()) + ", the strategy needs "
          + Arrays.toString(grid));
    }
    if (!arguments.symmetric()) {
      if (zeros.isEmpty()) {
        return Optional.of("asymmetric, but " + Parts.prefix(weight, "weight") + "weight_zero_point is missing");
      }
      if (zeros.get().dtype() != DType.I8 || !Arrays.equals(zeros.get().shape(), scale.shape())) {
        return Optional.of(zeros.get().name() + " is " + zeros.get() + ", the group needs I8 shaped as the scale");
      }
    }
    return Optional.empty();
  }

  /** Whether a scale of this shape holds the grid: the same dimensions, a {@code [1]} or {@code []} for one scale, {@code [rows]} per channel. */
  private static boolean gridFits(long[] shape, long[] grid) {
    if (Arrays.equals(shape, grid)) {
      return true;
    }
    long elements = 1;
    for (long dim : shape) {
      elements *= dim;
    }
    if (grid[0] * grid[1] == 1) {
      return elements == 1 && shape.length <= 2;
    }
    return grid[1] == 1 && shape.length == 1 && shape[0] == grid[0];
  }

  private QuantizedWeight packedWeight(Parts parts, TensorView packed, Optional<DType> modelDType)
      throws CheckpointException {
    String prefix = Parts.prefix(packed, "weight_packed");
    String scheme = "compressed-tensors " + PACKED;
    TensorView scale = parts.require(prefix + "weight_scale", packed, scheme, "its scales");
    TensorView shapeTensor = parts.require(prefix + "weight_shape", packed, scheme, "its logical shape");
    Optional<TensorView> zeros = parts.find(prefix + "weight_zero_point");
    Optional<TensorView> gIdx = parts.find(prefix + "weight_g_idx");
    parts.requireDType(packed, scheme, List.of(DType.I32));
    parts.requireRank(packed, scheme, 2);
    parts.requireDType(shapeTensor, scheme, List.of(DType.I64, DType.I32));
    parts.requireShape(shapeTensor, scheme, "the weight's [out, in]", 2);
    long[] shape = Staging.integers(shapeTensor);
    if (shape[0] <= 0 || shape[1] <= 0) {
      throw parts.inconsistent(shapeTensor, "it gives the weight the shape " + Arrays.toString(shape));
    }
    long rows = shape[0];
    int columns = parts.columns(shapeTensor, shape[1]);
    parts.requireDType(scale, scheme, Parts.SCALE_DTYPES);
    if (gIdx.isPresent()) {
      parts.requireDType(gIdx.get(), scheme, List.of(DType.I32, DType.I64));
      parts.requireShape(gIdx.get(), scheme, "a group per input", columns);
    }
    WeightArguments arguments = chooseGroup(parts, packed, candidate -> packedProblem(candidate, packed, scale, zeros, rows, columns));
    int groupSize = arguments.strategy().equals("group") ? arguments.groupSize() : 0;
    int groups = GroupIndex.groupCount(columns, groupSize);
    if (gIdx.isPresent() && groupSize == 0) {
      throw parts.inconsistent(gIdx.get(), "a group index needs the group strategy, the weight is " + arguments.description());
    }
    PackedInts.Zeros zeroLayout = zeros.isEmpty() ? PackedInts.Zeros.MIDPOINT
        : zeros.get().dtype() == DType.I8 ? PackedInts.Zeros.COMPRESSED_TENSORS_SIGNED
        : PackedInts.Zeros.COMPRESSED_TENSORS_PACKED;
    GroupIndex groupIndex = new GroupIndex(gIdx, true, columns, groupSize, groups, parts.file(packed));
    List<TensorView> tensors = new ArrayList<>(List.of(packed, scale, shapeTensor));
    zeros.ifPresent(tensors::add);
    gIdx.ifPresent(tensors::add);
    addActivationScales(parts, prefix, tensors);
    return QuantizedWeight.of(prefix + "weight", arguments.description(), rows, columns,
        Scheme.logicalDType(modelDType, scale.dtype()), tensors,
        new PackedInts(arguments.bits(), columns, packed, PackedInts.Layout.COMPRESSED_TENSORS, scale, false,
            zeros, zeroLayout, groupIndex, parts.file(packed)));
  }

  private static Optional<String> packedProblem(WeightArguments arguments, TensorView packed, TensorView scale,
      Optional<TensorView> zeros, long rows, int columns) {
    if (!arguments.format().equals(PACKED)) {
      return Optional.of("its format is " + arguments.format());
    }
    int perWord = 32 / arguments.bits();
    long[] packedShape = {rows, Scheme.ceilDiv(columns, perWord)};
    if (!Arrays.equals(packed.shape(), packedShape)) {
      return Optional.of(packed.name() + " has shape " + Arrays.toString(packed.shape()) + ", " + arguments.bits()
          + "-bit integers need " + Arrays.toString(packedShape));
    }
    long groups = arguments.strategy().equals("group") ? Scheme.ceilDiv(columns, arguments.groupSize()) : 1;
    if (!Arrays.equals(scale.shape(), new long[] {rows, groups})) {
      return Optional.of(scale.name() + " has shape " + Arrays.toString(scale.shape()) + ", the strategy needs "
          + Arrays.toString(new long[] {rows, groups}));
    }
    if (zeros.isPresent()) {
      TensorView zero = zeros.get();
      long[] packedZeros = {Scheme.ceilDiv(rows, perWord), groups};
      boolean fits = zero.dtype() == DType.I32 ? Arrays.equals(zero.shape(), packedZeros)
          : zero.dtype() == DType.I8 && Arrays.equals(zero.shape(), new long[] {rows, groups});
      if (!fits) {
        return Optional.of(zero.name() + " is " + zero + ", the group needs I32 " + Arrays.toString(packedZeros)
            + " (packed along the outputs) or I8 " + Arrays.toString(new long[] {rows, groups}));
      }
    } else if (!arguments.symmetric()) {
      return Optional.of("asymmetric, but " + Parts.prefix(packed, "weight_packed") + "weight_zero_point is missing");
    }
    return Optional.empty();
  }

  /** The one set of arguments that fits a weight; an error naming the tensor when none or several do. */
  /**
   * The one config group whose arguments fit {@code tensor} ({@code problemOf} says why a group
   * does not), or an error naming every group and why it does not fit, or the several that do.
   */
  private WeightArguments chooseGroup(Parts parts, TensorView tensor,
      Function<WeightArguments, Optional<String>> problemOf) throws CheckpointException {
    Map<String, WeightArguments> fitting = new LinkedHashMap<>();
    List<String> whyNot = new ArrayList<>();
    for (WeightArguments arguments : groups) {
      Optional<String> problem = problemOf.apply(arguments);
      if (problem.isEmpty()) {
        fitting.putIfAbsent(arguments.description(), arguments);
      } else {
        whyNot.add("config group " + arguments.group() + " (" + arguments.description() + "): " + problem.get());
      }
    }
    if (fitting.size() == 1) {
      return fitting.values().iterator().next();
    }
    if (fitting.isEmpty()) {
      throw parts.inconsistent(tensor, "no config group of the quantization_config fits it"
          + (whyNot.isEmpty() ? " (none quantizes weights)" : ": " + String.join("; ", whyNot)));
    }
    throw parts.inconsistent(tensor, "config groups of different arguments fit it (" + String.join(", ", fitting.keySet())
        + "), and the checkpoint does not record which one applies");
  }

  /** Activation scales are consumed with their weight: a dequantized model does not quantize activations. */
  private static void addActivationScales(Parts parts, String prefix, List<TensorView> tensors) {
    parts.find(prefix + "input_scale").ifPresent(tensors::add);
    parts.find(prefix + "input_zero_point").ifPresent(tensors::add);
  }
}
