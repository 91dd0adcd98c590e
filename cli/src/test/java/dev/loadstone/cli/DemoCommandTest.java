package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class DemoCommandTest {

  @Test
  void generatesTextWithTheShippedModel() {
    String previous = System.getProperty("loadstone.home");
    System.setProperty("loadstone.home", Cli.repoRoot().toString());
    try {
      Cli.Result result = Cli.run("demo", "--skip-load");
      assertEquals(0, result.exit(), result.err());
      String out = result.out();
      assertTrue(out.contains("3. Generating text with the example model fortune-llama"), out);
      assertTrue(out.contains("ALIAS, 8.6 MiB of weights bound in place"), out);
      assertTrue(out.contains("prompt: \"The meaning of life\"\n\nThe meaning of life"), out);
      assertTrue(out.matches("(?s).*\\n   \\d+ tokens, \\d+ tokens/s .*"), out);
      Cli.assertNoStackTrace(result.err());
    } finally {
      if (previous == null) {
        System.clearProperty("loadstone.home");
      } else {
        System.setProperty("loadstone.home", previous);
      }
    }
  }

  @Test
  void extraArgumentsAreUsageErrors() {
    assertEquals(Main.EXIT_USAGE, Cli.run("demo", "x").exit());
  }
}
