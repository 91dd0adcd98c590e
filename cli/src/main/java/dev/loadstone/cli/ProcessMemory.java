package dev.loadstone.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * This process's memory as Linux reports it in {@code /proc/self/status}: resident anonymous
 * memory (heap, off-heap buffers), resident file pages (mappings) and the peak resident set.
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

  private static long field(String name) {
    try {
      for (String line : Files.readAllLines(STATUS)) {
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

    PeakSampler() {
      peak = anonymous();
      thread = Thread.ofPlatform().daemon().name("loadstone-memory-sampler").start(this::sample);
    }

    private void sample() {
      while (running) {
        peak = Math.max(peak, anonymous());
        try {
          Thread.sleep(2);
        } catch (InterruptedException e) {
          return;
        }
      }
    }

    /** The largest anonymous resident memory seen so far. */
    long peak() {
      return Math.max(peak, anonymous());
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
