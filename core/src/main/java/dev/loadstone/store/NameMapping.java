package dev.loadstone.store;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * Maps the tensor names of a checkpoint to the variable names of a store, applied in the order
 * the rules were added. A rule may drop a tensor by mapping it to nothing.
 *
 * <pre>{@code
 * NameMapping.identity()
 *     .stripPrefix("model.")                              // "model.layers.0.x" -> "layers.0.x"
 *     .rename(n -> n.replace("attention.", "self_attn.")); // any function
 * }</pre>
 */
public final class NameMapping {
  private static final NameMapping IDENTITY = new NameMapping(List.of(), List.of());

  private final List<Function<String, Optional<String>>> rules;
  private final List<String> descriptions;

  private NameMapping(List<Function<String, Optional<String>>> rules, List<String> descriptions) {
    this.rules = rules;
    this.descriptions = descriptions;
  }

  /** Names stay as they are. */
  public static NameMapping identity() {
    return IDENTITY;
  }

  /** Removes {@code prefix} from names that start with it; other names stay as they are. */
  public NameMapping stripPrefix(String prefix) {
    Objects.requireNonNull(prefix, "prefix");
    return with(name -> Optional.of(name.startsWith(prefix) ? name.substring(prefix.length()) : name),
        "strip prefix '" + prefix + "'");
  }

  /** Puts {@code prefix} before every name. */
  public NameMapping addPrefix(String prefix) {
    Objects.requireNonNull(prefix, "prefix");
    return with(name -> Optional.of(prefix + name), "add prefix '" + prefix + "'");
  }

  /** Renames with any function; a {@code null} result drops the tensor from the load. */
  public NameMapping rename(Function<String, String> function) {
    Objects.requireNonNull(function, "function");
    return with(name -> Optional.ofNullable(function.apply(name)), "rename function");
  }

  /** The store name for checkpoint tensor {@code name}, or empty if a rule drops it. */
  public Optional<String> apply(String name) {
    Optional<String> mapped = Optional.of(name);
    for (Function<String, Optional<String>> rule : rules) {
      mapped = rule.apply(mapped.get());
      if (mapped.isEmpty()) {
        break;
      }
    }
    return mapped;
  }

  private NameMapping with(Function<String, Optional<String>> rule, String description) {
    List<Function<String, Optional<String>>> newRules = new ArrayList<>(rules);
    newRules.add(rule);
    List<String> newDescriptions = new ArrayList<>(descriptions);
    newDescriptions.add(description);
    return new NameMapping(List.copyOf(newRules), List.copyOf(newDescriptions));
  }

  @Override
  public String toString() {
    return rules.isEmpty() ? "identity" : String.join(", then ", descriptions);
  }
}
