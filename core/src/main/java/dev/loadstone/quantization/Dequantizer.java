package dev.loadstone.quantization;

/**
 * Computes the rows of one quantized weight's logical {@code [rows, columns]} matrix as two
 * factors per value: the stored value on its own scale (an 8-bit float, or an integer minus its
 * zero point) and the scale it is multiplied by. Both are exact as floats (an 8-bit value or a
 * difference of 8-bit integers; a scale stored as F32, F16 or BF16), so the value is their exact
 * product, which {@link RowEncoder} rounds once into the target dtype. Reads its tensors only
 * through the JVM's copy routine, so a file truncated under its mapping is an exception, never
 * a dead JVM. Thread-safe: calls for different rows may run at once.
 */
interface Dequantizer {

  /**
   * Receives one row: value {@code c} is {@code quantized[c] * scales[c]}, exactly. The arrays
   * are reused for the next row. {@code ordinary} says that every quantized value is zero or of
   * a magnitude in [2^-16, 2^17] and every scale zero or of a magnitude in [2^-64, 2^64]
   * ({@link RowEncoder#ordinaryScales}): no product is then tiny, huge or NaN, and its rounding
   * error is a float, which lets {@link RowEncoder} skip its check for such products.
   */
  @FunctionalInterface
  interface RowSink {
    void row(long row, float[] quantized, float[] scales, boolean ordinary);
  }

  /**
   * Hands rows {@code [firstRow, firstRow + rows)} to {@code sink}, in order.
   *
   * @throws java.io.UncheckedIOException wrapping a
   *     {@link dev.loadstone.checkpoint.CheckpointException} for a value the scheme rules out
   */
  void dequantize(long firstRow, int rows, RowSink sink);
}
