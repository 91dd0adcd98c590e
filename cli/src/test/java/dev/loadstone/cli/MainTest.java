package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.List;
import org.junit.jupiter.api.Test;

class MainTest {

  @Test
  void helpListsEveryCommand() {
    for (String[] args : List.of(new String[] {"help"}, new String[] {"--help"}, new String[] {"-h"})) {
      Cli.Result result = Cli.run(args);
      assertEquals(0, result.exit());
      assertEquals("", result.err());
      assertTrue(result.out().startsWith("Usage: loadstone [--debug] COMMAND [ARGS...]\n"), result.out());
      for (Command command : Main.COMMANDS) {
        assertTrue(result.out().contains("\n  " + command.name() + " "), command.name());
      }
      assertTrue(result.out().contains("\n  help [COMMAND] "));
      assertTrue(result.out().contains("--version"));
    }
  }

  @Test
  void noArgumentsPrintsUsageToStderrAndExitsTwo() {
    Cli.Result result = Cli.run();
    assertEquals(2, result.exit());
    assertEquals("", result.out());
    assertTrue(result.err().startsWith("Usage: loadstone"), result.err());
  }

  @Test
  void commandHelp() {
    for (String[] args : List.of(new String[] {"help", "inspect"}, new String[] {"inspect", "--help"},
        new String[] {"inspect", "-h", "extra", "--json"})) {
      Cli.Result result = Cli.run(args);
      assertEquals(0, result.exit(), result.err());
      assertTrue(result.out().startsWith("Usage: loadstone inspect PATH [--json]\n"), result.out());
      assertTrue(result.out().contains("  --json "), result.out());
    }
  }

  @Test
  void version() {
    Cli.Result result = Cli.run("--version");
    assertEquals(0, result.exit());
    assertTrue(result.out().matches("loadstone \\d+\\.\\d+\\.\\d+\\S*\n"), result.out());
  }

  @Test
  void unknownCommandAndOptions() {
    Cli.Result command = Cli.run("frobnicate", "x");
    assertEquals(2, command.exit());
    assertEquals("loadstone: unknown command 'frobnicate' (run 'loadstone help' for usage)\n", command.err());
    Cli.Result global = Cli.run("--frob", "verify");
    assertEquals(2, global.exit());
    assertEquals("loadstone: unknown option '--frob' (run 'loadstone help' for usage)\n", global.err());
    Cli.Result help = Cli.run("help", "frobnicate");
    assertEquals(2, help.exit());
    assertEquals(1, help.errLines().size());
    Cli.Result control = Cli.run("bad\ncommand");
    assertEquals("loadstone: unknown command 'bad\\ncommand' (run 'loadstone help' for usage)\n", control.err());
  }

  @Test
  void unexpectedErrorIsOneLineWithoutDebugAndATraceWithIt() {
    Main main = new Main(List.of(new Failing()), false);
    Cli.Result quiet = Cli.run(main, "fail");
    assertEquals(2, quiet.exit());
    assertEquals("loadstone fail: unexpected error: java.lang.IllegalArgumentException: boom"
        + " (run with --debug or LOADSTONE_DEBUG=1 for the stack trace)\n", quiet.err());

    Cli.Result flag = Cli.run(main, "--debug", "fail");
    assertEquals(2, flag.exit());
    assertTrue(flag.err().contains("\tat dev.loadstone.cli.MainTest$Failing.run"), flag.err());
    Cli.Result after = Cli.run(main, "fail", "--debug");
    assertTrue(after.err().contains("\tat "), after.err());
    Cli.Result environment = Cli.run(new Main(List.of(new Failing()), true), "fail");
    assertTrue(environment.err().startsWith("loadstone fail: unexpected error: java.lang.IllegalArgumentException: boom\n"));
    assertTrue(environment.err().contains("\tat "), environment.err());
  }

  @Test
  void ioErrorFromACommandIsOneLine() {
    Main main = new Main(List.of(new Failing() {
      @Override
      public int run(Arguments args, PrintStream out, PrintStream err) throws IOException {
        throw new IOException("disk on fire");
      }
    }), false);
    Cli.Result result = Cli.run(main, "fail");
    assertEquals(2, result.exit());
    assertEquals("loadstone fail: disk on fire\n", result.err());
  }

  @Test
  void debugEnvironmentValues() {
    assertTrue(Main.isDebug("1"));
    assertTrue(Main.isDebug("true"));
    assertFalse(Main.isDebug(null));
    assertFalse(Main.isDebug(""));
    assertFalse(Main.isDebug("0"));
    assertFalse(Main.isDebug("false"));
  }

  @Test
  void exitCodeOfTheCommandIsReturned() {
    Main main = new Main(List.of(new Failing() {
      @Override
      public int run(Arguments args, PrintStream out, PrintStream err) {
        out.println(args.positional());
        return 7;
      }
    }), false);
    Cli.Result result = Cli.run(main, "fail", "a", "--", "--b");
    assertEquals(7, result.exit());
    assertEquals("[a, --b]\n", result.out());
  }

  private static class Failing implements Command {
    @Override
    public String name() {
      return "fail";
    }

    @Override
    public String synopsis() {
      return "";
    }

    @Override
    public String summary() {
      return "fails";
    }

    @Override
    public int run(Arguments args, PrintStream out, PrintStream err) throws IOException {
      throw new IllegalArgumentException("boom", new UncheckedIOException(new IOException("cause")));
    }
  }
}
