package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * {@code quant_method: "awq"} in the GEMM layout (AutoAWQ's {@code WQLinear_GEMM}): for a linear
 * layer {@code X} with {@code in} inputs and {@code out} outputs, {@code X.qweight} I32
 * {@code [in, out / 8]} packs eight 4-bit integers along the output dimension in AWQ's
 * interleaved order ({@link PackedInts.Layout#AWQ}), {@code X.qzeros} I32
 * {@code [groups, out / 8]} packs the zero points the same way, and {@code X.scales}
 * {@code [groups, out]}. The weight is {@code W[o, i] = (q[i, o] - zero[i / group_size, o]) *
 * scale[i / group_size, o]}, transposed into {@code [out, in]}. Zero points are stored as they
 * are.
 */
record AwqScheme(int groupSize) implements Scheme {

  static AwqScheme from(ConfigSection config) throws CheckpointException {
    // transformers writes bits and group_size; AutoAWQ's own quant_config.json w_bit and q_group_size.
    int bits = config.has("bits") ? config.integer("bits") : config.optionalInt("w_bit").orElse(4);
    if (bits != 4) {
      throw config.unsupported("awq with " + bits + " bits (AWQ's packing order is defined for 4)");
    }
    String version = config.optionalString("version").orElse("gemm").toLowerCase(Locale.ROOT);
    if (!version.equals("gemm")) {
      throw config.unsupported("awq version '" + version + "' (Loadstone reads the gemm layout)");
    }
    if (!config.bool("zero_point", true)) {
      throw config.unsupported("awq with zero_point false (AutoAWQ's GEMM layout stores zero points)");
    }
    int groupSize = config.has("group_size") ? config.integer("group_size")
        : config.optionalInt("q_group_size").orElse(128);
    if (groupSize == 0 || groupSize < -1) {
      throw config.invalid("group_size", "is " + groupSize + ", not -1 or a positive number");
    }
    return new AwqScheme(groupSize);
  }

  @Override
  public String description() {
    return "awq 4-bit gemm, " + (groupSize < 0 ? "one group" : "groups of " + groupSize);
  }

  @Override
  public List<QuantizedWeight> weights(Parts parts, Optional<DType> modelDType) throws CheckpointException {
    String scheme = description();
    List<QuantizedWeight> weights = new ArrayList<>();
    for (TensorView qweight : parts.named("qweight")) {
      String prefix = Parts.prefix(qweight, "qweight");
      TensorView qzeros = parts.require(prefix + "qzeros", qweight, scheme, "its zero points");
      TensorView scales = parts.require(prefix + "scales", qweight, scheme, "its scales");
      parts.requireDType(qweight, scheme, List.of(DType.I32));
      parts.requireRank(qweight, scheme, 2);
      int columns = parts.columns(qweight, qweight.dim(0));
      long rows = qweight.dim(1) * 8;
      int groups = GroupIndex.groupCount(columns, groupSize);
      parts.requireDType(scales, scheme, Parts.SCALE_DTYPES);
      parts.requireShape(scales, scheme, "a scale per group and output", groups, rows);
      parts.requireDType(qzeros, scheme, List.of(DType.I32));
      parts.requireShape(qzeros, scheme, "zero points of each group packed along the outputs", groups, rows / 8);
      GroupIndex groupIndex = new GroupIndex(Optional.empty(), false, columns, groupSize, groups, parts.file(qweight));
      PackedInts values = new PackedInts(4, columns, qweight, PackedInts.Layout.AWQ, scales, true,
          Optional.of(qzeros), PackedInts.Zeros.AWQ, groupIndex, parts.file(qweight));
      weights.add(QuantizedWeight.of(prefix + "weight", scheme, rows, columns,
          Scheme.logicalDType(modelDType, scales.dtype()), List.of(qweight, qzeros, scales), values));
    }
    return weights;
  }
}
