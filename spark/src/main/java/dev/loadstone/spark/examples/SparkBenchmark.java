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
 * model and generates the same prompts one after another. Each uses the machine's cores its own
 * way: the plain loop one generation at a time on a model of {@code threads} threads; Spark two
 * tasks at a time (its {@code local[2]} slots) on the one shared model of {@code taskThreads}
 * threads (1 by default: a model of one thread runs the tasks' passes side by side, where a
 * team of threads would run them one at a time). The session starts once, before the rounds (not timed); a warm-up of each
 * precedes them (its times printed too). Rounds alternate, Spark first. Beside each wall time,
 * the JVM's CPU time over the same span (all threads, Spark's included): on a machine shared
 * with other work it moves less than the wall time.
 */
final class SparkBenchmark {
  private SparkBenchmark() {}

  static void run(String model, int partitions, int count, int tokens, int rounds, int threads, int taskThreads)
      throws IOException {
    ModelManifest plainManifest = ModelManifest.of(model).withThreads(threads);
    ModelManifest manifest = ModelManifest.of(model).withThreads(taskThreads);
    List<String> prompts = SparkDemo.prompts(count);
    String master = "local[2]";
    System.out.printf(Locale.ROOT, "%d prompts, %d new tokens each (greedy, stopping at end of sequence); plain loop:"
        + " model threads %d; Spark %s with %d partitions, model threads %d; %d cores seen by the JVM%n", count, tokens,
        threads, master, partitions, taskThreads, Runtime.getRuntime().availableProcessors());
    try (SparkSession spark = SparkDemo.session(master)) {
      List<String> reference = plain(plainManifest, prompts, tokens);
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
        List<String> viaLoop = plain(plainManifest, prompts, tokens);
        double plainSeconds = (System.nanoTime() - start) / 1e9;
        double plainCpu = (cpuNanos() - cpu) / 1e9;
        start = System.nanoTime();
        List<String> viaThreads = plainSideBySide(manifest, prompts, tokens, 2);
        double sideBySideSeconds = (System.nanoTime() - start) / 1e9;
        boolean same = viaSpark.equals(reference) && viaLoop.equals(reference) && viaThreads.equals(reference);
        System.out.printf(Locale.ROOT, "%s: spark %.3f s (%d load, %.2f CPU s), plain %.3f s (%.2f CPU s), ratio %.3f (CPU %.3f);"
            + " plain on 2 threads side by side %.3f s, ratio %.3f; outputs equal: %s%n", round == 0 ? "warm-up" : "round " + round,
            sparkSeconds, loads, sparkCpu, plainSeconds, plainCpu, sparkSeconds / plainSeconds, sparkCpu / plainCpu,
            sideBySideSeconds, sparkSeconds / sideBySideSeconds, same);
        if (round > 0) {
          times.add(new double[] {sparkSeconds, plainSeconds, sideBySideSeconds});
        }
      }
      StringBuilder ratios = new StringBuilder();
      StringBuilder sideBySide = new StringBuilder();
      for (double[] t : times) {
        ratios.append(ratios.isEmpty() ? "" : ", ").append(String.format(Locale.ROOT, "%.3f", t[0] / t[1]));
        sideBySide.append(sideBySide.isEmpty() ? "" : ", ").append(String.format(Locale.ROOT, "%.3f", t[0] / t[2]));
      }
      System.out.println("ratios (spark / plain) of the rounds: " + ratios);
      System.out.println("ratios (spark / plain side by side) of the rounds: " + sideBySide);
    }
  }

  /** The CPU time of this JVM, all threads (Spark's own included). */
  private static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  /**
   * The model loaded, then the prompts generated by {@code workers} threads of this JVM side by
   * side, each taking the next prompt, as Spark's task slots do (without Spark); the model closed
   * after.
   */
  private static List<String> plainSideBySide(ModelManifest manifest, List<String> prompts, int tokens, int workers)
      throws IOException {
    try (FortuneGeneration.Fortune fortune = FortuneGeneration.load(manifest)) {
      String[] out = new String[prompts.size()];
      java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
      java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
      Thread[] threads = new Thread[workers];
      for (int w = 0; w < workers; w++) {
        threads[w] = Thread.ofPlatform().start(() -> {
          try {
            for (int i; (i = next.getAndIncrement()) < prompts.size(); ) {
              out[i] = FortuneGeneration.complete(fortune, prompts.get(i), tokens);
            }
          } catch (Throwable t) {
            failure.compareAndSet(null, t);
          }
        });
      }
      for (Thread thread : threads) {
        try {
          thread.join();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new java.io.InterruptedIOException("interrupted");
        }
      }
      if (failure.get() != null) {
        throw new IOException("a generation failed: " + failure.get(), failure.get());
      }
      return List.of(out);
    }
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
