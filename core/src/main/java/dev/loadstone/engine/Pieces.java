package dev.loadstone.engine;

import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.Partition;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Where a target's elements lie in its tensor: the source element ranges that, one after the
 * other, make up the target. A whole tensor is one piece; a slice along dimension {@code d} of
 * a tensor {@code [outer..., size, inner...]} is, for each index of the outer dimensions, one
 * piece per range of the slice (a rank's share, or its share of each fused part), so a
 * dimension-0 slice is one contiguous piece and a dimension-1 slice a strided set of row pieces.
 * Pieces that touch are merged.
 */
final class Pieces {
  /**
   * A run of elements: {@code count} elements from {@code source} in the tensor to
   * {@code destination} in the target.
   */
  record Piece(long source, long destination, long count) {}

  /** Bytes {@code [offset, offset + length)} of a tensor's data. */
  record ByteRange(long offset, long length) {}

  /** How a reader hands over the bytes of range {@code index} that it did not read into a destination. */
  @FunctionalInterface
  interface RangeUse {
    void accept(int index, MemorySegment bytes);
  }

  private final long outer;
  /** Source elements from one outer index to the next. */
  private final long period;
  /** Start of each piece within a period, and its length. */
  private final long[] starts;
  private final long[] lengths;
  /** Prefix sums of {@code lengths}: where each piece starts in the target, within one period. */
  private final long[] offsets;
  private final long perPeriod;

  private Pieces(long outer, long period, long[] starts, long[] lengths) {
    this.outer = outer;
    this.period = period;
    this.starts = starts;
    this.lengths = lengths;
    this.offsets = new long[lengths.length + 1];
    for (int i = 0; i < lengths.length; i++) {
      offsets[i + 1] = offsets[i] + lengths[i];
    }
    this.perPeriod = offsets[lengths.length];
  }

  /**
   * The pieces of {@code tensor} that {@code slice} takes (all of it without one).
   *
   * @throws IllegalArgumentException if a piece would not start and end on a byte boundary (a
   *     slice of a sub-byte dtype), naming the tensor
   */
  static Pieces of(TensorView tensor, Optional<Partition.Slice> slice) {
    if (slice.isEmpty()) {
      return new Pieces(1, tensor.elementCount(), new long[] {0}, new long[] {tensor.elementCount()});
    }
    long[] shape = tensor.shape();
    int dimension = slice.get().dimension();
    long outer = 1;
    for (int d = 0; d < dimension; d++) {
      outer *= shape[d];
    }
    long inner = 1;
    for (int d = dimension + 1; d < shape.length; d++) {
      inner *= shape[d];
    }
    List<long[]> merged = new ArrayList<>();
    for (Partition.Range range : slice.get().ranges()) {
      if (!merged.isEmpty() && merged.getLast()[1] == range.from()) {
        merged.getLast()[1] = range.to();
      } else {
        merged.add(new long[] {range.from(), range.to()});
      }
    }
    long period = shape[dimension] * inner;
    if (merged.size() == 1 && merged.getFirst()[0] == 0 && merged.getFirst()[1] == shape[dimension]) {
      return new Pieces(1, tensor.elementCount(), new long[] {0}, new long[] {tensor.elementCount()});
    }
    long rowInner = inner;
    long[] starts = merged.stream().mapToLong(r -> r[0] * rowInner).toArray();
    long[] lengths = merged.stream().mapToLong(r -> (r[1] - r[0]) * rowInner).toArray();
    long bits = tensor.dtype().bits();
    boolean aligned = (outer == 1 || (period * bits) % 8 == 0);
    for (int i = 0; i < starts.length; i++) {
      aligned &= (starts[i] * bits) % 8 == 0 && (lengths[i] * bits) % 8 == 0;
    }
    if (!aligned) {
      throw new IllegalArgumentException("the slice's pieces do not start and end on byte boundaries for "
          + tensor.dtype() + " (tensor '" + tensor.name() + "')");
    }
    return new Pieces(outer, period, starts, lengths);
  }

  /** Whether the pieces are one contiguous range of the tensor. */
  boolean contiguous() {
    return outer == 1 && starts.length == 1 || perPeriod == 0;
  }

  /** The first source element, for a {@link #contiguous()} set. */
  long firstSource() {
    return starts[0];
  }

  /** The number of elements of the target. */
  long elementCount() {
    return outer * perPeriod;
  }

  /**
   * The pieces of target elements {@code [first, first + count)}, in target order, each cut to
   * that range.
   */
  List<Piece> within(long first, long count) {
    List<Piece> pieces = new ArrayList<>();
    long end = first + count;
    long at = first;
    while (at < end) {
      long o = at / perPeriod;
      long inPeriod = at % perPeriod;
      int p = 0;
      while (offsets[p + 1] <= inPeriod) {
        p++;
      }
      long skip = inPeriod - offsets[p];
      long n = Math.min(lengths[p] - skip, end - at);
      pieces.add(new Piece(o * period + starts[p] + skip, at, n));
      at += n;
    }
    return pieces;
  }
}
