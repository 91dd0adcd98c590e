package dev.loadstone.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.spark.examples.FortuneGeneration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Jobs in local mode with two executor threads: one Spark session for the class. */
class SparkJobTest {
  static SparkSession spark;
  static JavaSparkContext jsc;

  @BeforeAll
  static void start() {
    spark = SparkSession.builder().master("local[2]").appName("loadstone-spark-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.plugins", LoadstonePlugin.class.getName())
        .getOrCreate();
    jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
  }

  /** The plugin closes the executor's models when the executor stops (here, with the context). */
  @AfterAll
  static void stop() throws Exception {
    LoadedCheckpoint model;
    try (ModelRegistry.Handle<LoadedCheckpoint> handle = ModelRegistry.shared().acquire(
        ModelManifest.of(ModelRegistryTest.FORTUNE.toString()).withRevision("one-load-test"), ModelLoader.checkpoint())) {
      model = handle.get();
    }
    assertTrue(model.store().isOpen(), "idle, still loaded");
    spark.stop();
    assertFalse(model.store().isOpen(), "closed by LoadstonePlugin when the executor stopped");
  }

  static Dataset<String> rows(List<String> values, int partitions) {
    return spark.createDataset(jsc.parallelize(values, partitions).rdd(), Encoders.STRING());
  }

  @Test
  void sixteenPartitionsLoadTheModelOncePerJvm() {
    ModelManifest manifest = ModelManifest.of(ModelRegistryTest.FORTUNE.toString()).withRevision("one-load-test");
    Broadcast<ModelManifest> shared = jsc.broadcast(manifest);
    List<String> values = new ArrayList<>();
    for (int i = 0; i < 64; i++) {
      values.add("row " + i);
    }
    // Each task reports its JVM, the loads of the key in that JVM so far, and a byte of the
    // model it read: all tasks of a JVM see the same single load.
    List<String> seen = rows(values, 16).mapPartitions((MapPartitionsFunction<String, String>) it -> {
      LoadedCheckpoint model = SparkModels.forTask(shared.value(), ModelLoader.checkpoint());
      long bytes = model.store().byteSize();
      int loads = ModelRegistry.shared().loadCount(shared.value(), ModelLoader.checkpoint());
      List<String> out = new ArrayList<>();
      while (it.hasNext()) {
        it.next();
        out.add(ProcessHandle.current().pid() + " " + loads + " " + bytes);
      }
      return out.iterator();
    }, Encoders.STRING()).collectAsList();
    assertEquals(64, seen.size());
    Set<String> distinct = new TreeSet<>(seen);
    assertEquals(Set.of(ProcessHandle.current().pid() + " 1 " + 8_968_704L), distinct,
        "one JVM (local mode), one load, every task saw the whole model");
    assertEquals(1, ModelRegistry.shared().loadCount(manifest, ModelLoader.checkpoint()));
  }

  @Test
  void batchGenerationMatchesThePlainLoopWithOneLoad() throws Exception {
    ModelManifest manifest = ModelManifest.of(ModelRegistryTest.FORTUNE.toString()).withThreads(2);
    List<String> prompts = List.of("The meaning of life", "A man walks into", "Never", "You will", "Love is",
        "Money", "Today", "Beware of", "If you", "Time", "Work", "A friend");
    List<String> viaSpark = FortuneGeneration.generate(rows(prompts, 6), manifest, 16).collectAsList();
    assertEquals(1, ModelRegistry.shared().loadCount(manifest, FortuneGeneration.loader()));
    List<String> plain = new ArrayList<>();
    try (FortuneGeneration.Fortune fortune = FortuneGeneration.load(manifest)) {
      for (String prompt : prompts) {
        plain.add(FortuneGeneration.complete(fortune, prompt, 16));
      }
    }
    assertEquals(plain, viaSpark);
    assertTrue(viaSpark.stream().allMatch(s -> !s.isEmpty()), viaSpark.toString());
  }
}
