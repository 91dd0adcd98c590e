package dev.loadstone.llama;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Set;

/**
 * A child JVM for {@link TruncatedWeightsTest}: loads the model in {@code args[0]} (weights
 * read in place), generates until the kernels are compiled, then truncates {@code args[1]} to a
 * third of its size in the middle of a generation and reports on stdout how that generation
 * ended: {@code exception: <class>: <message>}, or {@code finished}.
 */
public final class TruncationProcess {
  private TruncationProcess() {}

  public static void main(String[] args) throws IOException {
    Path directory = Path.of(args[0]);
    Path weights = Path.of(args[1]);
    try (LlamaModel model = LlamaModel.load(directory, LlamaModel.Options.defaults().withThreads(2))) {
      Generator generator = new Generator(model, Sampler.greedy());
      int[] prompt = {1, 5, 9, 14};
      // Compiled code faults differently from the interpreter: run the kernels hot first.
      for (int round = 0; round < 60; round++) {
        generator.generate(prompt, 60, Set.of(), token -> { });
      }
      System.out.println("mode " + model.loadMode() + ", warm");
      int[] tokens = {0};
      try {
        generator.generate(prompt, 60, Set.of(), token -> {
          if (++tokens[0] == 10) {
            truncate(weights);
          }
        });
        System.out.println("finished");
      } catch (RuntimeException | Error e) {
        System.out.println("exception: " + e.getClass().getName() + ": " + e.getMessage());
      }
    }
  }

  private static void truncate(Path file) {
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
      channel.truncate(channel.size() / 3);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
