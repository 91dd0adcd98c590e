package dev.loadstone.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.VarStore;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The Llama example runs checkpoints quantized as the hub publishes them, dequantized on load:
 * the fortune model's projections quantized here (FP8 in 128 x 128 blocks as DeepSeek-V3 ships
 * it; GPTQ 4-bit, symmetric, groups of 32, the original v1 format), loaded, and compared with the
 * same model whose weights this test dequantized itself (each value {@code q * scale} in
 * double, rounded once to BF16) and wrote dense: the loaded weights must be identical, and the
 * model's logits those of the dense model. And the
 * quantized model must still be the fortune model: its first-step logits close to the original's.
 */
class QuantizedLlamaTest {
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final Pattern PROJECTION = Pattern.compile(".*\\.(q|k|v|o|gate|up|down)_proj\\.weight");
  private static final int[] PROMPT = {256, 84, 104, 101, 32};
  private static final int GROUP = 32;

  enum Scheme {
    FP8("{\"quant_method\": \"fp8\", \"activation_scheme\": \"dynamic\", \"weight_block_size\": [128, 128]}"),
    GPTQ("{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": " + GROUP
        + ", \"desc_act\": false, \"sym\": true, \"checkpoint_format\": \"gptq\"}");

    final String config;

    Scheme(String config) {
      this.config = config;
    }
  }

  @TempDir
  static Path dir;
  static LlamaModel original;
  static final Arena ARENA = Arena.ofShared();

  @BeforeAll
  static void loadOriginal() throws IOException {
    original = LlamaModel.load(FortuneLlamaTest.MODEL, LlamaModel.Options.defaults().withThreads(2));
  }

  @AfterAll
  static void close() {
    original.close();
    ARENA.close();
  }

  @ParameterizedTest
  @EnumSource(Scheme.class)
  void aQuantizedCheckpointRunsWithTheWeightsItsScalesGive(Scheme scheme) throws IOException {
    Path quantized = Files.createDirectories(dir.resolve(scheme + "-quantized"));
    Path dense = Files.createDirectories(dir.resolve(scheme + "-dense"));
    quantize(scheme, quantized, dense);
    // What a load of the quantized checkpoint computes is exactly what this test computed.
    try (Checkpoint checkpoint = Checkpoint.open(quantized);
         VarStore store = VarStore.fromCheckpoint(checkpoint, LoadOptions.defaults());
         SafeTensors expected = SafeTensors.open(dense.resolve("model.safetensors"))) {
      for (TensorView tensor : expected.tensors()) {
        TensorView loaded = store.variable(tensor.name()).view();
        assertEquals(tensor.dtype(), loaded.dtype(), tensor.name());
        for (long i = 0; i < tensor.elementCount(); i++) {
          if (tensor.getFloat(i) != loaded.getFloat(i)) {
            throw new AssertionError(tensor.name() + " element " + i + ": dequantized here " + tensor.getFloat(i)
                + ", loaded " + loaded.getFloat(i));
          }
        }
      }
    }
    try (LlamaModel model = LlamaModel.load(quantized, LlamaModel.Options.defaults().withThreads(2));
         LlamaModel reference = LlamaModel.load(dense, LlamaModel.Options.defaults().withThreads(2)
             .withWeightType(DType.BF16))) {   // copied too, so the kernels read both alike
      assertEquals(6 * 7, model.loadReport().dequantized().size(), model.loadReport().summary());
      float[] logits = model.newSession(PROMPT.length).forward(PROMPT, 0);
      // Equal weights; the kernels' sums may round differently as the JIT compiles them.
      assertArrayEquals(reference.newSession(PROMPT.length).forward(PROMPT, 0), logits, 1e-4f,
          "the logits of the weights the scales give");
      float[] unquantized = original.newSession(PROMPT.length).forward(PROMPT, 0);
      double similarity = cosine(logits, unquantized);
      assertTrue(similarity > (scheme == Scheme.FP8 ? 0.999 : 0.98), "still the fortune model: cosine " + similarity);
    }
  }

