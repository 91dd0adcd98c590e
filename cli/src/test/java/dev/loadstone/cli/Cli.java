package dev.loadstone.cli;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Test helpers: run the CLI in-process and capture its output; write tiny safetensors files. */
final class Cli {
  private Cli() {}

  /** What one run printed and returned. */
  record Result(int exit, String out, String err) {
    List<String> outLines() {
      return out.lines().toList();
    }

    List<String> errLines() {
      return err.lines().toList();
    }
  }

  /** Runs the real command set, with debugging off whatever the environment says. */
  static Result run(String... args) {
    return run(new Main(Main.COMMANDS, false), args);
  }

  static Result run(Main main, String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int exit;
    try (PrintStream o = new PrintStream(out, true, UTF_8); PrintStream e = new PrintStream(err, true, UTF_8)) {
      exit = main.execute(args, o, e);
    }
    return new Result(exit, out.toString(UTF_8), err.toString(UTF_8));
  }

  /** The bytes of a safetensors file: 8-byte little-endian header length, header, data. */
  static byte[] safetensors(String header, byte[] data) {
    byte[] json = header.getBytes(UTF_8);
    return ByteBuffer.allocate(8 + json.length + data.length).order(ByteOrder.LITTLE_ENDIAN)
        .putLong(json.length).put(json).put(data).array();
  }

  static Path write(Path dir, String name, byte[] bytes) throws IOException {
    Path file = dir.resolve(name);
    Files.write(file, bytes);
    return file;
  }

  /**
   * A valid file of two tensors listed out of file order in the header: {@code b} (F32 [2],
   * bytes 4-12) before {@code a} (I8 [2, 2], bytes 0-4), with metadata.
   */
  static final String VALID_HEADER = """
      {"__metadata__":{"format":"pt","note":"say \\"hi\\"\\u00e9"},\
      "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},\
      "a":{"dtype":"I8","shape":[2,2],"data_offsets":[0,4]}}""";

  static byte[] validData() {
    return ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN)
        .put((byte) 1).put((byte) -2).put((byte) 3).put((byte) 4)
        .putFloat(1.5f).putFloat(-2.25f).array();
  }

  static Path validFile(Path dir) throws IOException {
    return write(dir, "tiny.safetensors", safetensors(VALID_HEADER, validData()));
  }

  /** The repository root: the folder above the cli module that holds the example. */
  static Path repoRoot() {
    Path dir = Path.of(System.getProperty("user.dir")).toAbsolutePath();
    for (Path p = dir; p != null; p = p.getParent()) {
      if (Files.exists(p.resolve(TourCommand.EXAMPLE))) {
        return p;
      }
    }
    throw new IllegalStateException("no " + TourCommand.EXAMPLE + " above " + dir);
  }

  /** Fails unless the text holds no stack trace. */
  static void assertNoStackTrace(String text) {
    if (text.contains("\tat ") || text.contains("Exception in thread") || text.contains("Caused by:")) {
      throw new AssertionError("stack trace in output:\n" + text);
    }
  }
}
