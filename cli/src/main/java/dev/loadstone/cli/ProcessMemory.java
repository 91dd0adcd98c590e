package dev.loadstone.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * This process's memory as Linux reports it in {@code /proc/self/status}: resident anonymous
 * memory (heap, off-heap buffers), resident file pages (mappings) and the peak resident set; and
 * the machine's page cache ({@code /proc/meminfo}).
 * Every value is 0 where the file does not exist.
 */
final class ProcessMemory {
  private static final Path STATUS = Path.of("/proc/self/status");

  private ProcessMemory() {}

  /** Resident anonymous memory in bytes ({@code RssAnon}). */
  static long anonymous() {
    return field("RssAnon:");
  }

  /** Resident file-backed memory in bytes ({@code RssFile}). */
  static long fileBacked() {
    return field("RssFile:");
  }

  /** The peak resident set size in bytes ({@code VmHWM}). */
  static long peakResident() {
    return field("VmHWM:");
  }

  /**
   * Resets {@link #peakResident()} to the current resident set (Linux 4.0+: writing 5 to
   * {@code /proc/self/clear_refs}); does nothing where that is not possible.
   */
  static void resetPeakResident() {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
    } catch (IOException | RuntimeException e) {
      // the peak then also covers what came before
    }
  }

  /** The machine's page cache in bytes ({@code Cached} in {@code /proc/meminfo}). */
  static long pageCache() {
    return field(Path.of("/proc/meminfo"), "Cached:");
  }

  private static long field(String name) {
    return field(STATUS, name);
  }

  private static long field(Path file, String name) {
    try {
      for (String line : Files.readAllLines(file)) {
        if (line.startsWith(name)) {
          String[] parts = line.substring(name.length()).trim().split("\\s+");
          return Long.parseLong(parts[0]) * 1024;
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux, or an unexpected format: report nothing rather than fail a benchmark
    }
    return 0;
  }

  /** Samples {@link #anonymous()} on a daemon thread and keeps the largest value seen. */
  static final class PeakSampler implements AutoCloseable {
    private final Thread thread;
    private volatile boolean running = true;
    private volatile long peak;

    /** Starts sampling; the peak resident set counts from here (what came before does not). */
    PeakSampler() {
      resetPeakResident();
      peak = anonymous();
      thread = Thread.ofPlatform().daemon().name("loadstone-memory-sampler").start(this::sample);
    }

    private boolean paused;
    private long peakResident;

    private void sample() {
      while (running) {
        record();
        try {
          Thread.sleep(2);
        } catch (InterruptedException e) {
          return;
        }
      }
    }

    private synchronized void record() {
      if (!paused) {
        long now = anonymous();
        peak = Math.max(peak, now);
        runPeak = Math.max(runPeak, now);
      }
    }

    /**
     * Runs {@code work} without sampling, for memory that must not count (a baseline's
     * buffers); it must free what it allocates before returning.
     */
    <T> T excluding(java.util.function.Supplier<T> work) {
      synchronized (this) {
        record();
        peakResident = Math.max(peakResident, peakResident());
        paused = true;
      }
      try {
        return work.get();
      } finally {
        synchronized (this) {
          resetPeakResident();
          paused = false;
        }
      }
    }

    private long runPeak;

    /**
     * Starts a run of its own: from here {@link #runPeak()} is the largest anonymous memory seen
     * until the next call, beside the overall {@link #peak()}.
     *
     * @return the anonymous memory now, the run's baseline
     */
    synchronized long startRun() {
      long now = anonymous();
      runPeak = now;
      return now;
    }

    /** The largest anonymous resident memory since {@link #startRun()}, outside {@link #excluding} work. */
    synchronized long runPeak() {
      record();
      return runPeak;
    }

    /** The largest anonymous resident memory seen so far, outside {@link #excluding} work. */
    synchronized long peak() {
      record();
      return peak;
    }

    /** The peak resident set ({@code VmHWM}) seen so far, outside {@link #excluding} work. */
    synchronized long peakResidentSet() {
      return Math.max(peakResident, peakResident());
    }

    @Override
    public void close() {
      running = false;
      thread.interrupt();
      try {
        thread.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
