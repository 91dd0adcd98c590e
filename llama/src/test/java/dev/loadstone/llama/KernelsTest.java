package dev.loadstone.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.DType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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

  /** Random weights in {@code data}, returned as the doubles they encode. */
  private static double[][] fill(SplittableRandom random, MemorySegment data, DType dtype, int rows, int cols) {
    int size = dtype.bits() / 8;
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
    return w;
  }

  private static void check(SplittableRandom random, DType dtype, int rows, int cols, int n) {
    try (Arena arena = Arena.ofConfined()) {
      int size = dtype.bits() / 8;
      // One byte of offset: weights in a mapped file need not be aligned.
      MemorySegment data = arena.allocate((long) rows * cols * size + 1).asSlice(1);
      double[][] w = fill(random, data, dtype, rows, cols);
      Matrix matrix = new Matrix("w", data, dtype, rows, cols, false);
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
        Kernels.multiply(matrix, 0, rows, x, xi, cols, n, out, rows, accumulate, null);
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

  /**
   * Weights in a file mapping are read through the stage, a few rows per copy: the products are
   * the plain products and the embedding rows the stored values, for any range of rows (copies
   * that end short of a group of four included) and for rows longer than a copy.
   */
  @Test
  void aFileMappingIsReadThroughTheStageWithTheSameResults(@TempDir Path dir) throws IOException {
    SplittableRandom random = new SplittableRandom(7);
    for (DType dtype : new DType[] {DType.BF16, DType.F16, DType.F32}) {
      for (int[] shape : new int[][] {{37, 1000}, {9, 20_000}}) {
        int rows = shape[0];
        int cols = shape[1];
        Path file = dir.resolve(dtype + "-" + cols + ".bin");
        double[][] w;
        try (Arena arena = Arena.ofConfined()) {
          MemorySegment owned = arena.allocate((long) rows * cols * (dtype.bits() / 8));
          w = fill(random, owned, dtype, rows, cols);
          Files.write(file, owned.toArray(ValueLayout.JAVA_BYTE));
        }
        try (Arena arena = Arena.ofConfined(); FileChannel channel = FileChannel.open(file)) {
          MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
          Matrix matrix = new Matrix("w", mapping, dtype, rows, cols, true);
          WeightStage stage = new WeightStage(WeightStage.bytesFor(List.of(matrix)));
          assertTrue(stage.rowsPerCopy(matrix) < rows - 2, "several copies per product");
          for (int n : new int[] {1, 5}) {
            float[] x = new float[n * cols];
            for (int i = 0; i < x.length; i++) {
              x[i] = (float) random.nextGaussian();
            }
            float[] xi = new float[n * cols];
            for (int t = 0; t < n; t++) {
              Kernels.interleave(x, t * cols, xi, t * cols, cols);
            }
            for (int[] range : new int[][] {{0, rows}, {3, rows - 2}}) {
              float[] out = new float[n * rows];
              java.util.Arrays.fill(out, 99f);
              Kernels.multiply(matrix, range[0], range[1], x, xi, cols, n, out, rows, false, stage);
              for (int t = 0; t < n; t++) {
                for (int r = 0; r < rows; r++) {
                  String where = dtype + " [" + rows + ", " + cols + "] rows " + range[0] + ".." + range[1]
                      + " n " + n + " t " + t + " r " + r;
                  if (r < range[0] || r >= range[1]) {
                    assertEquals(99f, out[t * rows + r], where + ": outside the range");
                    continue;
                  }
                  double want = 0;
                  double scale = 0;
                  for (int c = 0; c < cols; c++) {
                    want += w[r][c] * x[t * cols + c];
                    scale += Math.abs(w[r][c] * x[t * cols + c]);
                  }
                  assertEquals(want, out[t * rows + r], 1e-5 * (scale + 1), where);
                }
              }
            }
          }
          for (int r : new int[] {0, rows - 1}) {
            float[] row = new float[cols];
            matrix.row(r, row, 0, stage);
            for (int c = 0; c < cols; c++) {
              assertEquals((float) w[r][c], row[c], dtype + " row " + r + " col " + c);
            }
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
      Matrix matrix = new Matrix("halves", data, DType.F16, rows, cols, false);
      float[] out = new float[rows];
      for (int j = 0; j < cols; j++) {
        float[] x = new float[cols];
        float[] xi = new float[cols];
        x[j] = 1;
        Kernels.interleave(x, 0, xi, 0, cols);
        Kernels.multiply(matrix, 0, rows, x, xi, cols, 1, out, rows, false, null);
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
