package dev.loadstone.cli;

/**
 * An option a command accepts: a flag ({@code --json}) or an option with a value
 * ({@code --model PATH} or {@code --model=PATH}).
 *
 * @param name the option with its dashes, e.g. {@code "--json"}
 * @param valueName the value's placeholder in help text, or {@code null} for a flag
 * @param description one line for the help text
 * @param repeatable whether the option may be given more than once (each value kept, in order)
 */
record Option(String name, String valueName, String description, boolean repeatable) {

  /** An option without a value. */
  static Option flag(String name, String description) {
    return new Option(name, null, description, false);
  }

  /** An option that takes a value. */
  static Option valued(String name, String valueName, String description) {
    return new Option(name, valueName, description, false);
  }

  /** An option that takes a value and may be given several times ({@link Arguments#values}). */
  static Option repeatable(String name, String valueName, String description) {
    return new Option(name, valueName, description, true);
  }

  boolean takesValue() {
    return valueName != null;
  }

  /** How the option is written in help text: {@code --json} or {@code --model PATH}. */
  String usage() {
    return takesValue() ? name + " " + valueName : name;
  }
}
