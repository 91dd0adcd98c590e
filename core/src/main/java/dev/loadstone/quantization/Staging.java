package dev.loadstone.quantization;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Copies a quantized weight's elements out of their tensors into arrays, with the JVM's copy
 * routine (a fault in a file mapping becomes an exception there, and only there).
 */
final class Staging {
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private Staging() {}

  /** Elements {@code [first, first + count)} of a 32-bit tensor. */
  static void ints(TensorView tensor, long first, int[] into, int at, int count) {
    MemorySegment.copy(tensor.segment(), INT, first * 4, into, at, count);
  }

  /** Elements {@code [first, first + count)} of an 8-bit tensor. */
  static void bytes(TensorView tensor, long first, byte[] into, int at, int count) {
    MemorySegment.copy(tensor.segment(), ValueLayout.JAVA_BYTE, first, into, at, count);
  }

  /** Elements {@code [first, first + count)} of a scale tensor (F32, F16 or BF16), exactly. */
  static void floats(TensorView tensor, long first, float[] into, int at, int count) {
    DType dtype = tensor.dtype();
    switch (dtype) {
      case F32 -> MemorySegment.copy(tensor.segment(), FLOAT, first * 4, into, at, count);
      case F16, BF16 -> {
        short[] raw = new short[count];
        MemorySegment.copy(tensor.segment(), SHORT, first * 2, raw, 0, count);
        for (int i = 0; i < count; i++) {
          into[at + i] = dtype.decodeFloat(raw[i]);
        }
      }
      default -> throw new IllegalArgumentException(tensor.name() + ": " + dtype + " is not a scale dtype");
    }
  }

  /** The whole of a small integer tensor (I32 or I64) as longs. */
  static long[] integers(TensorView tensor) {
    int count = Math.toIntExact(tensor.elementCount());
    long[] values = new long[count];
    if (tensor.dtype() == DType.I64) {
      MemorySegment.copy(tensor.segment(), LONG, 0, values, 0, count);
      return values;
    }
    int[] raw = new int[count];
    ints(tensor, 0, raw, 0, count);
    for (int i = 0; i < count; i++) {
      values[i] = raw[i];
    }
    return values;
  }
}
