package dev.loadstone.benchmarks;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
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
 * {@link TensorView#copyTo} (which is {@code copyRangeTo(0, n, ...)}) over {@code sourceMiB} of
 * source data, one thread, off-heap memory touched beforehand. Score: ms per copy of the whole
 * buffer; GB/s = source bytes / time (see the README). {@code -jvmArgsAppend
 * -Dloadstone.streaming=false} (or {@code -Dloadstone.scalar=true}) measures the kernels that
 * run where the streaming-store routine cannot.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(Scope.Thread)
// As the launcher runs the library: the Vector API module present, native access for the
// streaming-store routine and the page advice.
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class ConversionBenchmark {
  /** {@code FROM>TO}. BF16>BF16 is the plain byte copy (memcpy) baseline. */
  @Param({"BF16>BF16", "BF16>F32", "F16>F32", "F64>F32", "F8_E4M3>F32", "F8_E5M2>F32",
      "F8_E8M0>F32", "F8_E4M3FNUZ>F32", "F8_E5M2FNUZ>F32", "F6_E2M3>F32", "F6_E3M2>F32",
      "F4>F32", "F32>BF16", "F32>F16"})
  public String conversion;

  /** Size of the source buffer. */
  @Param("64")
  public int sourceMiB;

  private Arena arena;
  private TensorView source;
  private MemorySegment target;
  private DType to;

  @Setup(Level.Trial)
  public void setUp() {
    String[] parts = conversion.split(">");
    DType from = DType.valueOf(parts[0]);
    to = DType.valueOf(parts[1]);
    // A whole number of bytes for F6 too: 4 bytes short of sourceMiB.
    long elements = ((long) sourceMiB << 20) * 8 / from.bits() / 8 * 8;
    long bytes = from.byteSize(elements);
    arena = Arena.ofShared();
    MemorySegment data = arena.allocate(bytes, 64);
    fill(data, from, new SplittableRandom(42));
    source = TensorView.of("x", from, new long[] {elements}, data);
    target = arena.allocate(elements * to.bits() / 8, 64);
    target.fill((byte) 1); // touch every page
    // Compile the copy path on small calls, then touch every byte once more.
    for (int k = 0; k < 20_000; k++) {
      source.copyRangeTo(256L * (k % 64), 256, target, 0, to);
    }
    source.copyTo(target, to);
  }

  /** Realistic values (normal, sigma 1) for the 16/32/64-bit floats; random codes otherwise. */
  static void fill(MemorySegment data, DType dtype, SplittableRandom random) {
    switch (dtype) {
      case F64 -> {
        var layout = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < data.byteSize() / 8; i++) {
          data.set(layout, i * 8, gaussian(random));
        }
      }
      case F32 -> {
        var layout = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < data.byteSize() / 4; i++) {
          data.set(layout, i * 4, (float) gaussian(random));
        }
      }
      case F16, BF16 -> {
        var layout = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < data.byteSize() / 2; i++) {
          data.set(layout, i * 2, (short) dtype.encodeFloat((float) gaussian(random)));
        }
      }
      default -> {
        for (long i = 0; i < data.byteSize(); i++) {
          data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
        }
      }
    }
  }

  private static double gaussian(SplittableRandom random) {
    // Irwin-Hall approximation: fast, and only the range of the values matters here.
    double sum = 0;
    for (int k = 0; k < 12; k++) {
      sum += random.nextDouble();
    }
    return sum - 6;
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    arena.close();
  }

  @Benchmark
  public MemorySegment copyTo() {
    source.copyTo(target, to);
    return target;
  }
}
