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
  private final double[] decoded = new double[256];

  ScaledElements(TensorView weight, TensorView scales, Optional<TensorView> zeros, long blockRows, int blockColumns) {
    this.weight = weight;
    this.scales = scales;
    this.zeros = zeros;
    this.columns = (int) weight.dim(1);
    this.blockRows = blockRows;
    this.blockColumns = blockColumns;
    this.gridColumns = (int) Scheme.ceilDiv(columns, blockColumns);
    DType dtype = weight.dtype();
    for (int bits = 0; bits < 256; bits++) {
      decoded[bits] = dtype == DType.I8 ? (byte) bits : dtype.decodeDouble(bits);
    }
  }

  @Override
  public void dequantize(long firstRow, int rows, RowSink sink) {
    byte[] stored = new byte[columns];
    double[] values = new double[columns];
    double[] scaleRow = new double[gridColumns];
    byte[] zeroRow = new byte[gridColumns];
    long stagedBlockRow = -1;
    for (long row = firstRow; row < firstRow + rows; row++) {
      long blockRow = row / blockRows;
      if (blockRow != stagedBlockRow) {
        Staging.doubles(scales, blockRow * gridColumns, scaleRow, 0, gridColumns);
        if (zeros.isPresent()) {
          Staging.bytes(zeros.get(), blockRow * gridColumns, zeroRow, 0, gridColumns);
        }
        stagedBlockRow = blockRow;
      }
      Staging.bytes(weight, row * columns, stored, 0, columns);
      for (int c = 0; c < columns; c++) {
        int block = c / blockColumns;
        values[c] = (decoded[stored[c] & 0xFF] - zeroRow[block]) * scaleRow[block];
      }
      sink.row(row, values);
    }
  }
}
