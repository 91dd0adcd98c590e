package dev.loadstone.spark.examples;

import dev.loadstone.spark.ModelManifest;
import dev.loadstone.spark.ModelRegistry;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.SparkSession;

/**
 * The generation job in local mode against the same generations in a plain loop in this JVM.
 * Each round of either starts with no model loaded (the registry's models are closed first) and
 * ends with every completion in hand: the Spark round is one job ({@code partitions} tasks over
 * the local executor's threads, one model load through the registry), the plain round loads the
 * model and generates the same prompts one after another. Both run the model on the same
 * number of threads. The session starts once, before the rounds (not timed); a warm-up of each
 * precedes them (its times printed too). Rounds alternate, Spark first. Beside each wall time,
 * the JVM's CPU time over the same span (all threads, Spark's included): on a machine shared
 * with other work it moves less than the wall time.
 */
final class SparkBenchmark {
  private SparkBenchmark() {}

  static void run(String model, int partitions, int count, int tokens, int rounds, int threads) throws IOException {
    ModelManifest manifest = ModelManifest.of(model).withThreads(threads);
    List<String> prompts = SparkDemo.prompts(count);
    String master = "local[2]";
    System.out.printf(Locale.ROOT, "%d prompts, %d new tokens each (greedy, stopping at end of sequence), model threads %d;"
        + " Spark %s with %d partitions; %d cores seen by the JVM%n", count, tokens, threads, master, partitions,
        Runtime.getRuntime().availableProcessors());
    try (SparkSession spark = SparkDemo.session(master)) {
      List<String> reference = plain(manifest, prompts, tokens);
      List<double[]> times = new ArrayList<>();
      for (int round = 0; round <= rounds; round++) {
        ModelRegistry.shared().closeAll();
        int loadsBefore = ModelRegistry.shared().loadCount(manifest, FortuneGeneration.loader());
        long cpu = cpuNanos();
        long start = System.nanoTime();
        List<String> viaSpark = FortuneGeneration.generate(SparkDemo.dataset(spark, prompts, partitions), manifest, tokens)
            .collectAsList();
        double sparkSeconds = (System.nanoTime() - start) / 1e9;
        double sparkCpu = (cpuNanos() - cpu) / 1e9;
        int loads = ModelRegistry.shared().loadCount(manifest, FortuneGeneration.loader()) - loadsBefore;
        ModelRegistry.shared().closeAll();
        cpu = cpuNanos();
        start = System.nanoTime();
        List<String> viaLoop = plain(manifest, prompts, tokens);
        double plainSeconds = (System.nanoTime() - start) / 1e9;
        double plainCpu = (cpuNanos() - cpu) / 1e9;
        boolean same = viaSpark.equals(reference) && viaLoop.equals(reference);
        System.out.printf(Locale.ROOT, "%s: spark %.3f s (%d load, %.2f CPU s), plain %.3f s (%.2f CPU s), ratio %.3f (CPU %.3f),"
            + " outputs equal: %s%n", round == 0 ? "warm-up" : "round " + round, sparkSeconds, loads, sparkCpu, plainSeconds,
            plainCpu, sparkSeconds / plainSeconds, sparkCpu / plainCpu, same);
        if (round > 0) {
          times.add(new double[] {sparkSeconds, plainSeconds});
        }
      }
      StringBuilder ratios = new StringBuilder();
      for (double[] t : times) {
        ratios.append(ratios.isEmpty() ? "" : ", ").append(String.format(Locale.ROOT, "%.3f", t[0] / t[1]));
      }
      System.out.println("ratios (spark / plain) of the rounds: " + ratios);
    }
  }

  /** The CPU time of this JVM, all threads (Spark's own included). */
  private static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  /** The model loaded, then every prompt generated in turn, on this thread; the model closed after. */
  private static List<String> plain(ModelManifest manifest, List<String> prompts, int tokens) throws IOException {
    try (FortuneGeneration.Fortune fortune = FortuneGeneration.load(manifest)) {
      List<String> out = new ArrayList<>();
      for (String prompt : prompts) {
        out.add(FortuneGeneration.complete(fortune, prompt, tokens));
      }
      return out;
    }
  }
}
