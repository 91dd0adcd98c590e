package dev.loadstone.benchmarks;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.HubCache;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What resolving a Hugging Face model id costs {@code Checkpoint.open}: opening a checkpoint by
 * id in a cache laid out as the hub lays it out (refs/main, a snapshot link into blobs/) against
 * opening the same snapshot folder by path. Score: microseconds per open + close. {@code -p
 * model=PATH} opens another checkpoint file (default: the example model).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class HubCacheBenchmark {
  private static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";

  /** The {@code .safetensors} file the cache holds. */
  @Param("examples/fortune-llama/model.safetensors")
  public String model;

  private Path root;
  private HubCache cache;
  private Path snapshot;

  @Setup(Level.Trial)
  public void setUp() throws IOException {
    root = Files.createTempDirectory("hub-benchmark");
    Path repo = Files.createDirectories(root.resolve("models--org--model"));
    Path blob = Files.createDirectories(repo.resolve("blobs")).resolve("b".repeat(64));
    Files.copy(Path.of(model), blob);
    snapshot = Files.createDirectories(repo.resolve("snapshots").resolve(COMMIT));
    Files.createSymbolicLink(snapshot.resolve(Checkpoint.SINGLE_FILE_NAME), Path.of("../../blobs").resolve(blob.getFileName()));
    Files.createDirectories(repo.resolve("refs"));
    Files.writeString(repo.resolve("refs/main"), COMMIT);
    cache = HubCache.at(root);
  }

  @TearDown(Level.Trial)
  public void tearDown() throws IOException {
    try (Stream<Path> files = Files.walk(root)) {
      for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(file);
      }
    }
  }

  /** The snapshot folder by path: the baseline. */
  @Benchmark
  public int openByPath() throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(snapshot)) {
      return checkpoint.tensors().size();
    }
  }

  /** The same checkpoint by model id: refs/main read, snapshot and link checked. */
  @Benchmark
  public int openById() throws IOException {
    try (Checkpoint checkpoint = cache.open("org/model")) {
      return checkpoint.tensors().size();
    }
  }
}
