package dev.loadstone.quantization;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import java.util.Optional;

/**
 * A weight stored one 8-bit element per value (F8_E4M3, F8_E5M2 or I8) with scales (and, for
 * asymmetric integers, zero points) on a grid of blocks: value {@code [r, c]} is
 * {@code (q[r, c] - zero[b]) * scale[b]} where {@code b} is block {@code (r / blockRows,
 * c / blockColumns)} of a grid of {@code ceil(columns / blockColumns)} blocks per row of blocks.
 * One block is the whole tensor (per-tensor scale), a row (per channel), a row's group of
 * columns (per group), or a tile (DeepSeek's 128 × 128; the last ones smaller at a ragged edge).
 */
final class ScaledElements implements Dequantizer {
  private final TensorView weight;
  private final TensorView scales;
  private final Optional<TensorView> zeros;
  private final int columns;
  private final long blockRows;
  private final int blockColumns;
  private final int gridColumns;
  private final float[] decoded = new float[256];
  /** Whether {@link VectorBytes} decodes the stored values. */
  private final boolean vectorDecode;

  ScaledElements(TensorView weight, TensorView scales, Optional<TensorView> zeros, long blockRows, int blockColumns) {
    this.weight = weight;
    this.scales = scales;
    this.zeros = zeros;
    this.columns = (int) weight.dim(1);
    this.blockRows = blockRows;
    this.blockColumns = blockColumns;
    this.gridColumns = (int) Scheme.ceilDiv(columns, blockColumns);
    DType dtype = weight.dtype();
    this.vectorDecode = RowEncoder.VECTOR_PRODUCTS && VectorBytes.decodes(dtype);
    for (int bits = 0; bits < 256; bits++) {
      decoded[bits] = dtype == DType.I8 ? (byte) bits : (float) dtype.decodeDouble(bits);   // exact
    }
  }

  @Override
  public void dequantize(long firstRow, int rows, RowSink sink) {
    byte[] stored = new byte[columns];
    float[] quantized = new float[columns];
    float[] scale = new float[columns];
    float[] zero = zeros.isPresent() ? new float[columns] : null;
    float[] scaleRow = new float[gridColumns];
    byte[] zeroRow = new byte[gridColumns];
    long stagedBlockRow = -1;
    boolean ordinaryScales = false;
    for (long row = firstRow; row < firstRow + rows; row++) {
      long blockRow = row / blockRows;
      if (blockRow != stagedBlockRow) {
        Staging.floats(scales, blockRow * gridColumns, scaleRow, 0, gridColumns);
        ordinaryScales = RowEncoder.ordinaryScales(scaleRow, gridColumns);
        if (zero != null) {
          Staging.bytes(zeros.get(), blockRow * gridColumns, zeroRow, 0, gridColumns);
        }
        for (int block = 0; block < gridColumns; block++) {
          int from = block * blockColumns;
          int to = Math.min(columns, from + blockColumns);
          java.util.Arrays.fill(scale, from, to, scaleRow[block]);
          if (zero != null) {
            java.util.Arrays.fill(zero, from, to, zeroRow[block]);
          }
        }
        stagedBlockRow = blockRow;
      }
      Staging.bytes(weight, row * columns, stored, 0, columns);
      int decodedByVectors = vectorDecode ? VectorBytes.decode(weight.dtype(), stored, quantized, columns) : 0;
      // 8-bit values are ordinary but for NaN and infinity, which only the table decodes.
      boolean finite = true;
      if (zero == null) {
        for (int c = decodedByVectors; c < columns; c++) {
          quantized[c] = decoded[stored[c] & 0xFF];
          finite &= Float.isFinite(quantized[c]);
        }
      } else {
        for (int c = 0; c < decodedByVectors; c++) {
          quantized[c] -= zero[c];   // integers: exact
        }
        for (int c = decodedByVectors; c < columns; c++) {
          quantized[c] = decoded[stored[c] & 0xFF] - zero[c];
          finite &= Float.isFinite(quantized[c]);
        }
      }
      sink.row(row, quantized, scale, ordinaryScales && finite);
    }
  }
}
