package dev.loadstone.cli;

/**
 * An option a command accepts: a flag ({@code --json}) or an option with a value
 * ({@code --model PATH} or {@code --model=PATH}).
 *
 * @param name the option with its dashes, e.g. {@code "--json"}
 * @param valueName the value's placeholder in help text, or {@code null} for a flag
 * @param description one line for the help text
 */
record Option(String name, String valueName, String description) {

  /** An option without a value. */
  static Option flag(String name, String description) {
    return new Option(name, null, description);
  }

  /** An option that takes a value. */
  static Option valued(String name, String valueName, String description) {
    return new Option(name, valueName, description);
  }

  boolean takesValue() {
    return valueName != null;
  }

  /** How the option is written in help text: {@code --json} or {@code --model PATH}. */
  String usage() {
    return takesValue() ? name + " " + valueName : name;
  }
}