  private static double cosine(float[] a, float[] b) {
    double dot = 0;
    double na = 0;
    double nb = 0;
    for (int i = 0; i < a.length; i++) {
      dot += (double) a[i] * b[i];
      na += (double) a[i] * a[i];
      nb += (double) b[i] * b[i];
    }
    return dot / Math.sqrt(na * nb);
  }

  /** Writes the quantized checkpoint and, beside it, the dense one this test dequantizes itself. */
  private static void quantize(Scheme scheme, Path quantizedDir, Path denseDir) throws IOException {
    List<TensorView> quantized = new ArrayList<>();
    List<TensorView> dense = new ArrayList<>();
    try (SafeTensors model = SafeTensors.open(FortuneLlamaTest.MODEL.resolve("model.safetensors"))) {
      for (TensorView tensor : model.tensors()) {
        if (!PROJECTION.matcher(tensor.name()).matches()) {
          quantized.add(tensor);
          dense.add(tensor);
          continue;
        }
        int rows = (int) tensor.dim(0);
        int columns = (int) tensor.dim(1);
        double[] values = new double[rows * columns];
        if (scheme == Scheme.FP8) {
          fp8Blocks(tensor, quantized, values);
        } else {
          gptq(tensor, quantized, values);
        }
        MemorySegment bf16 = ARENA.allocate(2L * values.length);
        for (int i = 0; i < values.length; i++) {
          bf16.setAtIndex(SHORT, i, (short) DType.BF16.encodeFloat(roundedToBFloat16(values[i])));
        }
        dense.add(TensorView.of(tensor.name(), DType.BF16, tensor.shape(), bf16));
      }
      SafeTensorsWriter.write(quantizedDir.resolve("model.safetensors"), null, quantized);
      SafeTensorsWriter.write(denseDir.resolve("model.safetensors"), null, dense);
    }
    String config = Files.readString(FortuneLlamaTest.MODEL.resolve("config.json"));
    Files.writeString(denseDir.resolve("config.json"), config);
    Files.writeString(quantizedDir.resolve("config.json"),
        config.replaceFirst("\\{", "{\n  \"quantization_config\": " + scheme.config + ","));
  }

  /** {@code value} rounded to the nearest BF16 value, ties to even (a normal BF16 here). */
  private static float roundedToBFloat16(double value) {
    if (value == 0) {
      return (float) value;
    }
    double ulp = Math.scalb(1.0, Math.getExponent(value) - 7);
    return (float) (Math.rint(value / ulp) * ulp);
  }

