package dev.loadstone.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.internal.Posix;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A dequantizing COPY load leaves the stored weight's file pages out of the process, as a plain
 * copy does: resident memory holds the variables, not the variables and the packed bytes.
 */
class DequantizedPagesTest {
  private static final int ROWS = 1024;
  private static final int COLUMNS = 8192;   // 8 MiB of FP8
  private static final int BLOCK = 128;

  @TempDir Path dir;

  private Path fp8Checkpoint() throws IOException {
    byte[] weight = new byte[ROWS * COLUMNS];
    Random random = new Random(7);
    for (int i = 0; i < weight.length; i++) {
      weight[i] = (byte) (random.nextInt(0x7f) & 0x77);   // finite E4M3 values
    }
    float[] scales = new float[(ROWS / BLOCK) * (COLUMNS / BLOCK)];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = 0.01f + i * 1e-4f;
    }
    Path model = Files.createDirectories(dir.resolve("fp8"));
    SafeTensorsWriter.write(model.resolve("model.safetensors"), null, List.of(
        TensorView.of("model.layers.0.mlp.down_proj.weight", DType.F8_E4M3, new long[] {ROWS, COLUMNS},
            MemorySegment.ofArray(weight)),
        TensorView.of("model.layers.0.mlp.down_proj.weight_scale_inv", DType.F32,
            new long[] {ROWS / BLOCK, COLUMNS / BLOCK}, MemorySegment.ofArray(scales))));
    Files.writeString(model.resolve("config.json"), """
        {"model_type": "llama", "torch_dtype": "bfloat16",
         "quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic", "fmt": "e4m3",
                                 "weight_block_size": [128, 128]}}
        """);
    return model;
  }

  /** The resident bytes of the process's mappings of {@code file} (/proc/self/smaps). */
  private static long residentBytesOf(Path file) throws IOException {
    String name = file.toRealPath().toString();
    long resident = 0;
    boolean inFile = false;
    for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
      if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {   // a mapping's first line ends with its file
        inFile = line.endsWith(" " + name);
      } else if (inFile && line.startsWith("Rss:")) {
        resident += Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
      }
    }
    return resident;
  }

  private long residentAfterLoad(Path model, boolean release) throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(model);
         VarStore store = VarStore.fromCheckpoint(checkpoint,
             LoadOptions.defaults().withThreads(2).withReleaseMappedPages(release))) {
      Variable weight = store.variable("model.layers.0.mlp.down_proj.weight");
      assertEquals(DType.BF16, weight.dtype());
      assertArrayEquals(new long[] {ROWS, COLUMNS}, weight.shape());
      return residentBytesOf(model.resolve("model.safetensors"));
    }
  }

  @Test
  void theStoredRowsLeaveTheProcessOnceDequantized() throws IOException {
    assumeTrue(Posix.isLinux() && Files.isReadable(Path.of("/proc/self/smaps")));
    Path model = fp8Checkpoint();
    long stored = (long) ROWS * COLUMNS;
    long kept = residentAfterLoad(model, false);
    assumeTrue(kept > stored / 2, "the stored rows were never resident here: " + kept);
    long released = residentAfterLoad(model, true);
    // Most, not all: here one huge page's worth (2 MiB) of the 8 MiB usually stays mapped.
    assertTrue(released <= stored / 2, "resident after a releasing load: " + released + " of the "
        + stored + " stored bytes (" + kept + " when pages are kept)");
  }
}
