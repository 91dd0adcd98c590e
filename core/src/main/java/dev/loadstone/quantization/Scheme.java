package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.DType;
import java.util.List;
import java.util.Optional;

/**
 * A quantization scheme as {@code config.json}'s {@code quantization_config} describes it: how
 * to find its quantized weights among a checkpoint's tensors, check them, and dequantize them.
 * Each implementation follows one reference definition (see {@code docs/quantization.md}).
 */
sealed interface Scheme permits Fp8BlockScheme, CompressedTensorsScheme, GptqScheme, AwqScheme {

  /** The scheme and its parameters, for reports: {@code "gptq 4-bit, groups of 128, desc_act"}. */
  String description();

  /**
   * The quantized weights among {@code parts}' tensors, each checked against the scheme.
   *
   * @param modelDType the unquantized model's dtype, as {@code config.json} states it
   * @throws CheckpointException naming the file, the tensor and the rule, for a missing
   *     companion or tensors that do not fit each other
   */
  List<QuantizedWeight> weights(Parts parts, Optional<DType> modelDType) throws CheckpointException;

  /** A weight's logical dtype: the model's, else its scales' where they are a variable dtype, else F32. */
  static DType logicalDType(Optional<DType> modelDType, DType scales) {
    if (modelDType.isPresent()) {
      return modelDType.get();
    }
    return scales == DType.BF16 || scales == DType.F16 || scales == DType.F32 ? scales : DType.F32;
  }

  /** {@code value / divisor}, rounded up. */
  static long ceilDiv(long value, long divisor) {
    return (value + divisor - 1) / divisor;
  }
}
