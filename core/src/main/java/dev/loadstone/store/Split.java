package dev.loadstone.store;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.stream.Collectors;
import java.util.stream.LongStream;

/**
 * How a {@link Partition} cuts one tensor across its ranks: not at all ({@link #replicate()}),
 * along one dimension ({@link #along(int)}: dimension 0 for column-parallel weights such as
 * {@code q_proj} or the embedding's vocabulary rows, dimension 1 for row-parallel ones such as
 * {@code o_proj}), or part by part for a fused tensor ({@link #fused(int, long...)}: each part of
 * {@code qkv_proj} is cut on its own, so that every rank gets its rows of q, of k and of v, in
 * that order).
 *
 * <p>Ranks get nearly equal shares as {@code numpy.array_split} and {@code torch.tensor_split}
 * give them: of {@code U} units (rows, or {@link #inUnitsOf whole heads}) over {@code N} ranks,
 * the first {@code U % N} ranks get {@code U / N + 1} and the others {@code U / N}. Fewer units
 * than ranks is refused (a rank would get nothing), as is a size that is no whole number of
 * units. See {@code docs/partition.md}.
 *
 * <pre>{@code
 * Split.along(0)                                  // q_proj, gate_proj, embed_tokens
 * Split.along(1).inUnitsOf(64)                    // o_proj: whole heads of 64 columns
 * Split.fused(0, 2048, 512, 512).inUnitsOf(64)    // qkv_proj of 32 query and 8 key/value heads
 * Split.fusedByRatio(0, 1, 1)                     // gate_up_proj: two equal halves
 * }</pre>
 *
 * <p>Immutable. {@link #toString()} is the split as the rules file writes it
 * ({@link PartitionRules#parse}).
 */
public final class Split {
  /** What a split does. */
  public enum Kind {
    /** Every rank gets the whole tensor. */
    REPLICATE,
    /** The tensor is cut along one dimension. */
    ALONG,
    /** The tensor is a concatenation of parts along one dimension, each part cut on its own. */
    FUSED
  }

  private static final Split REPLICATE = new Split(Kind.REPLICATE, -1, new long[0], false, 1);

  private final Kind kind;
  private final int dimension;
  private final long[] parts;
  private final boolean ratios;
  private final long unit;

  private Split(Kind kind, int dimension, long[] parts, boolean ratios, long unit) {
    this.kind = kind;
    this.dimension = dimension;
    this.parts = parts;
    this.ratios = ratios;
    this.unit = unit;
  }

  /** Every rank gets the whole tensor (norms, biases of row-parallel layers). */
  public static Split replicate() {
    return REPLICATE;
  }

  /**
   * Cut along {@code dimension}: 0 for a column-parallel weight {@code [out, in]} (each rank
   * gets some of its rows), 1 for a row-parallel one (each rank gets some of its columns).
   *
   * @throws IllegalArgumentException if {@code dimension} is negative
   */
  public static Split along(int dimension) {
    return new Split(Kind.ALONG, checkDimension(dimension), new long[0], false, 1);
  }

  /**
   * A fused tensor whose parts, of these sizes along {@code dimension}, follow one another
   * ({@code qkv_proj}: the query, key and value rows); each part is cut as {@link #along} cuts a
   * tensor, and a rank's slice is its share of each part, in order. With no sizes the parts are
   * unknown and every tensor the rule matches is refused, saying so (what
   * {@link PartitionRules#llama()} does for {@code qkv_proj}).
   *
   * @throws IllegalArgumentException if a size is not positive
   */
  public static Split fused(int dimension, long... partSizes) {
    return new Split(Kind.FUSED, checkDimension(dimension), checkParts(partSizes), false, 1);
  }

  /**
   * A fused tensor whose parts have these relative sizes along {@code dimension}
   * ({@code gate_up_proj}: 1, 1); the tensor's size must be a multiple of their sum.
   *
   * @throws IllegalArgumentException if there is no ratio or one is not positive
   */
  public static Split fusedByRatio(int dimension, long... ratios) {
    if (ratios.length == 0) {
      throw new IllegalArgumentException("a fused split by ratio needs at least one ratio");
    }
    return new Split(Kind.FUSED, checkDimension(dimension), checkParts(ratios), true, 1);
  }

  /**
   * The same split in whole units of {@code unit} elements along its dimension (a head's
   * {@code head_dim} rows, so that no rank gets part of a head): shares are counted in units,
   * and every size cut (the dimension, or each part) must be a multiple of the unit.
   *
   * @throws IllegalArgumentException if {@code unit} is not positive, or this split replicates
   */
  public Split inUnitsOf(long unit) {
    if (unit < 1) {
      throw new IllegalArgumentException("a split's unit is at least 1, not " + unit);
    }
    if (kind == Kind.REPLICATE) {
      throw new IllegalArgumentException("a replicated tensor is not cut, so it has no unit");
    }
    return new Split(kind, dimension, parts, ratios, unit);
  }

  /** What this split does. */
  public Kind kind() {
    return kind;
  }

  /** The dimension cut, or -1 for {@link Kind#REPLICATE}. */
  public int dimension() {
    return dimension;
  }

  /** For {@link Kind#FUSED}: the parts' sizes, or their ratios ({@link #byRatio()}); otherwise empty. */
  public List<Long> parts() {
    return LongStream.of(parts).boxed().toList();
  }

  /** Whether {@link #parts()} are ratios rather than sizes. */
  public boolean byRatio() {
    return ratios;
  }

  /** The unit shares are counted in (1: single rows or columns). */
  public long unit() {
    return unit;
  }

