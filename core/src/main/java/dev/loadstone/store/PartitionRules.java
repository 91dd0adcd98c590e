package dev.loadstone.store;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Which {@link Split} each tensor of a checkpoint gets: an ordered list of rules, each a regular
 * expression over the tensor's name <em>in the checkpoint</em> (before any {@link NameMapping},
 * so that rules describe a file's layout whatever a program calls its variables) and a split.
 * The first rule whose pattern is found in the name ({@link java.util.regex.Matcher#find()},
 * so {@code \.o_proj\.weight$} matches in any layer) decides; a tensor no rule matches is
 * replicated.
 *
 * <pre>{@code
 * PartitionRules rules = PartitionRules.llama(32, 8, 64)          // Llama-3.2-1B
 *     .with("\\.mlp\\.experts\\.", Split.replicate());              // added rules come last
 * PartitionRules fromFile = PartitionRules.read(Path.of("tp.rules"));
 * }</pre>
 *
 * <p>The rules file has one rule per line, {@code PATTERN SPLIT}, separated by white space;
 * blank lines and lines starting with {@code #} are ignored. {@code SPLIT} is {@code replicate},
 * {@code dim0}, {@code dim1} (any {@code dimK}), {@code fused:dim0:SIZE,SIZE,...} or
 * {@code fused:dim0:ratio:A,B,...}, each but {@code replicate} optionally followed by
 * {@code /UNIT} (shares in whole units, such as heads). {@link #toString()} writes that format.
 * Immutable.
 */
public final class PartitionRules {
  /**
   * One rule.
   *
   * @param pattern found in a tensor's checkpoint name
   * @param split what a matching tensor gets
   */
  public record Rule(Pattern pattern, Split split) {
    /** Checks the values. */
    public Rule {
      Objects.requireNonNull(pattern, "pattern");
      Objects.requireNonNull(split, "split");
    }

    /** The rule as the rules file writes it: {@code PATTERN SPLIT}. */
    @Override
    public String toString() {
      return pattern.pattern() + " " + split;
    }
  }

  private static final PartitionRules NONE = new PartitionRules(List.of());

  private final List<Rule> rules;

  private PartitionRules(List<Rule> rules) {
    this.rules = List.copyOf(rules);
  }

  /** No rules: every tensor is replicated. */
  public static PartitionRules none() {
    return NONE;
  }

  /**
   * Llama-style names (Llama, Mistral, Qwen2, and checkpoints with fused {@code qkv_proj} and
   * {@code gate_up_proj} such as Phi-3), as vLLM and Megatron-LM cut them: {@code q_proj},
   * {@code k_proj}, {@code v_proj} (weights and biases), {@code gate_proj}, {@code up_proj},
   * {@code embed_tokens} and {@code lm_head} along dimension 0; {@code o_proj} and
   * {@code down_proj} weights along dimension 1; {@code gate_up_proj} as two equal fused parts;
   * everything else (norms, the biases of {@code o_proj} and {@code down_proj}, rotary tables)
   * replicated. The parts of a fused {@code qkv_proj} depend on the head counts, which this
   * preset does not know: such a tensor is refused, naming {@link #llama(int, int, int)}.
   * Shares are whole rows, not whole heads; {@link #llama(int, int, int)} keeps heads whole.
   */
  public static PartitionRules llama() {
    return llamaRules(Split.along(0), Split.along(1), Split.fused(0));
  }

  /**
   * {@link #llama()} for a model of {@code numHeads} query heads and {@code numKvHeads}
   * key/value heads of {@code headDim} each ({@code config.json}'s
   * {@code num_attention_heads}, {@code num_key_value_heads}, {@code head_dim}): q, k, v and o
   * are cut in whole heads, and a fused {@code qkv_proj} in parts of
   * {@code numHeads × headDim}, {@code numKvHeads × headDim}, {@code numKvHeads × headDim} rows.
   *
   * @throws IllegalArgumentException if a count is not positive
   */
  public static PartitionRules llama(int numHeads, int numKvHeads, int headDim) {
    if (numHeads < 1 || numKvHeads < 1 || headDim < 1) {
      throw new IllegalArgumentException("heads, key/value heads and head_dim are positive, not "
          + numHeads + ", " + numKvHeads + ", " + headDim);
    }
    long q = (long) numHeads * headDim;
    long kv = (long) numKvHeads * headDim;
    return llamaRules(Split.along(0).inUnitsOf(headDim), Split.along(1).inUnitsOf(headDim),
        Split.fused(0, q, kv, kv).inUnitsOf(headDim));
  }

  private static PartitionRules llamaRules(Split heads, Split headColumns, Split qkv) {
    return none()
        .with("\\.(q|k|v)_proj\\.(weight|bias)$", heads)
        .with("\\.qkv_proj\\.(weight|bias)$", qkv)
        .with("\\.o_proj\\.weight$", headColumns)
        .with("\\.(gate|up)_proj\\.weight$", Split.along(0))
        .with("\\.gate_up_proj\\.weight$", Split.fusedByRatio(0, 1, 1))
        .with("\\.down_proj\\.weight$", Split.along(1))
        .with("(^|\\.)(embed_tokens|lm_head)\\.weight$", Split.along(0));
  }

  /**
   * These rules with one more, tried after the others.
   *
   * @param regex a regular expression found in checkpoint tensor names
   * @throws PatternSyntaxException if {@code regex} is not one
   */
  public PartitionRules with(String regex, Split split) {
    List<Rule> more = new ArrayList<>(rules);
    more.add(new Rule(Pattern.compile(regex), split));
    return new PartitionRules(more);
  }

  /** The rules, in the order they are tried. */
  public List<Rule> rules() {
    return rules;
  }

  /** The first rule whose pattern is found in {@code tensorName}, or empty (the tensor is replicated). */
  public Optional<Rule> ruleFor(String tensorName) {
    for (Rule rule : rules) {
      if (rule.pattern().matcher(tensorName).find()) {
        return Optional.of(rule);
      }
    }
    return Optional.empty();
  }

  /**
   * Reads rules in the file format (see the class comment).
   *
   * @param source where the text comes from, for messages (a file name)
   * @throws IllegalArgumentException naming the source, the line and what is wrong in it
   */
  public static PartitionRules parse(String text, String source) {
    List<Rule> rules = new ArrayList<>();
    List<String> lines = text.lines().toList();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i).strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      String[] fields = line.split("\\s+");
      try {
        if (fields.length != 2) {
          throw new IllegalArgumentException("a rule is 'PATTERN SPLIT' (two fields), not '" + line + "'");
        }
        rules.add(new Rule(Pattern.compile(fields[0]), Split.parse(fields[1])));
      } catch (PatternSyntaxException e) {
        throw new IllegalArgumentException(source + ": line " + (i + 1) + ": the pattern '" + fields[0]
            + "' is not a regular expression: " + e.getDescription(), e);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(source + ": line " + (i + 1) + ": " + e.getMessage(), e);
      }
    }
    return new PartitionRules(rules);
  }

  /**
   * Reads a rules file (UTF-8).
   *
   * @throws IOException if it cannot be read
   * @throws IllegalArgumentException naming the file and line of a malformed rule
   */
  public static PartitionRules read(Path file) throws IOException {
    return parse(Files.readString(file, StandardCharsets.UTF_8), file.toString());
  }

  /** The rules in the file format, one per line: {@code parse(rules.toString(), ...)} gives the same rules. */
  @Override
  public String toString() {
    StringBuilder text = new StringBuilder();
    for (Rule rule : rules) {
      text.append(rule).append('\n');
    }
    return text.toString();
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof PartitionRules r && toString().equals(r.toString());
  }

  @Override
  public int hashCode() {
    return toString().hashCode();
  }
}
