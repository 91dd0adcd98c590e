package dev.loadstone.cli;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.SafeTensorsException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Properties;

/**
 * The {@code loadstone} command line: global options, the choice of command, and the mapping of
 * failures to one-line messages and exit codes.
 *
 * <pre>
 * loadstone [--debug] COMMAND [ARGS...]
 * loadstone help [COMMAND] | --help | --version
 * </pre>
 *
 * <p>Exit codes: {@value #EXIT_OK} success; {@value #EXIT_INVALID} a file breaks a rule of the
 * format, or a model directory a rule of checkpoints; {@value #EXIT_USAGE} a usage error, an I/O error or an unexpected error. With no
 * arguments the usage goes to stderr and the exit code is {@value #EXIT_USAGE}. Errors are one
 * line on stderr; stack traces only with {@code --debug} or the environment variable
 * {@code LOADSTONE_DEBUG=1}.
 */
public final class Main {
  /** Success. */
  public static final int EXIT_OK = 0;
  /** A file breaks a rule of the safetensors format, or a model directory a rule of checkpoints. */
  public static final int EXIT_INVALID = 1;
  /** Usage error, I/O error, or an unexpected failure. */
  public static final int EXIT_USAGE = 2;

  /** Every command, in the order of the help text. Register a new command here. */
  static final List<Command> COMMANDS = List.of(
      new InspectCommand(),
      new VerifyCommand(),
      new PullCommand(),
      new ConvertCommand(),
      new SliceCommand(),
      new BenchCommand(),
      new DemoCommand(),
      new TourCommand(),
      new GenerateCommand());

  private static final String DEBUG_ENV = "LOADSTONE_DEBUG";
  private static final Option HELP = Option.flag("--help", "show this help");
  private static final Option DEBUG = Option.flag("--debug", "print stack traces for errors");

  private final List<Command> commands;
  private final boolean debugByEnvironment;

  Main(List<Command> commands, boolean debugByEnvironment) {
    this.commands = List.copyOf(commands);
    this.debugByEnvironment = debugByEnvironment;
  }

