package dev.loadstone.llama.tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;

/** The tokenizer files the tests read. */
final class TestFiles {
  private TestFiles() {}

  /** The example model shipped in the repository ({@code examples/fortune-llama}). */
  static Path fortuneLlama() {
    // Tests run in the module's folder; the repository root is its parent.
    Path dir = Path.of("..", "examples", "fortune-llama").toAbsolutePath().normalize();
    if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
      throw new IllegalStateException("no fortune-llama tokenizer at " + dir);
    }
    return dir.resolve("tokenizer.json");
  }

  /** A file under the test resources' {@code tokenizer/} folder. */
  static Path resource(String name) {
    URL url = TestFiles.class.getResource("/tokenizer/" + name);
    if (url == null) {
      throw new IllegalStateException("no test resource tokenizer/" + name);
    }
    try {
      return Path.of(url.toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The tokenizer under test {@code name}: fortune-llama or one of the resource folders. */
  static Tokenizer load(String name) {
    try {
      return Tokenizer.load(name.equals("fortune-llama")
          ? fortuneLlama() : resource(name + "/tokenizer.json"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
