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
   * are reused for the next row.
   */
  @FunctionalInterface
  interface RowSink {
    void row(long row, float[] quantized, float[] scales);
  }

  /**
   * Hands rows {@code [firstRow, firstRow + rows)} to {@code sink}, in order.
   *
   * @throws java.io.UncheckedIOException wrapping a
   *     {@link dev.loadstone.checkpoint.CheckpointException} for a value the scheme rules out
   */
  void dequantize(long firstRow, int rows, RowSink sink);
}