  /** Runs the command line and exits with its exit code. */
  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /**
   * Runs the command line, printing to {@code out} and {@code err}.
   *
   * @return the exit code
   */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    return new Main(COMMANDS, isDebug(System.getenv(DEBUG_ENV))).execute(args, out, err);
  }

  static boolean isDebug(String value) {
    return value != null && !value.isBlank() && !value.equals("0") && !value.equalsIgnoreCase("false");
  }

  int execute(String[] argv, PrintStream out, PrintStream err) {
    List<String> args = Arrays.asList(argv);
    boolean debug = debugByEnvironment;
    int index = 0;
    // Global options, before the command.
    for (; index < args.size() && args.get(index).startsWith("-"); index++) {
      String arg = args.get(index);
      switch (arg) {
        case "--help", "-h" -> {
          printUsage(out);
          return finish(out, err, EXIT_OK);
        }
        case "--version" -> {
          out.println("loadstone " + version());
          return finish(out, err, EXIT_OK);
        }
        case "--debug" -> debug = true;
        default -> {
          return usageError(err, null, new UsageException("unknown option '" + Text.oneLine(arg) + "'"));
        }
      }
    }
    if (index == args.size()) {
      printUsage(err);
      return finish(out, err, EXIT_USAGE);
    }
    String name = args.get(index);
    List<String> rest = args.subList(index + 1, args.size());
    if (name.equals("help")) {
      return help(rest, out, err);
    }
    Optional<Command> found = find(name);
    if (found.isEmpty()) {
      return usageError(err, null, new UsageException("unknown command '" + Text.oneLine(name) + "'"));
    }
    Command command = found.get();
    String prefix = "loadstone " + command.name() + ": ";
    try {
      List<Option> accepted = new ArrayList<>(command.options());
      accepted.add(HELP);
      accepted.add(DEBUG);
      Arguments arguments = Arguments.parse(rest, accepted);
      if (arguments.has("--help")) {
        printHelp(command, out);
        return finish(out, err, EXIT_OK);
      }
      debug |= arguments.has("--debug");
      return finish(out, err, command.run(arguments, out, err));
    } catch (UsageException e) {
      return usageError(err, command, e);
    } catch (SafeTensorsException e) {
      // The message names the file, the reason code, the tensor and the rule.
      err.println(prefix + (e instanceof CheckpointException ? "invalid checkpoint: " : "invalid file: ")
          + Text.oneLine(e.getMessage()));
      return failed(out, err, debug, e, EXIT_INVALID);
    } catch (IOException e) {
      err.println(prefix + describe(e));
      return failed(out, err, debug, e, EXIT_USAGE);
    } catch (java.io.UncheckedIOException e) {
      // An I/O failure surfacing from code that cannot throw IOException (a model whose
      // weights file was truncated while it ran): the same one line as an IOException.
      err.println(prefix + describe(e.getCause()));
      return failed(out, err, debug, e, EXIT_USAGE);
    } catch (Throwable e) {
      // The outermost frame: whatever went wrong, say it in one line.
      err.println(prefix + "unexpected error: " + Text.oneLine(e.toString())
          + (debug ? "" : " (run with --debug or " + DEBUG_ENV + "=1 for the stack trace)"));
      return failed(out, err, debug, e, EXIT_USAGE);
    }
  }

  private int help(List<String> rest, PrintStream out, PrintStream err) {
    if (rest.isEmpty()) {
      printUsage(out);
      return finish(out, err, EXIT_OK);
    }
    if (rest.size() > 1) {
      return usageError(err, null, new UsageException("unexpected argument '" + Text.oneLine(rest.get(1)) + "'"));
    }
    Optional<Command> command = find(rest.get(0));
    if (command.isEmpty()) {
      return usageError(err, null, new UsageException("unknown command '" + Text.oneLine(rest.get(0)) + "'"));
    }
    printHelp(command.get(), out);
    return finish(out, err, EXIT_OK);
  }

  private Optional<Command> find(String name) {
    return commands.stream().filter(c -> c.name().equals(name)).findFirst();
  }

  private void printUsage(PrintStream stream) {
    stream.println("Usage: loadstone [--debug] COMMAND [ARGS...]");
    stream.println();
    stream.println("Loads .safetensors model weights zero-copy with java.lang.foreign.");
    stream.println();
    stream.println("Commands:");
    List<String[]> rows = new ArrayList<>();
    for (Command command : commands) {
      rows.add(new String[] {(command.name() + " " + command.synopsis()).strip(), command.summary()});
    }
    rows.add(new String[] {"help [COMMAND]", "show this help, or a command's help"});
    Text.table(rows, "  ").forEach(stream::println);
    stream.println();
    stream.println("Options:");
    Text.table(List.of(
        new String[] {"-h, --help", "show this help (after a command: the command's help)"},
        new String[] {"--version", "print the version"},
        new String[] {"--debug", "print stack traces for errors (or set " + DEBUG_ENV + "=1)"}), "  ")
        .forEach(stream::println);
    stream.println();
    printExitCodes(stream);
  }

  private static void printHelp(Command command, PrintStream out) {
    out.println(("Usage: loadstone " + command.name() + " " + command.synopsis()).strip());
    out.println();
    out.println(command.summary().substring(0, 1).toUpperCase(java.util.Locale.ROOT)
        + command.summary().substring(1) + ".");
    if (!command.description().isEmpty()) {
      out.println();
      out.println(command.description().strip());
    }
    out.println();
    out.println("Options:");
    List<String[]> rows = new ArrayList<>();
    for (Option option : command.options()) {
      rows.add(new String[] {option.usage(), option.description()});
    }
    rows.add(new String[] {"-h, --help", HELP.description()});
    rows.add(new String[] {"--debug", DEBUG.description()});
    Text.table(rows, "  ").forEach(out::println);
    out.println();
    printExitCodes(out);
  }

  private static void printExitCodes(PrintStream stream) {
    stream.println("Exit status: " + EXIT_OK + " success, " + EXIT_INVALID
        + " a file or model directory breaks a rule of the format, " + EXIT_USAGE
        + " usage or I/O error.");
  }

  private static int usageError(PrintStream err, Command command, UsageException e) {
    String who = command == null ? "loadstone" : "loadstone " + command.name();
    String help = command == null ? "loadstone help" : "loadstone help " + command.name();
    err.println(who + ": " + Text.oneLine(e.getMessage()) + " (run '" + help + "' for usage)");
    err.flush();
    return EXIT_USAGE;
  }

  private static int failed(PrintStream out, PrintStream err, boolean debug, Throwable e, int code) {
    if (debug) {
      e.printStackTrace(err);
    }
    return finish(out, err, code);
  }

  private static int finish(PrintStream out, PrintStream err, int code) {
    out.flush();
    err.flush();
    return code;
  }

  /** One line for an I/O error: the file and what went wrong. */
  static String describe(IOException e) {
    if (e instanceof NoSuchFileException f) {
      return Text.oneLine(f.getFile()) + ": no such file"
          + (f.getReason() == null ? "" : " (" + Text.oneLine(f.getReason()) + ")");
    }
    if (e instanceof AccessDeniedException f) {
      return Text.oneLine(f.getFile()) + ": permission denied";
    }
    if (e instanceof FileSystemException f && f.getFile() != null) {
      return Text.oneLine(f.getFile()) + ": "
          + Text.oneLine(f.getReason() == null ? e.getClass().getSimpleName() : f.getReason());
    }
    return Text.oneLine(e.getMessage() == null ? e.toString() : e.getMessage());
  }

  /** The project version, from the resource Maven fills in, else the module descriptor. */
  static String version() {
    try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
      if (in != null) {
        Properties properties = new Properties();
        properties.load(in);
        String version = properties.getProperty("version");
        if (version != null && !version.isBlank() && !version.startsWith("${")) {
          return version;
        }
      }
    } catch (IOException e) {
      // fall through
    }
    return Optional.ofNullable(Main.class.getModule().getDescriptor())
        .flatMap(d -> d.rawVersion())
        .orElse("(unknown version)");
  }
}