  /**
   * The ranges of {@code size} (the tensor's size along {@link #dimension()}) that rank
   * {@code rank} of {@code world} gets, in order: one for {@link Kind#ALONG}, one per part for
   * {@link Kind#FUSED}.
   *
   * @throws IllegalArgumentException saying why this size cannot be cut so (no tensor or rule
   *     named: the caller adds them)
   */
  long[][] ranges(long size, int rank, int world) {
    long[] sizes;
    if (kind == Kind.ALONG) {
      sizes = new long[] {size};
    } else if (parts.length == 0) {
      throw new IllegalArgumentException("the fused parts' sizes are not known: give them in the rule"
          + " (fused:dim" + dimension + ":SIZE,SIZE,...)");
    } else if (ratios) {
      long sum = LongStream.of(parts).sum();
      if (size % sum != 0) {
        throw new IllegalArgumentException("size " + size + " of dimension " + dimension
            + " cannot be split in the ratio " + joined(":"));
      }
      sizes = LongStream.of(parts).map(p -> size / sum * p).toArray();
    } else {
      if (LongStream.of(parts).sum() != size) {
        throw new IllegalArgumentException("the fused parts " + joined(" + ") + " = " + LongStream.of(parts).sum()
            + " do not add up to size " + size + " of dimension " + dimension);
      }
      sizes = parts;
    }
    long[][] ranges = new long[sizes.length][];
    long partStart = 0;
    for (int p = 0; p < sizes.length; p++) {
      String what = sizes.length == 1 ? "size " + sizes[p] + " of dimension " + dimension
          : "part " + (p + 1) + " of " + sizes.length + " (" + sizes[p] + " of dimension " + dimension + ")";
      if (sizes[p] % unit != 0) {
        throw new IllegalArgumentException(what + " is no whole number of units of " + unit);
      }
      long units = sizes[p] / unit;
      if (units < world) {
        throw new IllegalArgumentException(what + " has " + units + (unit == 1 ? "" : " units of " + unit)
            + ", fewer than the " + world + " ranks: a rank would get nothing");
      }
      long base = units / world;
      long extra = units % world;
      long first = rank * base + Math.min(rank, extra);
      long count = base + (rank < extra ? 1 : 0);
      ranges[p] = new long[] {partStart + first * unit, partStart + (first + count) * unit};
      partStart += sizes[p];
    }
    return ranges;
  }

  /** The split as the rules file writes it: {@code replicate}, {@code dim1}, {@code fused:dim0:2048,512,512}, with {@code /64} for a unit. */
  @Override
  public String toString() {
    String text = switch (kind) {
      case REPLICATE -> "replicate";
      case ALONG -> "dim" + dimension;
      case FUSED -> "fused:dim" + dimension + (parts.length == 0 ? "" : ratios ? ":ratio:" + joined(",") : ":" + joined(","));
    };
    return unit == 1 ? text : text + "/" + unit;
  }

  /**
   * Reads a split as {@link #toString()} writes it.
   *
   * @throws IllegalArgumentException saying what is wrong
   */
  static Split parse(String text) {
    String body = text;
    long unit = 1;
    int slash = text.lastIndexOf('/');
    if (slash >= 0) {
      body = text.substring(0, slash);
      unit = number(text.substring(slash + 1), "unit", text);
    }
    String lower = body.toLowerCase(Locale.ROOT);
    Split split;
    if (lower.equals("replicate")) {
      split = REPLICATE;
    } else if (lower.matches("dim[0-9]+")) {
      split = along((int) number(lower.substring(3), "dimension", text));
    } else if (lower.matches("fused:dim[0-9]+(:.*)?")) {
      String[] fields = lower.split(":", 3);
      int dimension = (int) number(fields[1].substring(3), "dimension", text);
      if (fields.length == 2) {
        split = fused(dimension);
      } else if (fields[2].startsWith("ratio:")) {
        split = fusedByRatio(dimension, numbers(fields[2].substring("ratio:".length()), text));
      } else {
        split = fused(dimension, numbers(fields[2], text));
      }
    } else {
      throw new IllegalArgumentException("'" + text + "' is not a split: replicate, dim0, dim1 (any dimK),"
          + " fused:dim0:SIZE,SIZE,... or fused:dim0:ratio:A,B,..., each but replicate optionally followed by /UNIT");
    }
    return unit == 1 ? split : split.inUnitsOf(unit);
  }

  private static long[] numbers(String list, String text) {
    return Arrays.stream(list.split(",", -1)).mapToLong(n -> number(n, "part", text)).toArray();
  }

  private static long number(String digits, String what, String text) {
    try {
      long value = Long.parseLong(digits.strip());
      if (value < 0 || (!what.equals("dimension") && value == 0) || (what.equals("dimension") && value > Integer.MAX_VALUE)) {
        throw new NumberFormatException();
      }
      return value;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("'" + text + "': the " + what + " '" + digits + "' is not "
          + (what.equals("dimension") ? "a dimension (0, 1, ...)" : "a positive whole number"));
    }
  }

  private String joined(String separator) {
    return LongStream.of(parts).mapToObj(Long::toString).collect(Collectors.joining(separator));
  }

  private static int checkDimension(int dimension) {
    if (dimension < 0) {
      throw new IllegalArgumentException("a dimension is 0 or more, not " + dimension);
    }
    return dimension;
  }

  private static long[] checkParts(long[] parts) {
    for (long part : parts) {
      if (part < 1) {
        throw new IllegalArgumentException("a fused part's size or ratio is at least 1, not " + part);
      }
    }
    return parts.clone();
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof Split s && kind == s.kind && dimension == s.dimension && Arrays.equals(parts, s.parts)
        && ratios == s.ratios && unit == s.unit;
  }

  @Override
  public int hashCode() {
    return Objects.hash(kind, dimension, Arrays.hashCode(parts), ratios, unit);
  }
}
