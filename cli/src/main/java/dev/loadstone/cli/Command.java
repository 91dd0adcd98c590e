package dev.loadstone.cli;

import java.io.PrintStream;
import java.util.List;

/**
 * One {@code loadstone} command. A new command is a class implementing this interface plus one
 * line in {@link Main#COMMANDS}; {@link Main} parses the options it declares, prints its help
 * and turns its exceptions into messages and exit codes:
 *
 * <ul>
 *   <li>{@link UsageException}: {@link Main#EXIT_USAGE};
 *   <li>{@link dev.loadstone.safetensors.SafeTensorsException} (a broken file, or as its
 *       subclass {@link dev.loadstone.checkpoint.CheckpointException} a broken directory):
 *       {@link Main#EXIT_INVALID};
 *   <li>any other {@link java.io.IOException}: {@link Main#EXIT_USAGE};
 *   <li>anything else: an unexpected error, {@link Main#EXIT_USAGE}.
 * </ul>
 */
interface Command {

  /** The word that selects the command, e.g. {@code "inspect"}. */
  String name();

  /** The arguments after the name in the usage line, e.g. {@code "PATH [--json]"}. */
  String synopsis();

  /** One line for the command list. */
  String summary();

  /** More help text, printed by {@code loadstone help NAME}; may be empty. */
  default String description() {
    return "";
  }

  /** The options the command accepts, besides the global {@code --help} and {@code --debug}. */
  default List<Option> options() {
    return List.of();
  }

  /**
   * Runs the command.
   *
   * @param args the arguments after the command's name, parsed against {@link #options()}
   * @param out standard output: the command's result
   * @param err standard error: diagnostics
   * @return the exit code
   */
  int run(Arguments args, PrintStream out, PrintStream err) throws Exception;
}
