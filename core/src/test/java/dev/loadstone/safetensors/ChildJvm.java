package dev.loadstone.safetensors;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Starts a test program ({@link WriterProcess} by default) in a JVM of its own, with the test's class path. */
public final class ChildJvm {
  private ChildJvm() {}

  /** Starts the writer process with these JVM options and arguments; stderr joins stdout. */
  public static Process start(List<String> jvmOptions, String... args) throws IOException {
    return start(WriterProcess.class, jvmOptions, args);
  }

  /** Starts {@code main}'s main method with these JVM options and arguments; stderr joins stdout. */
  public static Process start(Class<?> main, List<String> jvmOptions, String... args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmOptions);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(main.getName());
    command.addAll(List.of(args));
    return new ProcessBuilder(command).redirectErrorStream(true).start();
  }

  /** A reader of the process's output. */
  public static BufferedReader output(Process process) {
    return new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
  }

  /** Reads the rest of the output and waits for the process to end; returns the output. */
  public static String finish(Process process) throws IOException, InterruptedException {
    StringBuilder all = new StringBuilder();
    try (BufferedReader reader = output(process)) {
      String line;
      while ((line = reader.readLine()) != null) {
        all.append(line).append('\n');
      }
    }
    process.waitFor();
    return all.toString();
  }
}
