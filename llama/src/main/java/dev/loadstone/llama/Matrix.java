package dev.loadstone.llama;

import dev.loadstone.safetensors.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A row-major weight matrix {@code [rows, cols]} in F32, F16 or BF16, read where it lies (a
 * mapped checkpoint, or a variable's own memory).
 */
record Matrix(String name, MemorySegment data, DType dtype, int rows, int cols) {
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

  /** Element {@code [row, col]} as float32. */
  float get(int row, int col) {
    long index = (long) row * cols + col;
    return switch (dtype) {
      case F32 -> data.get(FLOAT, 4 * index);
      case BF16 -> Float.intBitsToFloat((data.get(SHORT, 2 * index) & 0xFFFF) << 16);
      default -> Float.float16ToFloat(data.get(SHORT, 2 * index));
    };
  }

  /** Copies row {@code row} as float32 into {@code out[offset, offset + cols)}. */
  void row(int row, float[] out, int offset) {
    for (int c = 0; c < cols; c++) {
      out[offset + c] = get(row, c);
    }
  }
}
