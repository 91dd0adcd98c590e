package dev.loadstone.cli;

/**
 * The command line is wrong: an unknown command or option, a missing or extra argument. The
 * CLI prints the message on one line with a hint to {@code loadstone help} and exits with
 * {@link Main#EXIT_USAGE}.
 */
final class UsageException extends Exception {
  private static final long serialVersionUID = 1L;

  UsageException(String message) {
    super(message);
  }
}
