package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.loadstone.internal.Posix;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchCommandTest {
  @TempDir Path dir;

  /** A 3 MiB BF16 checkpoint of two tensors plus an integer one. */
  private Path checkpoint() throws IOException {
    Path file = dir.resolve("model.safetensors");
    Arena arena = Arena.ofAuto();
    MemorySegment big = arena.allocate(3L << 20);
    big.fill((byte) 0x3c);
    SafeTensorsWriter.write(file, Map.of("format", "pt"), List.of(
        TensorView.of("model.w", DType.BF16, new long[] {1024, 1536}, big),
        TensorView.of("model.n", DType.BF16, new long[] {64}, arena.allocate(128)),
        TensorView.of("model.ids", DType.I32, new long[] {4}, arena.allocate(16))));
    return file;
  }

  /**
   * The numbers and arrays of a flat JSON object; arrays as their length. Array entries are
   * non-negative, except the page cache's growth: a delta of the whole machine's {@code Cached},
   * which goes down when the kernel drops other files during a run.
   */
  private static Map<String, Double> fields(String json) throws IOException {
    Map<String, Double> fields = new HashMap<>();
    try (JsonParser parser = new JsonFactory().createParser(json)) {
      assertEquals(JsonToken.START_OBJECT, parser.nextToken());
      while (parser.nextToken() == JsonToken.FIELD_NAME) {
        String name = parser.currentName();
        JsonToken value = parser.nextToken();
        if (value == JsonToken.START_ARRAY) {
          int count = 0;
          while (parser.nextToken() != JsonToken.END_ARRAY) {
            assertTrue(name.equals("page_cache_growth_bytes") || parser.getDoubleValue() >= 0, name);
            count++;
          }
          fields.put(name, (double) count);
        } else if (value.isNumeric()) {
          fields.put(name, parser.getDoubleValue());
        }
      }
    }
    return fields;
  }

  @Test
  void copyBenchmarkReportsBytesSpeedsAndMemoryAsJson() throws IOException {
    Path file = checkpoint();
    Cli.Result result = Cli.run("bench", file.toString(), "--dtype", "F32", "--runs", "3", "--threads", "2", "--json");
    assertEquals(0, result.exit(), result.err());
    Map<String, Double> json = fields(result.out());
    long bytes = (3L << 20) + 128 + 16;
    assertEquals(bytes, json.get("bytes").longValue());
    assertEquals(2 * ((3L << 20) + 128) + 16, json.get("bytes_written").longValue(), "BF16 widened to F32");
    assertEquals(3, json.get("runs_seconds").intValue());
    assertEquals(3, json.get("alloc_seconds").intValue());
    assertTrue(json.get("median_gbps") > 0);
    assertTrue(json.get("memcpy_gbps") > 0);
    double resident = json.get("resident_fraction");
    assertTrue(resident >= 0 && resident <= 1, "a fraction: " + resident);
    double huge = json.get("huge_page_fraction");
    assertTrue(huge >= 0 && huge <= 1, "a fraction: " + huge);
    assertTrue(json.get("peak_anon_bytes") >= json.get("baseline_anon_bytes"));
    assertTrue(json.get("peak_rss_bytes") > 0);
  }

  @Test
  void theReportSaysWhichNativeCallsTheProcessDidWithout() throws IOException {
    // As core does the first time a call fails (madvise refused, a routine the CPU cannot run).
    Posix.reportFallback("madvise(MADV_TEST)", "errno 22 (EINVAL)");
    Path file = checkpoint();
    Cli.Result json = Cli.run("bench", file.toString(), "--runs", "1", "--json");
    assertEquals(0, json.exit(), json.err());
    assertTrue(json.out().contains("\"fallbacks\":{") && json.out().contains("\"madvise(MADV_TEST)\":\"errno 22 (EINVAL)\""),
        json.out());
    Cli.Result text = Cli.run("bench", file.toString(), "--runs", "1");
    assertTrue(text.out().contains("without madvise(MADV_TEST): errno 22 (EINVAL)"), text.out());
  }

  @Test
  void evictDropsTheFileFromThePageCacheAndTheReadThroughBringsItBack() throws IOException {
    Path file = checkpoint();
    Cli.Result result = Cli.run("bench", file.toString(), "--evict", "--runs", "1", "--json");
    assertEquals(0, result.exit(), result.err());
    assertEquals(1.0, fields(result.out()).get("resident_fraction"), 1e-9, "read back in after the eviction");
  }

  @Test
  void torchBackendLoadsIntoLibtorchTensorsWithTheSameReport() throws IOException {
    Path file = checkpoint();
    Cli.Result result = Cli.run("bench", file.toString(), "--backend", "torch", "--dtype", "F32",
        "--runs", "2", "--threads", "2", "--json");
    assertEquals(0, result.exit(), result.err());
    assertTrue(result.out().contains("\"backend\":\"torch\""), result.out());
    Map<String, Double> json = fields(result.out());
    assertEquals(2 * ((3L << 20) + 128) + 16, json.get("bytes_written").longValue(), "BF16 widened to F32");
    assertEquals(2, json.get("runs_seconds").intValue());
    assertEquals(2, json.get("alloc_seconds").intValue());
    assertTrue(json.get("median_gbps") > 0);
    assertTrue(json.get("memcpy_gbps") > 0);
    assertTrue(json.get("peak_anon_bytes") >= json.get("baseline_anon_bytes"));
  }

  @Test
  void aliasBenchmarkWritesNothing() throws IOException {
    Path file = checkpoint();
    Cli.Result result = Cli.run("bench", file.toString(), "--mode", "alias", "--runs", "2", "--json");
    assertEquals(0, result.exit(), result.err());
    Map<String, Double> json = fields(result.out());
    assertEquals(0, json.get("bytes_written").longValue());
    assertTrue(json.get("median_gbps") > 0);
  }

  @Test
  void textReportComparesTheLoadWithMemcpyAndTheNaiveWay() throws IOException {
    Cli.Result result = Cli.run("bench", checkpoint().toString(), "--runs", "1", "--naive");
    assertEquals(0, result.exit(), result.err());
    assertTrue(result.out().contains("load / memcpy:"), result.out());
    assertTrue(result.out().contains("naive (heap read, then copy"), result.out());
  }

  @Test
  void coldBenchmarkDropsTheFilesAndMeasuresTheStorageBesideTheLoad() throws IOException {
    Path file = checkpoint();
    for (String read : List.of("auto", "direct", "mapped")) {
      Cli.Result result = Cli.run("bench", file.toString(), "--cold", "--read", read, "--runs", "2", "--json");
      assertEquals(0, result.exit(), result.err());
      Map<String, Double> json = fields(result.out());
      assertTrue(json.get("storage_gbps") > 0, read);
      assertEquals(2, json.get("storage_runs_gbps").intValue());
      assertTrue(json.get("load_to_storage") > 0, read);
      assertEquals(2, json.get("cold_resident_fractions").intValue());
      assertEquals(2, json.get("page_cache_growth_bytes").intValue());
      assertTrue(json.get("run_peak_anon_ratio") > 0, read);
      assertTrue(result.out().contains("\"read\":\"" + read + "\""), result.out());
    }
    Cli.Result text = Cli.run("bench", file.toString(), "--cold", "--runs", "1");
    assertTrue(text.out().contains("load / storage:"), text.out());
  }

  @Test
  void anAliasBenchmarkCanPrefetch() throws IOException {
    Cli.Result result = Cli.run("bench", checkpoint().toString(), "--mode", "alias", "--prefetch", "--cold",
        "--runs", "1", "--json");
    assertEquals(0, result.exit(), result.err());
    assertTrue(fields(result.out()).get("median_gbps") > 0);
  }

  @Test
  void badOptionsAreUsageErrors() throws IOException {
    assertEquals(2, Cli.run("bench", checkpoint().toString(), "--read", "sideways").exit());
    assertEquals(2, Cli.run("bench", checkpoint().toString(), "--prefetch").exit(), "prefetch is for ALIAS");
    Path file = checkpoint();
    assertEquals(2, Cli.run("bench", file.toString(), "--mode", "alias", "--dtype", "F32").exit());
    assertEquals(2, Cli.run("bench", file.toString(), "--runs", "0").exit());
    assertEquals(2, Cli.run("bench", file.toString(), "--dtype", "F8").exit());
    assertEquals(2, Cli.run("bench", file.toString(), "--backend", "onnx").exit());
    assertEquals(2, Cli.run("bench", file.toString(), "--backend", "torch", "--mode", "alias").exit());
    assertEquals(2, Cli.run("bench", dir.resolve("missing").toString()).exit());
    assertEquals(2, Cli.run("bench", file.toString(), "--scheme", "fp8").exit(), "--scheme is for --synthetic");
    assertEquals(2, Cli.run("bench", dir.resolve("synthetic").toString(), "--synthetic", "--scheme", "nf4").exit());
  }

  @Test
  void aQuantizedCheckpointIsDequantizedIntoVariablesOfItsLogicalShape() throws IOException {
    Path fixture = Cli.repoRoot().resolve("core/src/test/resources/dev/loadstone/quantization/fp8-block");
    Cli.Result result = Cli.run("bench", fixture.toString(), "--runs", "1", "--json");
    assertEquals(0, result.exit(), result.err());
    Map<String, Double> json = fields(result.out());
    // The dense model's bytes, not the stored ones: every FP8 weight becomes BF16 of its [out, in].
    try (Checkpoint checkpoint = Checkpoint.open(fixture);
        dev.loadstone.store.VarStore dense = dev.loadstone.store.VarStore.fromCheckpoint(checkpoint,
            dev.loadstone.store.LoadOptions.defaults())) {
      assertEquals(dense.byteSize(), json.get("bytes_written").longValue());
      assertTrue(dense.byteSize() > checkpoint.totalSize(), "FP8 weights take twice as many bytes as BF16");
    }
  }
}
