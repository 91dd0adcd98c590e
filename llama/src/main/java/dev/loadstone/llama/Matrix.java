package dev.loadstone.llama;

import dev.loadstone.safetensors.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A row-major weight matrix {@code [rows, cols]} in F32, F16 or BF16: a mapped checkpoint's bytes
 * (ALIAS load) or a variable's own memory. A {@code staged} matrix is read only through a
 * {@link WeightStage}, never by vector code: every matrix in a file mapping, unless the model was
 * told to read the mapping directly.
 */
record Matrix(String name, MemorySegment data, DType dtype, int rows, int cols, boolean staged) {
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  Matrix {
    if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
      throw new IllegalArgumentException(name + ": the kernels read F32, F16 or BF16, not " + dtype);
    }
    if (data.byteSize() != (long) rows * cols * (dtype.bits() / 8)) {
      throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes for [" + rows + ", " + cols + "] " + dtype);
    }
  }

  /** The bytes of one row. */
  long rowBytes() {
    return (long) cols * (dtype.bits() / 8);
  }

  /**
   * Copies row {@code row} as float32 into {@code out[offset, offset + cols)}, through
   * {@code stage} if the matrix is staged.
   */
  void row(int row, float[] out, int offset, WeightStage stage) {
    MemorySegment source = data;
    long at = row * rowBytes();
    if (staged) {
      source = stage.copy(this, row, row + 1);
      at = 0;
    }
    for (int c = 0; c < cols; c++) {
      long element = at + (long) c * (dtype.bits() / 8);
      out[offset + c] = switch (dtype) {
        case F32 -> source.get(FLOAT, element);
        case BF16 -> Float.intBitsToFloat((source.get(SHORT, element) & 0xFFFF) << 16);
        default -> Float.float16ToFloat(source.get(SHORT, element));
      };
    }
  }
}
