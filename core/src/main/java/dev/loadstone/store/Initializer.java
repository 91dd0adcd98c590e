package dev.loadstone.store;

import dev.loadstone.safetensors.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * How a new variable's memory is filled before anything is loaded into it.
 *
 * <pre>{@code
 * scope.variable("weight", DType.F32, new long[] {out, in}, Initializer.uniform(-0.1f, 0.1f, 42));
 * }</pre>
 *
 * <p>Random initializers are deterministic for a given seed. Integer and BOOL variables take
 * {@link #zeros()} or a {@link #constant} (cast to the type); the random ones need a float dtype
 * (F32, F16, BF16 or F64).
 */
public final class Initializer {
  private enum Kind { ZEROS, CONSTANT, UNIFORM, NORMAL }

  private static final Initializer ZEROS = new Initializer(Kind.ZEROS, 0, 0, 0);

  private final Kind kind;
  /** The constant, the lower bound or the mean. */
  private final double first;
  /** The upper bound or the standard deviation. */
  private final double second;
  private final long seed;

  private Initializer(Kind kind, double first, double second, long seed) {
    this.kind = kind;
    this.first = first;
    this.second = second;
    this.seed = seed;
  }

  /** All bits zero (0.0 for floats). */
  public static Initializer zeros() {
    return ZEROS;
  }

  /** Every element {@code value}. */
  public static Initializer constant(double value) {
    return new Initializer(Kind.CONSTANT, value, 0, 0);
  }

  /**
   * Independent uniform samples from {@code [low, high)}.
   *
   * @throws IllegalArgumentException unless {@code low < high}
   */
  public static Initializer uniform(double low, double high, long seed) {
    if (!(low < high)) {
      throw new IllegalArgumentException("uniform needs low < high, not [" + low + ", " + high + ")");
    }
    return new Initializer(Kind.UNIFORM, low, high, seed);
  }

  /**
   * Independent normal samples with this mean and standard deviation.
   *
   * @throws IllegalArgumentException if the standard deviation is negative or NaN
   */
  public static Initializer normal(double mean, double standardDeviation, long seed) {
    if (!(standardDeviation >= 0)) {
      throw new IllegalArgumentException("standard deviation must be >= 0, not " + standardDeviation);
    }
    return new Initializer(Kind.NORMAL, mean, standardDeviation, seed);
  }

  /** Whether this initializer can fill a variable of {@code dtype}. */
  boolean supports(DType dtype) {
    return switch (kind) {
      case ZEROS -> true;
      case CONSTANT -> dtype.isInteger() || dtype == DType.BOOL || isWritableFloat(dtype);
      case UNIFORM, NORMAL -> isWritableFloat(dtype);
    };
  }

  /** Fills {@code count} elements of {@code dtype} at the start of freshly zeroed memory. */
  void fill(MemorySegment memory, DType dtype, long count) {
    if (!supports(dtype)) {
      throw new IllegalArgumentException(this + " cannot fill a " + dtype + " variable");
    }
    switch (kind) {
      case ZEROS -> { }
      case CONSTANT -> {
        long bits = dtype.isFloatingPoint() ? encode(dtype, first) : (long) first;
        for (long i = 0; i < count; i++) {
          writeBits(memory, dtype, i, bits);
        }
      }
      case UNIFORM -> {
        SplittableRandom random = new SplittableRandom(seed);
        for (long i = 0; i < count; i++) {
          writeBits(memory, dtype, i, encode(dtype, first + (second - first) * random.nextDouble()));
        }
      }
      case NORMAL -> {
        java.util.Random random = new java.util.Random(seed);
        for (long i = 0; i < count; i++) {
          writeBits(memory, dtype, i, encode(dtype, first + second * random.nextGaussian()));
        }
      }
    }
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof Initializer that && kind == that.kind && Double.compare(first, that.first) == 0
        && Double.compare(second, that.second) == 0 && seed == that.seed;
  }

  @Override
  public int hashCode() {
    return Objects.hash(kind, first, second, seed);
  }

  @Override
  public String toString() {
    return switch (kind) {
      case ZEROS -> "zeros";
      case CONSTANT -> "constant(" + first + ")";
      case UNIFORM -> "uniform[" + first + ", " + second + ") seed " + seed;
      case NORMAL -> "normal(mean " + first + ", deviation " + second + ") seed " + seed;
    };
  }

  private static boolean isWritableFloat(DType dtype) {
    return dtype == DType.F32 || dtype == DType.F16 || dtype == DType.BF16 || dtype == DType.F64;
  }

  private static long encode(DType dtype, double value) {
    return dtype == DType.F64 ? Double.doubleToRawLongBits(value) : dtype.encodeFloat((float) value);
  }

  private static void writeBits(MemorySegment memory, DType dtype, long index, long bits) {
    switch (dtype.bits()) {
      case 8 -> memory.set(ValueLayout.JAVA_BYTE, index, (byte) bits);
      case 16 -> memory.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), index * 2, (short) bits);
      case 32 -> memory.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), index * 4, (int) bits);
      case 64 -> memory.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), index * 8, bits);
      default -> throw new IllegalArgumentException("cannot write elements of " + dtype);
    }
  }
}
