package dev.loadstone.cli;

/** Entry point placeholder. */
public final class Main {
  private Main() {}

  /** Runs the command line. */
  public static void main(String[] args) {
    System.exit(0);
  }
}
