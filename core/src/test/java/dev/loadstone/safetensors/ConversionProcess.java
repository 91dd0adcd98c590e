package dev.loadstone.safetensors;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Converts BF16 to F32 through {@link TensorView#copyRangeTo}, small and large (the streaming
 * routine's size), and prints {@code ok} or the first wrong element: run in a JVM of its own
 * to check the conversion in a configuration the test JVM does not have (no Vector API module).
 */
public final class ConversionProcess {
  private ConversionProcess() {}

  public static void main(String[] args) {
    ValueLayout.OfShort shorts = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    ValueLayout.OfInt ints = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    for (int count : new int[] {100, (int) (StreamingKernels.MIN_TARGET_BYTES / 4) + 33}) {
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment source = arena.allocate(2L * count);
        for (int i = 0; i < count; i++) {
          source.set(shorts, 2L * i, (short) (i * 40_503));
        }
        MemorySegment target = arena.allocate(4L * count, 64);
        TensorView.of("t", DType.BF16, new long[] {count}, source).copyRangeTo(0, count, target, 0, DType.F32);
        for (int i = 0; i < count; i++) {
          int expected = (source.get(shorts, 2L * i) & 0xFFFF) << 16;
          if (target.get(ints, 4L * i) != expected) {
            System.out.println("element " + i + " of " + count + ": " + target.get(ints, 4L * i) + " != " + expected);
            return;
          }
        }
      }
    }
    System.out.println("ok vector=" + ConvertingCopy.VECTOR_KERNELS + " streaming=" + StreamingKernels.Widening.BF16.available());
  }
}
