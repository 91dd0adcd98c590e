package dev.loadstone.store;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * One rank's share of a checkpoint for tensor parallelism: rank {@code rank} of {@code world},
 * each tensor cut as {@code rules} say. A load with {@link LoadOptions#withPartition} fills
 * variables of the slice shapes ({@link #shapeOf}) and reads only the slices' bytes.
 *
 * <pre>{@code
 * Partition partition = new Partition(rank, world, PartitionRules.llama(32, 8, 64));
 * try (VarStore store = VarStore.fromCheckpoint(checkpoint,
 *     LoadOptions.defaults().withPartition(partition))) {
 *   // model.layers.0.self_attn.q_proj.weight: [2048 / world, 2048]
 * }
 * }</pre>
 *
 * @param rank this rank, from 0
 * @param world the number of ranks, at least 1 (a world of 1 loads whole tensors)
 * @param rules which split each tensor gets
 */
public record Partition(int rank, int world, PartitionRules rules) {
  /** Checks the values. */
  public Partition {
    Objects.requireNonNull(rules, "rules");
    if (world < 1 || rank < 0 || rank >= world) {
      throw new IllegalArgumentException("a partition's rank is in [0, world) and its world at least 1, not rank "
          + rank + " of " + world);
    }
  }

  /**
   * The part of one tensor a rank holds: along {@code dimension}, the index ranges
   * {@code ranges} (one, or one per fused part, in order), concatenated; every other dimension
   * whole.
   *
   * @param tensor the tensor's checkpoint name
   * @param dimension the dimension cut
   * @param ranges {@code [from, to)} pairs along it, in the order the slice holds them
   * @param shape the slice's shape
   * @param rule the rule that cut it
   */
  public record Slice(String tensor, int dimension, List<Range> ranges, long[] shape, PartitionRules.Rule rule) {
    /** Copies the values. */
    public Slice {
      ranges = List.copyOf(ranges);
      shape = shape.clone();
    }

    /** The slice's shape (a copy). */
    @Override
    public long[] shape() {
      return shape.clone();
    }

    @Override
    public String toString() {
      return tensor + " " + Arrays.toString(shape) + " = " + ranges + " of dimension " + dimension + " (" + rule + ")";
    }
  }

  /** Indices {@code [from, to)} of one dimension. */
  public record Range(long from, long to) {
    /** The number of indices. */
    public long length() {
      return to - from;
    }

    @Override
    public String toString() {
      return "[" + from + ", " + to + ")";
    }
  }

  /**
   * This rank's slice of a tensor of this checkpoint name and shape, or empty when the rank
   * gets it whole (no rule matches, the rule replicates, or the world is 1).
   *
   * @throws IllegalArgumentException naming the tensor and the rule when the rule cannot cut it:
   *     the tensor lacks the rule's dimension, the size is not enough units for the world, a
   *     fused tensor's parts do not add up to its size
   */
  public Optional<Slice> sliceOf(String tensorName, long[] shape) {
    Optional<PartitionRules.Rule> found = rules.ruleFor(tensorName);
    if (found.isEmpty() || found.get().split().kind() == Split.Kind.REPLICATE) {
      return Optional.empty();
    }
    PartitionRules.Rule rule = found.get();
    int dimension = rule.split().dimension();
    if (dimension >= shape.length) {
      throw refusal(tensorName, shape, rule, "it has no dimension " + dimension);
    }
    if (world == 1) {
      return Optional.empty();
    }
    long[][] cut;
    try {
      cut = rule.split().ranges(shape[dimension], rank, world);
    } catch (IllegalArgumentException e) {
      throw refusal(tensorName, shape, rule, e.getMessage());
    }
    List<Range> ranges = Arrays.stream(cut).map(r -> new Range(r[0], r[1])).toList();
    long[] sliced = shape.clone();
    sliced[dimension] = ranges.stream().mapToLong(Range::length).sum();
    return Optional.of(new Slice(tensorName, dimension, ranges, sliced, rule));
  }

  /**
   * The shape of this rank's part of a tensor: its slice's, or its own when it is whole.
   *
   * @throws IllegalArgumentException as {@link #sliceOf} does
   */
  public long[] shapeOf(String tensorName, long[] shape) {
    return sliceOf(tensorName, shape).map(Slice::shape).orElse(shape.clone());
  }

  private IllegalArgumentException refusal(String tensorName, long[] shape, PartitionRules.Rule rule, String why) {
    return new IllegalArgumentException("tensor '" + tensorName + "' " + Arrays.toString(shape)
        + " cannot be split over " + world + " ranks by the rule '" + rule + "': " + why);
  }
}
