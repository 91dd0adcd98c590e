package dev.loadstone.spark.examples;

import dev.loadstone.spark.LoadstonePlugin;
import dev.loadstone.spark.ModelManifest;
import dev.loadstone.spark.ModelRegistry;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.PartitionRules;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.SparkSession;

/**
 * The example jobs in Spark local mode ({@code ./loadstone spark-demo}, see docs/spark.md):
 *
 * <pre>
 * spark-demo generate [--model DIR] [--master local[2]] [--partitions 16] [--prompts 32] [--tokens 24]
 * spark-demo ranks    [--model DIR] [--world 2]
 * spark-demo bench    [--model DIR] [--partitions 64] [--prompts 128] [--tokens 48] [--rounds 3] [--threads 2] [--task-threads 1]
 * </pre>
 *
 * <p>{@code generate} runs batch generation with the fortune model; {@code ranks} runs the
 * barrier stage (one task per rank, each loading its slice) and checks on the driver that the
 * slices tile every tensor; {@code bench} times the generation job against the same
 * generations in a plain loop in this JVM, alternating, and prints every round.
 */
public final class SparkDemo {
  private static final String[] SEEDS = {
      "The meaning of life", "A man walks into", "Never", "You will", "Love is", "The best way to",
      "If you", "A friend", "Today", "Money", "In the end", "Beware of", "Happiness", "Time",
      "The secret of", "Work"};

  private SparkDemo() {}

  /** Runs one of the example jobs; see the class description. */
  public static void main(String[] args) throws Exception {
    if (args.length == 0 || args[0].equals("help") || args[0].equals("--help")) {
      System.out.println("usage: spark-demo generate|ranks|bench [--model DIR] [--master M] [--partitions N]"
          + " [--prompts N] [--tokens N] [--world N] [--rounds N] [--threads N] [--task-threads N]");
      return;
    }
    Map<String, String> options = options(args);
    String home = System.getProperty("loadstone.home", ".");
    String model = options.getOrDefault("--model", Path.of(home, "examples", "fortune-llama").toString());
    if (!Files.isDirectory(Path.of(model))) {
      throw new IllegalArgumentException("--model: no model directory at " + model);
    }
    switch (args[0]) {
      case "generate" -> generate(model, options);
      case "ranks" -> ranks(model, options);
      case "bench" -> SparkBenchmark.run(model, integer(options, "--partitions", 64), integer(options, "--prompts", 128),
          integer(options, "--tokens", 48), integer(options, "--rounds", 3), integer(options, "--threads", 2),
          integer(options, "--task-threads", 1));
      default -> throw new IllegalArgumentException("unknown command '" + args[0] + "': generate, ranks or bench");
    }
  }

  private static void generate(String model, Map<String, String> options) throws Exception {
    int partitions = integer(options, "--partitions", 16);
    int count = integer(options, "--prompts", 32);
    int tokens = integer(options, "--tokens", 24);
    String master = options.getOrDefault("--master", "local[2]");
    // One model thread per task: the executor's task slots run their passes side by side.
    ModelManifest manifest = ModelManifest.of(model).withThreads(integer(options, "--threads", 1));
    try (SparkSession spark = session(master)) {
      List<String> prompts = prompts(count);
      long start = System.nanoTime();
      List<String> out = FortuneGeneration.generate(dataset(spark, prompts, partitions), manifest, tokens).collectAsList();
      double seconds = (System.nanoTime() - start) / 1e9;
      for (int i = 0; i < prompts.size(); i++) {
        System.out.println(prompts.get(i) + " |" + out.get(i).replace('\n', ' '));
      }
      System.out.printf(Locale.ROOT, "%d prompts, %d partitions on %s: %.2f s, %d load(s) of %s in this JVM%n",
          prompts.size(), partitions, master, seconds,
          ModelRegistry.shared().loadCount(manifest, FortuneGeneration.loader()), manifest);
    }
  }

  private static void ranks(String model, Map<String, String> options) throws Exception {
    int world = integer(options, "--world", 2);
    ModelManifest manifest = ModelManifest.of(model).withMode(LoadMode.COPY).withThreads(1)
        .withPartition(PartitionRules.llama(8, 4, 32));
    try (SparkSession spark = session(options.getOrDefault("--master", "local[" + Math.max(2, world) + "]"))) {
      List<RankSlices.RankResult> ranks = RankSlices.run(spark, manifest, world);
      for (RankSlices.RankResult rank : ranks) {
        System.out.printf(Locale.ROOT, "rank %d of %d: %d tensors (%d sliced), %d bytes%n", rank.rank(), rank.world(),
            rank.checksums().size(), rank.sliced().size(), rank.bytes());
      }
      List<String> problems = RankSlices.mismatches(ranks, RankSlices.wholeChecksums(manifest));
      if (problems.isEmpty()) {
        System.out.println("the " + world + " ranks' slices tile every tensor (checksums equal the whole tensors')");
      } else {
        problems.forEach(System.out::println);
        System.exit(1);
      }
    }
  }

  /** A local-mode session with the plugin that closes models when the executor stops. */
  static SparkSession session(String master) {
    SparkSession spark = SparkSession.builder().master(master).appName("loadstone-spark-demo")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.plugins", LoadstonePlugin.class.getName())
        .getOrCreate();
    spark.sparkContext().setLogLevel("WARN");
    return spark;
  }

  /** {@code prompts} in {@code partitions} partitions, in order. */
  static Dataset<String> dataset(SparkSession spark, List<String> prompts, int partitions) {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    return spark.createDataset(jsc.parallelize(prompts, partitions).rdd(), Encoders.STRING());
  }

  /** {@code count} prompts: the seeds in turn. */
  static List<String> prompts(int count) {
    List<String> prompts = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      prompts.add(SEEDS[i % SEEDS.length]);
    }
    return prompts;
  }

  private static Map<String, String> options(String[] args) {
    Map<String, String> options = new HashMap<>();
    for (int i = 1; i < args.length; i++) {
      if (!args[i].startsWith("--") || i + 1 == args.length) {
        throw new IllegalArgumentException("options are --name VALUE pairs; '" + args[i] + "' is not one");
      }
      options.put(args[i], args[++i]);
    }
    return options;
  }

  private static int integer(Map<String, String> options, String name, int fallback) {
    String value = options.get(name);
    if (value == null) {
      return fallback;
    }
    try {
      int parsed = Integer.parseInt(value);
      if (parsed >= 1) {
        return parsed;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new IllegalArgumentException(name + " needs a whole number of at least 1, not '" + value + "'");
  }
}
