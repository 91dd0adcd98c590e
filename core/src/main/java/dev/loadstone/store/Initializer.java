package dev.loadstone.store;

import dev.loadstone.safetensors.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
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
public sealed interface Initializer {

  /** All bits zero (0.0 for floats). */
  static Initializer zeros() {
    return Zeros.INSTANCE;
  }

  /** Every element {@code value}. */
  static Initializer constant(double value) {
    return new Constant(value);
  }

  /** Independent uniform samples from {@code [low, high)}. */
  static Initializer uniform(double low, double high, long seed) {
    return new Uniform(low, high, seed);
  }

  /** Independent normal samples with this mean and standard deviation. */
  static Initializer normal(double mean, double standardDeviation, long seed) {
    return new Normal(mean, standardDeviation, seed);
  }

  /** All bits zero. */
  enum Zeros implements Initializer {
    /** The only instance. */
    INSTANCE
  }

  /** One value everywhere. @param value the value */
  record Constant(double value) implements Initializer {}

  /** Uniform in {@code [low, high)}. @param low lower bound @param high upper bound @param seed seed */
  record Uniform(double low, double high, long seed) implements Initializer {
    /** Checks the bounds. */
    public Uniform {
      if (!(low < high)) {
        throw new IllegalArgumentException("uniform needs low < high, not [" + low + ", " + high + ")");
      }
    }
  }

  /** Normal. @param mean mean @param standardDeviation standard deviation @param seed seed */
  record Normal(double mean, double standardDeviation, long seed) implements Initializer {
    /** Checks the deviation. */
    public Normal {
      if (!(standardDeviation >= 0)) {
        throw new IllegalArgumentException("standard deviation must be >= 0, not " + standardDeviation);
      }
    }
  }

  /** Whether this initializer can fill a variable of {@code dtype}. */
  default boolean supports(DType dtype) {
    return switch (this) {
      case Zeros z -> true;
      case Constant c -> dtype.isInteger() || dtype == DType.BOOL || isWritableFloat(dtype);
      case Uniform u -> isWritableFloat(dtype);
      case Normal n -> isWritableFloat(dtype);
    };
  }

  /**
   * Fills {@code count} elements of {@code dtype} at the start of freshly zeroed memory.
   */
  default void fill(MemorySegment memory, DType dtype, long count) {
    if (!supports(dtype)) {
      throw new IllegalArgumentException(this + " cannot fill a " + dtype + " variable");
    }
    switch (this) {
      case Zeros z -> { }
      case Constant c -> {
        long bits = dtype.isFloatingPoint() ? encode(dtype, c.value()) : (long) c.value();
        for (long i = 0; i < count; i++) {
          writeBits(memory, dtype, i, bits);
        }
      }
      case Uniform u -> {
        SplittableRandom random = new SplittableRandom(u.seed());
        for (long i = 0; i < count; i++) {
          writeBits(memory, dtype, i, encode(dtype, u.low() + (u.high() - u.low()) * random.nextDouble()));
        }
      }
      case Normal n -> {
        java.util.Random random = new java.util.Random(n.seed());
        for (long i = 0; i < count; i++) {
          writeBits(memory, dtype, i, encode(dtype, n.mean() + n.standardDeviation() * random.nextGaussian()));
        }
      }
    }
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
