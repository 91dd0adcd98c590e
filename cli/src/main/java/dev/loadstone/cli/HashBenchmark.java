package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.FileHashes;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.VarStore;
import java.io.IOException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Map;

/**
 * {@code bench --sha256}: Loadstone's SHA-256 of a checkpoint's files against the JDK's own
 * digest, in the same process, and a COPY load that hashes against the same load that does not.
 *
 * <ul>
 *   <li>{@code jdk_sha256_gbps}: {@link MessageDigest} on one thread over a heap array of
 *       {@value #JDK_BUFFER_BYTES} bytes that stays in the cache, touched first: the speed the
 *       JDK hashes at, the baseline;
 *   <li>{@code sha256_gbps_per_thread}: {@link FileHashes#sha256} of the checkpoint's files
 *       (page cache warm), its bytes per second divided by the threads it could use (one per
 *       file, at most {@code --threads}), measured in turns with the JDK's ({@value #ROUNDS}
 *       rounds; {@code sha256_to_jdk} is the median of the rounds' ratios);
 *   <li>{@code load_seconds} and {@code load_sha256_seconds}: medians of COPY loads into the
 *       same variables without and with {@link LoadOptions#withSha256}, taken in turns.
 * </ul>
 */
final class HashBenchmark {
  private HashBenchmark() {}

  static final int JDK_BUFFER_BYTES = 1 << 20;
  /** Rounds of the JDK's hash and the files', in turns. */
  private static final int ROUNDS = 5;
  /** Bytes the JDK baseline hashes per measurement. */
  private static final long JDK_BYTES = 512L << 20;

  /**
   * The figures.
   *
   * @param threadsUsed the threads the file hashing could use: min(threads, files)
   * @param ratio Loadstone's hashing per thread over the JDK's single-thread speed: the median
   *     of the rounds' ratios, each round measuring both in turn
   */
  record Result(double jdkSha256Gbps, double sha256Gbps, int threadsUsed, double sha256GbpsPerThread,
      double ratio, double loadSeconds, double loadSha256Seconds, long bytes) {}

  static Result run(Path path, int threads, int runs, java.io.PrintStream progress) throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(path)) {
      long bytes = 0;
      for (Path file : checkpoint.files()) {
        bytes += java.nio.file.Files.size(file);
      }
      int used = Math.min(threads, checkpoint.files().size());
      // In turns, so that both see the same machine (other processes come and go).
      double[] jdk = new double[ROUNDS];
      double[] hashGbps = new double[ROUNDS];
      double[] ratios = new double[ROUNDS];
      for (int i = 0; i < ROUNDS; i++) {
        progress.printf("sha256: the JDK's and the files', round %d of %d%n", i + 1, ROUNDS);
        jdk[i] = jdkGbps();
        long start = System.nanoTime();
        FileHashes.sha256(checkpoint, Map.of(), threads);
        hashGbps[i] = bytes / ((System.nanoTime() - start) / 1e9) / 1e9;
        ratios[i] = hashGbps[i] / used / jdk[i];
      }
      LoadOptions plain = LoadOptions.defaults().withThreads(threads);
      double[] load = new double[runs];
      double[] hashed = new double[runs];
      try (VarStore store = VarStore.fromCheckpoint(checkpoint, plain)) {
        for (int run = 0; run < runs; run++) {
          progress.printf("load without and with sha256, run %d of %d%n", run + 1, runs);
          load[run] = timedLoad(store, checkpoint, plain);
          hashed[run] = timedLoad(store, checkpoint, plain.withSha256(true));
        }
      }
      double median = LoadBenchmark.median(hashGbps);
      return new Result(LoadBenchmark.median(jdk), median, used, median / used, LoadBenchmark.median(ratios),
          LoadBenchmark.median(load), LoadBenchmark.median(hashed), bytes);
    }
  }

  private static double timedLoad(VarStore store, Checkpoint checkpoint, LoadOptions options) throws IOException {
    long start = System.nanoTime();
    LoadReport report = store.load(checkpoint, options);
    double seconds = (System.nanoTime() - start) / 1e9;
    LoadBenchmark.requireComplete(report);
    if (options.sha256() && report.sha256().size() != checkpoint.files().size()) {
      throw new IllegalStateException("the hashing load hashed " + report.sha256().size() + " files");
    }
    return seconds;
  }

  /** The JDK's SHA-256 on one thread over a touched heap array that stays in the cache. */
  private static double jdkGbps() {
    byte[] buffer = new byte[JDK_BUFFER_BYTES];
    new java.util.Random(1).nextBytes(buffer);
    MessageDigest digest;
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    for (int warm = 0; warm < 32; warm++) {
      digest.update(buffer);
    }
    digest.digest();
    long start = System.nanoTime();
    for (long done = 0; done < JDK_BYTES; done += buffer.length) {
      digest.update(buffer);
    }
    digest.digest();
    return JDK_BYTES / ((System.nanoTime() - start) / 1e9) / 1e9;
  }
}
