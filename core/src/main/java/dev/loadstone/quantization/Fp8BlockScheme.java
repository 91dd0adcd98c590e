package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code quant_method: "fp8"} (transformers' fine-grained FP8, as DeepSeek-V3 publishes it):
 * each {@code X.weight} is F8_E4M3 {@code [out, in]} with {@code X.weight_scale_inv}
 * {@code [ceil(out / bm), ceil(in / bn)]} for {@code weight_block_size [bm, bn]}, and the value
 * is {@code weight * weight_scale_inv} of the element's block (despite the name, the stored
 * scale multiplies). Blocks at a ragged edge are smaller.
 *
 * @param blockRows {@code bm}
 * @param blockColumns {@code bn}
 */
record Fp8BlockScheme(int blockRows, int blockColumns) implements Scheme {
  static final String SCALE_SUFFIX = "_scale_inv";
  static final List<DType> WEIGHT_DTYPES = List.of(DType.F8_E4M3, DType.F8_E5M2);

  static Fp8BlockScheme from(ConfigSection config) throws CheckpointException {
    if (config.isNull("weight_block_size")) {
      throw config.unsupported("fp8 with weight_block_size null (one scale per tensor) is not the block scheme");
    }
    Optional<List<Object>> block = config.optionalList("weight_block_size");
    if (block.isEmpty()) {
      return new Fp8BlockScheme(128, 128);   // transformers' FineGrainedFP8Config default
    }
    List<Object> sizes = block.get();
    if (sizes.size() != 2 || !(sizes.get(0) instanceof BigDecimal rows) || !(sizes.get(1) instanceof BigDecimal columns)
        || !positiveInt(rows) || !positiveInt(columns)) {
      throw config.invalid("weight_block_size", "is " + sizes + ", not two positive integers");
    }
    return new Fp8BlockScheme(rows.intValueExact(), columns.intValueExact());
  }

  private static boolean positiveInt(BigDecimal value) {
    try {
      return value.intValueExact() > 0;
    } catch (ArithmeticException e) {
      return false;
    }
  }

  @Override
  public String description() {
    return "fp8 blocks of " + blockRows + "x" + blockColumns;
  }

  @Override
  public List<QuantizedWeight> weights(Parts parts, Optional<DType> modelDType) throws CheckpointException {
    List<QuantizedWeight> weights = new ArrayList<>();
    for (TensorView scale : parts.tensors()) {
      if (!scale.name().endsWith("weight" + SCALE_SUFFIX)) {
        continue;
      }
      String name = scale.name().substring(0, scale.name().length() - SCALE_SUFFIX.length());
      Optional<TensorView> found = parts.find(name);
      if (found.isEmpty()) {
        throw parts.inconsistent(scale, "it is the scale of '" + name + "', which is not in the checkpoint");
      }
      TensorView weight = found.get();
      parts.requireDType(weight, description(), WEIGHT_DTYPES);
      parts.requireRank(weight, description(), 2);
      long rows = weight.dim(0);
      int columns = parts.columns(weight, weight.dim(1));
      parts.requireDType(scale, description(), Parts.SCALE_DTYPES);
      parts.requireShape(scale, description(), "one scale per block of the weight " + java.util.Arrays.toString(weight.shape()),
          Scheme.ceilDiv(rows, blockRows), Scheme.ceilDiv(columns, blockColumns));
      List<TensorView> tensors = new ArrayList<>(List.of(weight, scale));
      parts.find(name.substring(0, name.length() - "weight".length()) + "input_scale").ifPresent(tensors::add);
      weights.add(QuantizedWeight.of(name, description(), rows, columns, Scheme.logicalDType(modelDType, scale.dtype()),
          tensors, new ScaledElements(weight, scale, Optional.empty(), blockRows, blockColumns)));
    }
    Unscaled.requireNone(parts, weights, description(), SCALE_SUFFIX);
    return weights;
  }
}
