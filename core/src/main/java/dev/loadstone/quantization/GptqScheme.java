package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * {@code quant_method: "gptq"} (AutoGPTQ, GPTQModel; transformers' GPTQ integration): for a
 * linear layer {@code X} with {@code in} inputs and {@code out} outputs, {@code X.qweight} I32
 * {@code [in * bits / 32, out]} packs the integers along the input dimension
 * ({@link PackedInts.Layout#GPTQ}), {@code X.qzeros} I32 {@code [groups, out * bits / 32]}
 * packs the zero points along the output dimension, {@code X.scales} {@code [groups, out]},
 * and {@code X.g_idx} I32 {@code [in]} gives each input's group. The weight is
 * {@code W[o, i] = (q[i, o] - zero[g(i), o]) * scale[g(i), o]}, transposed into {@code [out, in]}.
 * In the original format ({@code checkpoint_format: "gptq"}) each zero point is stored minus
 * one; {@code gptq_v2} stores it as it is. Without {@code desc_act}, {@code g(i) = i / group_size}
 * and a g_idx must agree; with it, g_idx decides. {@code sym} changes how the zero points were
 * chosen, not how they are applied.
 *
 * @param groupSize inputs per group; -1 for one group
 * @param version2 whether zero points are stored as they are ({@code gptq_v2})
 */
record GptqScheme(int bits, int groupSize, boolean descAct, boolean symmetric, boolean version2) implements Scheme {

  static GptqScheme from(ConfigSection config) throws CheckpointException {
    int bits = config.integer("bits");
    if (bits != 2 && bits != 4 && bits != 8) {
      throw config.unsupported("gptq with " + bits + " bits (Loadstone reads 2, 4 and 8: integers that tile an int32)");
    }
    int groupSize = config.optionalInt("group_size").orElse(128);
    if (groupSize == 0 || groupSize < -1) {
      throw config.invalid("group_size", "is " + groupSize + ", not -1 or a positive number");
    }
    Optional<String> format = config.optionalString("checkpoint_format");
    Optional<String> older = config.optionalString("format");
    if (format.isPresent() && older.isPresent() && !format.get().equalsIgnoreCase(older.get())) {
      throw config.invalid("checkpoint_format", "is '" + format.get() + "' but format is '" + older.get() + "'");
    }
    String checkpointFormat = format.or(() -> older).orElse("gptq").toLowerCase(Locale.ROOT);
    boolean version2 = switch (checkpointFormat) {
      case "gptq" -> false;
      case "gptq_v2" -> true;
      default -> throw config.unsupported("gptq checkpoint_format '" + checkpointFormat
          + "' (Loadstone reads the gptq and gptq_v2 formats)");
    };
    return new GptqScheme(bits, groupSize, config.bool("desc_act", false), config.bool("sym", true), version2);
  }

  @Override
  public String description() {
    return "gptq " + bits + "-bit, " + (groupSize < 0 ? "one group" : "groups of " + groupSize)
        + (descAct ? ", desc_act" : "") + (symmetric ? ", sym" : ", asym") + (version2 ? ", gptq_v2" : ", gptq (v1)");
  }

  @Override
  public List<QuantizedWeight> weights(Parts parts, Optional<DType> modelDType) throws CheckpointException {
    String scheme = description();
    int perWord = 32 / bits;
    List<QuantizedWeight> weights = new ArrayList<>();
    for (TensorView qweight : parts.named("qweight")) {
      String prefix = Parts.prefix(qweight, "qweight");
      TensorView qzeros = parts.require(prefix + "qzeros", qweight, scheme, "its zero points");
      TensorView scales = parts.require(prefix + "scales", qweight, scheme, "its scales");
      Optional<TensorView> gIdx = parts.find(prefix + "g_idx");
      if (descAct && gIdx.isEmpty()) {
        parts.require(prefix + "g_idx", qweight, scheme, "its group index (desc_act)");
      }
      parts.requireDType(qweight, scheme, List.of(DType.I32));
      parts.requireRank(qweight, scheme, 2);
      int columns = parts.columns(qweight, qweight.dim(0) * perWord);
      long rows = qweight.dim(1);
      int groups = GroupIndex.groupCount(columns, groupSize);
      parts.requireDType(scales, scheme, Parts.SCALE_DTYPES);
      parts.requireShape(scales, scheme, "a scale per group and output", groups, rows);
      parts.requireDType(qzeros, scheme, List.of(DType.I32));
      if (rows % perWord != 0) {
        throw parts.inconsistent(qweight, "its " + rows + " outputs do not fill whole int32 words of zero points ("
            + perWord + " per word)");
      }
      parts.requireShape(qzeros, scheme, "zero points of each group packed along the outputs", groups, rows / perWord);
      if (gIdx.isPresent()) {
        parts.requireDType(gIdx.get(), scheme, List.of(DType.I32, DType.I64));
        parts.requireShape(gIdx.get(), scheme, "a group per input", columns);
      }
      GroupIndex groupIndex = new GroupIndex(gIdx, descAct, columns, groupSize, groups, parts.file(qweight));
      PackedInts values = new PackedInts(bits, columns, qweight, PackedInts.Layout.GPTQ, scales, true,
          Optional.of(qzeros), version2 ? PackedInts.Zeros.GPTQ : PackedInts.Zeros.GPTQ_MINUS_ONE, groupIndex,
          parts.file(qweight));
      List<TensorView> tensors = new ArrayList<>(List.of(qweight, qzeros, scales));
      gIdx.ifPresent(tensors::add);
      weights.add(QuantizedWeight.of(prefix + "weight", scheme, rows, columns,
          Scheme.logicalDType(modelDType, scales.dtype()), tensors, values));
    }
    return weights;
  }
}
