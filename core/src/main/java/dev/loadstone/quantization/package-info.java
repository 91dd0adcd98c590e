/**
 * Quantized checkpoints as the hub publishes them: {@link dev.loadstone.quantization.Quantization}
 * recognizes the scheme ({@code config.json}'s {@code quantization_config}) and the quantized
 * weights among a checkpoint's tensors; {@link dev.loadstone.quantization.QuantizedWeight}
 * computes a weight's values in its logical shape. {@code VarStore.load} dequantizes through
 * them; see {@code docs/quantization.md} for the definition each scheme follows.
 */
package dev.loadstone.quantization;
