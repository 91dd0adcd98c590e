package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.TensorView;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The trap of FP8 checkpoints: an 8-bit float weight whose scale is missing would load with
 * values off by that scale. In a checkpoint whose scheme stores FP8 weights with scales, such a
 * weight is an error.
 */
final class Unscaled {
  private Unscaled() {}

  /**
   * Refuses any tensor named {@code *.weight} (or {@code weight}) of an 8-bit float dtype that
   * is not among {@code weights}' tensors.
   *
   * @param scaleSuffix what follows the weight's name in its scale's name
   */
  static void requireNone(Parts parts, List<QuantizedWeight> weights, String scheme, String scaleSuffix)
      throws CheckpointException {
    Set<String> covered = new HashSet<>();
    for (QuantizedWeight weight : weights) {
      for (TensorView tensor : weight.tensors()) {
        covered.add(tensor.name());
      }
    }
    for (TensorView tensor : parts.tensors()) {
      boolean fp8 = tensor.dtype() == DType.F8_E4M3 || tensor.dtype() == DType.F8_E5M2;
      if (fp8 && isWeightName(tensor.name()) && !covered.contains(tensor.name())) {
        throw new CheckpointException(Reason.MISSING_QUANTIZATION_COMPANION, parts.file(tensor), tensor.name(),
            "it is " + tensor.dtype() + " in a checkpoint quantized as " + scheme + ", but "
                + "its scale '" + tensor.name() + scaleSuffix + "' is not in the checkpoint (loading it without would"
                + " give values off by that scale)");
      }
    }
  }

  private static boolean isWeightName(String name) {
    return name.equals("weight") || name.endsWith(".weight");
  }
}
