package dev.loadstone.quantization;

/**
 * Computes the rows of one quantized weight's logical {@code [rows, columns]} matrix, exactly
 * (every value is a small integer or an 8-bit float times a scale, which a double holds
 * exactly). Reads its tensors only through the JVM's copy routine, so a file truncated under
 * its mapping is an exception, never a dead JVM. Thread-safe: calls for different rows may run
 * at once.
 */
interface Dequantizer {

  /** Receives one row of values; the array is reused for the next row. */
  @FunctionalInterface
  interface RowSink {
    void row(long row, double[] values);
  }

  /**
   * Hands rows {@code [firstRow, firstRow + rows)} to {@code sink}, in order.
   *
   * @throws java.io.UncheckedIOException wrapping a
   *     {@link dev.loadstone.checkpoint.CheckpointException} for a value the scheme rules out
   */
  void dequantize(long firstRow, int rows, RowSink sink);
}
