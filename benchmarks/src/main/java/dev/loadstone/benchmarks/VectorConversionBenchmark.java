package dev.loadstone.benchmarks;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Experiment: BF16/F16 to F32 with the scalar loops of core's {@code ConvertingCopy} (copied, not
 * called) against {@code jdk.incubator.vector} versions, on {@code sourceMiB} of source data,
 * one thread. JDK 25's Vector API has no half-float lanes or HF2F conversion, so the F16 kernel
 * widens the bits to int lanes and rebuilds the float32 bits arithmetically.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class VectorConversionBenchmark {
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /** int lanes of the widest preferred shape; short lanes of half that width, same lane count. */
  private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Short> SHORTS =
      ShortVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(INTS.vectorBitSize() / 2));

  @Param("64")
  public int sourceMiB;

  private Arena arena;
  private MemorySegment bf16;
  private MemorySegment f16;
  private MemorySegment target;
  private long count;

  @Setup(Level.Trial)
  public void setUp() {
    long bytes = (long) sourceMiB << 20;
    count = bytes / 2;
    arena = Arena.ofShared();
    bf16 = arena.allocate(bytes, 64);
    f16 = arena.allocate(bytes, 64);
    ConversionBenchmark.fill(bf16, dev.loadstone.safetensors.DType.BF16, new SplittableRandom(1));
    ConversionBenchmark.fill(f16, dev.loadstone.safetensors.DType.F16, new SplittableRandom(2));
    target = arena.allocate(count * 4, 64);
    target.fill((byte) 1);
    verify();
    // Compile the kernels before the first 64 MiB call: interpreted, the Vector API is about
    // a thousand times slower, and one such call would outlast the warm-up iterations.
    for (int k = 0; k < 20_000; k++) {
      bf16ToF32Vector(bf16, target, 256);
      f16ToF32Vector(f16, target, 256);
      bf16ToF32Scalar(bf16, target, 256);
      f16ToF32Scalar(f16, target, 256);
    }
    System.out.printf("%nint species %s, short species %s%n", INTS, SHORTS);
  }

  /** Every one of the 65536 codes, through both vector kernels, against the JDK's scalar decoding. */
  private void verify() {
    try (Arena scratch = Arena.ofConfined()) {
      MemorySegment codes = scratch.allocate(65536 * 2 + 6); // + 3 elements: a scalar tail
      for (int c = 0; c < 65536 + 3; c++) {
        codes.set(SHORT, 2L * c, (short) c);
      }
      MemorySegment out = scratch.allocate(4L * (65536 + 3));
      bf16ToF32Vector(codes, out, 65536 + 3);
      for (int c = 0; c < 65536 + 3; c++) {
        check(out.get(INT, 4L * c), ((c & 0xFFFF) << 16), "BF16", c);
      }
      f16ToF32Vector(codes, out, 65536 + 3);
      for (int c = 0; c < 65536 + 3; c++) {
        check(out.get(INT, 4L * c), Float.floatToRawIntBits(Float.float16ToFloat((short) c)), "F16", c);
      }
    }
  }

  private static void check(int actual, int expected, String type, int code) {
    if (actual != expected) {
      throw new AssertionError(type + " code " + Integer.toHexString(code & 0xFFFF) + ": "
          + Integer.toHexString(actual) + " != " + Integer.toHexString(expected));
    }
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    arena.close();
  }

  @Benchmark
  public MemorySegment bf16Scalar() {
    bf16ToF32Scalar(bf16, target, count);
    return target;
  }

  @Benchmark
  public MemorySegment bf16Vector() {
    bf16ToF32Vector(bf16, target, count);
    return target;
  }

  @Benchmark
  public MemorySegment f16Scalar() {
    f16ToF32Scalar(f16, target, count);
    return target;
  }

  @Benchmark
  public MemorySegment f16Vector() {
    f16ToF32Vector(f16, target, count);
    return target;
  }

  /** As core's ConvertingCopy.bf16ToF32. */
  static void bf16ToF32Scalar(MemorySegment source, MemorySegment target, long count) {
    for (long i = 0; i < count; i++) {
      int bits = (source.get(SHORT, 2 * i) & 0xFFFF) << 16;
      target.set(INT, 4 * i, bits);
    }
  }

  /** As core's ConvertingCopy.f16ToF32. */
  static void f16ToF32Scalar(MemorySegment source, MemorySegment target, long count) {
    for (long i = 0; i < count; i++) {
      target.set(FLOAT, 4 * i, Float.float16ToFloat(source.get(SHORT, 2 * i)));
    }
  }

  /** Load N shorts, zero-extend to N ints, shift left by 16, store. */
  static void bf16ToF32Vector(MemorySegment source, MemorySegment target, long count) {
    int lanes = INTS.length();
    long upper = count - count % lanes;
    long i = 0;
    for (; i < upper; i += lanes) {
      ShortVector raw = ShortVector.fromMemorySegment(SHORTS, source, 2 * i, ByteOrder.LITTLE_ENDIAN);
      IntVector wide = (IntVector) raw.convertShape(VectorOperators.ZERO_EXTEND_S2I, INTS, 0);
      wide.lanewise(VectorOperators.LSHL, 16).intoMemorySegment(target, 4 * i, ByteOrder.LITTLE_ENDIAN);
    }
    for (; i < count; i++) {
      target.set(INT, 4 * i, (source.get(SHORT, 2 * i) & 0xFFFF) << 16);
    }
  }

  /**
   * binary16 to binary32 bits, exactly as Float.float16ToFloat (which, like the F16C
   * instruction, keeps a NaN's payload and sets its quiet bit): move exponent and mantissa up
   * 13 bits and rebias by 127 - 15; infinities and NaNs get the rest of the exponent; zeros and
   * subnormals are normalized by one float subtraction.
   */
  static void f16ToF32Vector(MemorySegment source, MemorySegment target, long count) {
    int lanes = INTS.length();
    long upper = count - count % lanes;
    long i = 0;
    for (; i < upper; i += lanes) {
      ShortVector raw = ShortVector.fromMemorySegment(SHORTS, source, 2 * i, ByteOrder.LITTLE_ENDIAN);
      IntVector h = (IntVector) raw.convertShape(VectorOperators.ZERO_EXTEND_S2I, INTS, 0);
      IntVector shifted = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13);
      IntVector exponent = shifted.and(0x0F80_0000);
      IntVector rebiased = shifted.add(0x3800_0000); // (127 - 15) << 23
      VectorMask<Integer> infOrNan = exponent.eq(0x0F80_0000);
      VectorMask<Integer> small = exponent.eq(0);
      IntVector special = rebiased.add(0x3800_0000); // all-ones float exponent
      // Subnormal or zero: (2^-14 + m * 2^-24) - 2^-14, exact in float32.
      IntVector subnormal = rebiased.add(0x0080_0000).reinterpretAsFloats()
          .sub(Float.intBitsToFloat(0x3880_0000)).reinterpretAsInts();
      VectorMask<Integer> nan = shifted.compare(VectorOperators.GT, 0x0F80_0000);
      IntVector magnitude = rebiased.blend(special, infOrNan).blend(special.or(0x0040_0000), nan)
          .blend(subnormal, small);
      IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
      magnitude.or(sign).intoMemorySegment(target, 4 * i, ByteOrder.LITTLE_ENDIAN);
    }
    for (; i < count; i++) {
      target.set(FLOAT, 4 * i, Float.float16ToFloat(source.get(SHORT, 2 * i)));
    }
  }
}