  /** F8_E4M3 weight with one F32 scale per 128 x 128 block (smaller at the ragged edges). */
  private static void fp8Blocks(TensorView weight, List<TensorView> out, double[] values) {
    int rows = (int) weight.dim(0);
    int columns = (int) weight.dim(1);
    int blockRows = (rows + 127) / 128;
    int blockColumns = (columns + 127) / 128;
    MemorySegment q = ARENA.allocate((long) rows * columns);
    MemorySegment scales = ARENA.allocate(4L * blockRows * blockColumns);
    for (int br = 0; br < blockRows; br++) {
      for (int bc = 0; bc < blockColumns; bc++) {
        double max = 0;
        for (int r = br * 128; r < Math.min(rows, br * 128 + 128); r++) {
          for (int c = bc * 128; c < Math.min(columns, bc * 128 + 128); c++) {
            max = Math.max(max, Math.abs(weight.getFloat((long) r * columns + c)));
          }
        }
        float scale = max == 0 ? 1f : (float) (max / 448);
        scales.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, (long) br * blockColumns + bc, scale);
        for (int r = br * 128; r < Math.min(rows, br * 128 + 128); r++) {
          for (int c = bc * 128; c < Math.min(columns, bc * 128 + 128); c++) {
            int i = r * columns + c;
            long bits = e4m3(weight.getFloat(i) / scale);
            q.set(ValueLayout.JAVA_BYTE, i, (byte) bits);
            values[i] = DType.F8_E4M3.decodeDouble(bits) * scale;
          }
        }
      }
    }
    out.add(TensorView.of(weight.name(), DType.F8_E4M3, weight.shape(), q));
    out.add(TensorView.of(weight.name() + "_scale_inv", DType.F32, new long[] {blockRows, blockColumns}, scales));
  }

  /** The F8_E4M3 code nearest to {@code value} (ties to the even code), saturating at 448. */
  private static int e4m3(float value) {
    double magnitude = Math.abs(value);
    int best = 0;
    for (int code = 1; code < 0x7F; code++) {   // the finite magnitudes, increasing with the code
      double distance = Math.abs(DType.F8_E4M3.decodeDouble(code) - magnitude);
      double bestDistance = Math.abs(DType.F8_E4M3.decodeDouble(best) - magnitude);
      if (distance < bestDistance || distance == bestDistance && (code & 1) == 0) {
        best = code;
      }
    }
    return value < 0 || (value == 0 && 1 / value < 0) ? best | 0x80 : best;
  }

  /**
   * GPTQ v1, 4 bits, symmetric: per output row and group of {@link #GROUP} inputs a scale of
   * twice the largest magnitude over 15 and the zero point 8 (stored as 7); the integers packed
   * eight to an int32 along the inputs, the zero points along the outputs.
   */
  private static void gptq(TensorView weight, List<TensorView> out, double[] values) {
    int rows = (int) weight.dim(0);
    int columns = (int) weight.dim(1);
    int groups = (columns + GROUP - 1) / GROUP;
    String prefix = weight.name().substring(0, weight.name().length() - "weight".length());
    MemorySegment qweight = ARENA.allocate(4L * (columns / 8) * rows);
    MemorySegment qzeros = ARENA.allocate(4L * groups * (rows / 8));
    MemorySegment scales = ARENA.allocate(2L * groups * rows);
    MemorySegment gIdx = ARENA.allocate(4L * columns);
    for (int c = 0; c < columns; c++) {
      gIdx.setAtIndex(INT, c, c / GROUP);
    }
    for (int g = 0; g < groups; g++) {
      for (int r = 0; r < rows; r++) {
        double max = 0;
        for (int c = g * GROUP; c < Math.min(columns, g * GROUP + GROUP); c++) {
          max = Math.max(max, Math.abs(weight.getFloat((long) r * columns + c)));
        }
        short half = Float.floatToFloat16(max == 0 ? 1f : (float) (2 * max / 15));
        scales.setAtIndex(SHORT, (long) g * rows + r, half);
        double scale = Float.float16ToFloat(half);
        for (int c = g * GROUP; c < Math.min(columns, g * GROUP + GROUP); c++) {
          int i = r * columns + c;
          int level = (int) Math.max(0, Math.min(15, Math.rint(weight.getFloat(i) / scale) + 8));
          long word = (long) (c / 8) * rows + r;
          qweight.setAtIndex(INT, word, qweight.getAtIndex(INT, word) | level << (4 * (c % 8)));
          values[i] = (level - 8) * scale;
        }
        long zeroWord = (long) g * (rows / 8) + r / 8;
        qzeros.setAtIndex(INT, zeroWord, qzeros.getAtIndex(INT, zeroWord) | 7 << (4 * (r % 8)));
      }
    }
    out.add(TensorView.of(prefix + "qweight", DType.I32, new long[] {columns / 8, rows}, qweight));
    out.add(TensorView.of(prefix + "qzeros", DType.I32, new long[] {groups, rows / 8}, qzeros));
    out.add(TensorView.of(prefix + "scales", DType.F16, new long[] {groups, rows}, scales));
    out.add(TensorView.of(prefix + "g_idx", DType.I32, new long[] {columns}, gIdx));
  }
}
