package dev.loadstone.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.loadstone.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The matrix kernels against a plain double-precision product, for every dtype and shape path. */
class KernelsTest {
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  @Test
  void multiplyMatchesAPlainProduct() {
    SplittableRandom random = new SplittableRandom(5);
    int[] colsCases = {Kernels.BLOCK, 3 * Kernels.BLOCK, 2 * Kernels.BLOCK + 5, 7, 72, 104};
    for (DType dtype : new DType[] {DType.BF16, DType.F16, DType.F32}) {
      for (int cols : colsCases) {
        for (int rows : new int[] {1, 4, 11}) {
          for (int n : new int[] {1, 3, 4, 6}) {
            check(random, dtype, rows, cols, n);
          }
        }
      }
    }
  }

  private static void check(SplittableRandom random, DType dtype, int rows, int cols, int n) {
    try (Arena arena = Arena.ofConfined()) {
      int size = dtype.bits() / 8;
      // One byte of offset: weights in a mapped file need not be aligned.
      MemorySegment data = arena.allocate((long) rows * cols * size + 1).asSlice(1);
      double[][] w = new double[rows][cols];
      for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
          float value = (float) random.nextGaussian();
          long at = ((long) r * cols + c) * size;
          if (dtype == DType.F32) {
            data.set(FLOAT, at, value);
          } else {
            data.set(SHORT, at, (short) dtype.encodeFloat(value));
          }
          w[r][c] = dtype.decodeFloat(dtype == DType.F32 ? Float.floatToRawIntBits(value) : dtype.encodeFloat(value));
        }
      }
      Matrix matrix = new Matrix("w", data, dtype, rows, cols);
      float[] x = new float[n * cols];
      float[] xi = new float[n * cols];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) random.nextGaussian();
      }
      for (int t = 0; t < n; t++) {
        Kernels.interleave(x, t * cols, xi, t * cols, cols);
      }
      float[] out = new float[n * rows];
      for (boolean accumulate : new boolean[] {false, true}) {
        java.util.Arrays.fill(out, accumulate ? 1f : 99f);
        Kernels.multiply(matrix, 0, rows, x, xi, cols, n, out, 0, rows, accumulate);
        for (int t = 0; t < n; t++) {
          for (int r = 0; r < rows; r++) {
            double want = accumulate ? 1 : 0;
            double scale = 0;
            for (int c = 0; c < cols; c++) {
              want += w[r][c] * x[t * cols + c];
              scale += Math.abs(w[r][c] * x[t * cols + c]);
            }
            assertEquals(want, out[t * rows + r], 1e-5 * (scale + 1),
                dtype + " rows " + rows + " cols " + cols + " n " + n + " t " + t + " r " + r);
          }
        }
      }
    }
  }

  @Test
  void halfPrecisionWidensExactlyForEveryValue() {
    // All 65,536 half-precision values as rows of one block, each column picked by a one-hot
    // token; the rows holding infinities and NaNs (exponent all ones) would make NaN products.
    int cols = Kernels.BLOCK;
    int rows = (1 << 16) / cols;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment data = arena.allocate(2L * rows * cols);
      for (int i = 0; i < rows * cols; i++) {
        data.set(SHORT, 2L * i, (short) i);
      }
      Matrix matrix = new Matrix("halves", data, DType.F16, rows, cols);
      float[] out = new float[rows];
      for (int j = 0; j < cols; j++) {
        float[] x = new float[cols];
        float[] xi = new float[cols];
        x[j] = 1;
        Kernels.interleave(x, 0, xi, 0, cols);
        Kernels.multiply(matrix, 0, rows, x, xi, cols, 1, out, 0, rows, false);
        for (int r = 0; r < rows; r++) {
          int bits = r * cols + j;
          if ((bits & 0x7C00) == 0x7C00 || ((r * cols) & 0x7C00) == 0x7C00) {
            continue;
          }
          assertEquals(Float.float16ToFloat((short) bits), out[r], 0f, "half 0x" + Integer.toHexString(bits));
        }
      }
    }
  }

  @Test
  void interleavedIndexIsWhereInterleaveMovesAColumn() {
    for (int cols : new int[] {Kernels.BLOCK, 2 * Kernels.BLOCK + 3, 5}) {
      float[] x = new float[cols];
      for (int c = 0; c < cols; c++) {
        x[c] = c;
      }
      float[] xi = new float[cols];
      Kernels.interleave(x, 0, xi, 0, cols);
      for (int c = 0; c < cols; c++) {
        assertEquals(c, xi[Kernels.interleavedIndex(c, cols)]);
      }
    }
  }
}
