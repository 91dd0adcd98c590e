package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TourCommandTest {
  @TempDir Path dir;

  @Test
  void runsOnTheShippedExample() {
    Path example = Cli.repoRoot().resolve(TourCommand.EXAMPLE);
    Cli.Result result = Cli.run("tour", "--model", example.toString());
    assertEquals(0, result.exit(), result.err());
    assertEquals("", result.err());
    String out = result.out();
    List<String> lines = result.outLines();
    assertTrue(lines.size() < 40, "compact: " + lines.size() + " lines");
    assertTrue(lines.get(0).startsWith("Loadstone tour: " + example + " (8.6 MiB)"), lines.get(0));
    assertTrue(out.matches("(?s).*1\\. Open \\+ validate: 56 tensors, 8,968,704 bytes of data,"
        + " 6,008-byte header: valid in \\d+\\.\\d ms \\(again: \\d+\\.\\d ms\\)\n.*"), out);
    assertTrue(out.contains("model.embed_tokens.weight               BF16  [512, 256]  262,144 bytes"), out);
    assertTrue(out.contains("... and 51 more"), out);
    // model.norm.weight starts with 0x3f9b = 1.2109375 in BF16
    assertTrue(out.contains("3. Zero-copy read: model.norm.weight BF16 [256]"), out);
    assertTrue(out.matches("(?s).*bits\\s+0x3f9b\\s+0x3f9b.*\n\\s+float\\s+1\\.211\\s+1\\.211.*"), out);
    assertTrue(out.contains("4. Zero-copy slice: row 42 of model.embed_tokens.weight [512, 256] (axis 0) -> [1, 256]"), out);
    assertTrue(out.contains("same memory: 21,504 bytes into the tensor's mapping, data_offsets [21504, 22016]"), out);
    assertTrue(out.contains("5. Copy with conversion: model.layers.0.mlp.gate_proj.weight BF16 [688, 256] -> F32"), out);
    assertTrue(out.contains("352,256 bytes BF16 -> 704,512 bytes F32 in "), out);
    assertTrue(out.contains("check: all 176,128 values equal getFloat(i)"), out);
    assertTrue(out.contains("6. Close: isOpen() = false; reading model.norm.weight again:\n"
        + "     IllegalStateException: "), out);
    assertTrue(out.contains("closed; tensor 'model.norm.weight' can no longer be read"), out);
  }

  @Test
  void findsTheExampleUnderLoadstoneHome() {
    Path root = Cli.repoRoot();
    assertEquals(root.resolve(TourCommand.EXAMPLE), TourCommand.defaultModel(root.toString()));
    assertEquals(Path.of(TourCommand.EXAMPLE), TourCommand.defaultModel(null));
    assertEquals(Path.of(TourCommand.EXAMPLE), TourCommand.defaultModel("/nonexistent/home"));

    String saved = System.getProperty("loadstone.home");
    System.setProperty("loadstone.home", root.toString());
    try {
      Cli.Result result = Cli.run("tour");
      assertEquals(0, result.exit(), result.err());
      assertTrue(result.out().contains("6. Close: isOpen() = false"), result.out());
    } finally {
      if (saved == null) {
        System.clearProperty("loadstone.home");
      } else {
        System.setProperty("loadstone.home", saved);
      }
    }
  }

  @Test
  void worksOnAFileWithoutLlamaNames() throws IOException {
    Path file = Cli.validFile(dir);
    Cli.Result result = Cli.run("tour", "--model=" + file);
    assertEquals(0, result.exit(), result.err());
    String out = result.out();
    assertTrue(out.contains("3. Zero-copy read: b F32 [2], first values decoded to float:"), out);
    assertTrue(out.contains("0x3fc00000"), out);
    assertTrue(out.contains("-2.250"), out);
    assertTrue(out.contains("4. Zero-copy slice: no float matrix to slice"), out);
    assertTrue(out.contains("8 bytes F32 -> 8 bytes F32"), out);
    assertTrue(out.contains("IllegalStateException"), out);
  }

  @Test
  void errors() throws IOException {
    Cli.Result missing = Cli.run("tour", "--model", dir.resolve("none.safetensors").toString());
    assertEquals(2, missing.exit());
    assertEquals(1, missing.errLines().size(), missing.err());
    Cli.Result extra = Cli.run("tour", "x");
    assertEquals(2, extra.exit());
    assertEquals("loadstone tour: unexpected argument 'x' (run 'loadstone help tour' for usage)\n", extra.err());
    Path bad = Cli.write(dir, "bad.safetensors", new byte[] {1, 2});
    Cli.Result invalid = Cli.run("tour", "--model", bad.toString());
    assertEquals(1, invalid.exit());
    assertTrue(invalid.err().startsWith("loadstone tour: invalid file: " + bad + ": FILE_TOO_SMALL"), invalid.err());
  }
}
