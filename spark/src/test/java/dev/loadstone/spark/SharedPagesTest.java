package dev.loadstone.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two JVMs that alias one checkpoint share its pages: each one's proportional set size (PSS)
 * for the file's mapping is about half the mapped weights, while each one's resident set (RSS)
 * counts them whole.
 */
@EnabledOnOs(OS.LINUX)
class SharedPagesTest {
  /** Rss and Pss in bytes of a process's mappings of one file, from /proc/PID/smaps. */
  record Usage(long rss, long pss) {}

  static Usage usage(long pid, Path file) throws IOException {
    String name = file.toRealPath().toString();
    long rss = 0;
    long pss = 0;
    boolean inFile = false;
    for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "smaps"))) {
      if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
        inFile = line.endsWith(" " + name);
      } else if (inFile && line.startsWith("Rss:")) {
        rss += kilobytes(line);
      } else if (inFile && line.startsWith("Pss:")) {
        pss += kilobytes(line);
      }
    }
    return new Usage(rss * 1024, pss * 1024);
  }

  static long kilobytes(String line) {
    String[] parts = line.trim().split("\\s+");
    return Long.parseLong(parts[1]);
  }

  /** The whole process's Pss from smaps_rollup, in bytes (for the report). */
  static long rollupPss(long pid) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "smaps_rollup"))) {
      if (line.startsWith("Pss:")) {
        return kilobytes(line) * 1024;
      }
    }
    return -1;
  }

  @Test
  void twoJvmsAliasingOneCheckpointEachHoldAboutHalfItsPages(@TempDir Path dir) throws Exception {
    // A copy of its own, so that no other process on the machine maps the same file.
    Path file = dir.resolve("model.safetensors");
    Files.copy(ModelRegistryTest.FORTUNE.resolve("model.safetensors"), file);
    long size = Files.size(file);
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<Process> children = new ArrayList<>();
    try {
      for (int i = 0; i < 2; i++) {
        children.add(new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-Xmx64m",
            "-cp", System.getProperty("java.class.path"), AliasChild.class.getName(), file.toString())
            .redirectError(ProcessBuilder.Redirect.INHERIT).start());
      }
      long touched = 0;
      for (Process child : children) {
        BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
        String line = out.readLine();
        assertTrue(line != null && line.startsWith("touched "), "the child said: " + line);
        touched = Long.parseLong(line.split(" ")[1]);
      }
      assertEquals(8_968_704L, touched);
      StringBuilder report = new StringBuilder();
      List<Usage> usages = new ArrayList<>();
      for (Process child : children) {
        Usage usage = usage(child.pid(), file);
        usages.add(usage);
        report.append(String.format("pid %d: file Rss %d, file Pss %d (%.3f of %d mapped), process Pss %d; ",
            child.pid(), usage.rss(), usage.pss(), usage.pss() / (double) size, size, rollupPss(child.pid())));
      }
      System.out.println(report);
      for (Usage usage : usages) {
        assertTrue(usage.rss() >= touched, "each JVM maps every page of the weights: " + report);
        assertTrue(usage.pss() > 0.4 * size && usage.pss() < 0.6 * size, "each JVM's fair share is about half: " + report);
      }
    } finally {
      for (Process child : children) {
        child.getOutputStream().close();
      }
      for (Process child : children) {
        if (!child.waitFor(20, TimeUnit.SECONDS)) {
          child.destroyForcibly();
        }
      }
    }
    for (Process child : children) {
      assertEquals(0, child.exitValue());
    }
  }
}
