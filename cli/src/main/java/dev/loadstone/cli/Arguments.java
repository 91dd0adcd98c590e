package dev.loadstone.cli;

import dev.loadstone.safetensors.DType;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A command's arguments, parsed against the options it accepts: positional arguments, flags
 * ({@code --json}) and options with a value ({@code --model PATH} or {@code --model=PATH}).
 * {@code -h} is short for {@code --help}; after {@code --} every argument is positional, and a
 * lone {@code -} is positional too.
 */
final class Arguments {
  /** The dtypes float tensors can be converted to on the way (see {@link #floatDType}). */
  static final List<DType> FLOAT_TARGETS = List.of(DType.F32, DType.F16, DType.BF16);

  private final List<String> positional;
  private final Set<String> flags;
  private final Map<String, String> values;
  private final Map<String, List<String>> repeated;

  private Arguments(List<String> positional, Set<String> flags, Map<String, String> values,
      Map<String, List<String>> repeated) {
    this.positional = List.copyOf(positional);
    this.flags = Set.copyOf(flags);
    this.values = Map.copyOf(values);
    this.repeated = Map.copyOf(repeated);
  }

  /**
   * Parses {@code args} against the {@code accepted} options.
   *
   * @throws UsageException for an unknown option, a flag given a value, an option without its
   *     value or an option given twice
   */
  static Arguments parse(List<String> args, Collection<Option> accepted) throws UsageException {
    Map<String, Option> byName = new HashMap<>();
    for (Option option : accepted) {
      byName.put(option.name(), option);
    }
    List<String> positional = new ArrayList<>();
    Set<String> flags = new HashSet<>();
    Map<String, String> values = new HashMap<>();
    Map<String, List<String>> repeated = new HashMap<>();
    for (int i = 0; i < args.size(); i++) {
      String arg = args.get(i);
      if (arg.equals("--")) {
        positional.addAll(args.subList(i + 1, args.size()));
        break;
      }
      if (arg.equals("-h")) {
        arg = "--help";
      }
      if (!arg.startsWith("-") || arg.equals("-")) {
        positional.add(arg);
        continue;
      }
      int equals = arg.indexOf('=');
      String name = equals < 0 ? arg : arg.substring(0, equals);
      Option option = byName.get(name);
      if (option == null) {
        throw new UsageException("unknown option '" + Text.oneLine(name) + "'");
      }
      if (!option.takesValue()) {
        if (equals >= 0) {
          throw new UsageException("option '" + name + "' takes no value");
        }
        flags.add(name);
        continue;
      }
      String value;
      if (equals >= 0) {
        value = arg.substring(equals + 1);
      } else if (i + 1 < args.size()) {
        value = args.get(++i);
      } else {
        throw new UsageException("option '" + name + "' needs a value: " + option.usage());
      }
      if (option.repeatable()) {
        repeated.computeIfAbsent(name, n -> new ArrayList<>()).add(value);
        continue;
      }
      if (values.putIfAbsent(name, value) != null) {
        throw new UsageException("option '" + name + "' is given more than once");
      }
    }
    repeated.replaceAll((name, list) -> List.copyOf(list));
    return new Arguments(positional, flags, values, repeated);
  }

  /** The positional arguments, in order. */
  List<String> positional() {
    return positional;
  }

  /** Whether the flag was given. */
  boolean has(String flag) {
    return flags.contains(flag);
  }

  /** Every value of a repeatable option, in the order given (empty if it was not given). */
  List<String> values(String option) {
    return repeated.getOrDefault(option, List.of());
  }

  /** The option's value, if it was given. */
  Optional<String> value(String option) {
    return Optional.ofNullable(values.get(option));
  }

  /**
   * The positional arguments, which must be exactly as many as {@code names}.
   *
   * @param names the arguments' placeholders for the error message, e.g. {@code "PATH"}
   * @throws UsageException if an argument is missing or there are extra ones
   */
  List<String> require(String... names) throws UsageException {
    if (positional.size() < names.length) {
      throw new UsageException("missing argument " + names[positional.size()]);
    }
    if (positional.size() > names.length) {
      throw new UsageException("unexpected argument '" + Text.oneLine(positional.get(names.length)) + "'");
    }
    return positional;
  }

  /**
   * The whole-number value of {@code option}, or {@code fallback} when it was not given.
   *
   * @throws UsageException if the value is not a whole number of at least {@code min}
   */
  int integer(String option, int fallback, int min) throws UsageException {
    Optional<String> value = value(option);
    if (value.isEmpty()) {
      return fallback;
    }
    try {
      int parsed = Integer.parseInt(value.get().strip());
      if (parsed >= min) {
        return parsed;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new UsageException(option + " needs a whole number of at least " + min + ", not '"
        + Text.oneLine(value.get()) + "'");
  }

  /**
   * The float dtype {@code option} asks for ({@code F32}, {@code F16} or {@code BF16}, in any
   * case), or empty when it was not given or is {@code keep} (floats keep their dtype).
   *
   * @throws UsageException for any other value
   */
  Optional<DType> floatDType(String option) throws UsageException {
    Optional<String> value = value(option);
    if (value.isEmpty() || value.get().strip().equalsIgnoreCase("keep")) {
      return Optional.empty();
    }
    for (DType dtype : FLOAT_TARGETS) {
      if (dtype.name().equalsIgnoreCase(value.get().strip())) {
        return Optional.of(dtype);
      }
    }
    throw new UsageException(option + " '" + Text.oneLine(value.get()) + "' is not one of F32, F16, BF16 or keep");
  }

  /** The single positional argument {@code name}; see {@link #require(String...)}. */
  String requireOne(String name) throws UsageException {
    return require(name).get(0);
  }
}
