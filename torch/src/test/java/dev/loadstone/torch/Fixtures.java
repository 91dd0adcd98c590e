package dev.loadstone.torch;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** Test data: tensors of random bytes, files of them, and a torch tensor's values in Java. */
final class Fixtures {
  private static final Arena ARENA = Arena.ofAuto();

  private Fixtures() {}

  /** A tensor of random bytes: every bit pattern of the dtype, NaNs and infinities included. */
  static TensorView random(String name, DType dtype, long seed, long... shape) {
    long elements = 1;
    for (long dim : shape) {
      elements *= dim;
    }
    MemorySegment data = ARENA.allocate(Math.max(1, dtype.byteSize(elements)), 8).asSlice(0, dtype.byteSize(elements));
    Random random = new Random(seed);
    for (long i = 0; i < data.byteSize(); i++) {
      data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
    }
    return TensorView.of(name, dtype, shape, data);
  }

  /** Floats in [-2, 2) encoded in {@code dtype} (F32, F16, BF16 or F64). */
  static TensorView floats(String name, DType dtype, long seed, long... shape) {
    TensorView bytes = random(name, dtype, seed, shape);
    Random random = new Random(seed);
    MemorySegment data = ARENA.allocate(Math.max(1, bytes.byteSize()), 8).asSlice(0, bytes.byteSize());
    for (long i = 0; i < bytes.elementCount(); i++) {
      long bits = dtype.encodeFloat(random.nextFloat() * 4 - 2);
      switch (dtype.bits()) {
        case 16 -> data.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2 * i, (short) bits);
        case 32 -> data.set(ValueLayout.JAVA_INT_UNALIGNED, 4 * i, (int) bits);
        default -> data.set(ValueLayout.JAVA_LONG_UNALIGNED, 8 * i, bits);
      }
    }
    return TensorView.of(name, dtype, bytes.shape(), data);
  }

  static Path write(Path file, TensorView... tensors) throws IOException {
    SafeTensorsWriter.write(file, Map.of("format", "pt"), List.of(tensors));
    return file;
  }

  /** The tensor's elements as doubles, in row-major order. */
  static double[] values(Tensor tensor) {
    Tensor doubles = tensor.to(ScalarType.Double).contiguous();
    double[] values = new double[(int) doubles.numel()];
    new DoublePointer(doubles.data_ptr()).get(values);
    return values;
  }

  /** The view's elements as doubles. */
  static double[] values(TensorView view) {
    double[] values = new double[(int) view.elementCount()];
    for (int i = 0; i < values.length; i++) {
      values[i] = view.getDouble(i);
    }
    return values;
  }

  /** Equal as doubles, NaN equal to NaN. */
  static boolean same(double expected, double actual) {
    return Double.compare(expected, actual) == 0 || (Double.isNaN(expected) && Double.isNaN(actual));
  }

  static void assertSameValues(double[] expected, double[] actual, String what) {
    org.junit.jupiter.api.Assertions.assertEquals(expected.length, actual.length, what + ": element count");
    for (int i = 0; i < expected.length; i++) {
      if (!same(expected[i], actual[i])) {
        org.junit.jupiter.api.Assertions.fail(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i]);
      }
    }
  }
}
