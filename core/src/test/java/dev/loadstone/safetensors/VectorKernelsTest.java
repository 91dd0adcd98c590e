package dev.loadstone.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The Vector API kernels give exactly what the element-by-element definition gives. */
class VectorKernelsTest {
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  @Test
  void theTestsRunWithTheVectorModule() {
    assertTrue(ConvertingCopy.VECTOR_KERNELS, "the build passes --add-modules jdk.incubator.vector to tests");
  }

  @ParameterizedTest
  @ValueSource(strings = {"-Dloadstone.streaming=true", "-Dloadstone.streaming=false"})
  void withoutTheVectorModuleConversionsFallBackToScalarLoops(String streaming) throws Exception {
    // The child JVM has the test class path but not --add-modules jdk.incubator.vector.
    Process child = ChildJvm.start(ConversionProcess.class,
        List.of("-Xmx256m", "--enable-native-access=ALL-UNNAMED", streaming));
    String output = ChildJvm.finish(child);
    assertEquals(0, child.exitValue(), output);
    boolean streamingExpected = StreamingKernels.Widening.BF16.available() && streaming.endsWith("true");
    assertTrue(output.strip().endsWith("ok vector=false streaming=" + streamingExpected), output);
  }

  @Test
  void bf16ToF32MatchesTheBitShiftForAnyLengthAndAlignment() {
    Random random = new Random(7);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment source = arena.allocate(2 * 600 + 3);
      MemorySegment target = arena.allocate(4 * 600 + 5);
      for (long i = 0; i < source.byteSize(); i++) {
        source.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
      }
      for (int count : new int[] {0, 1, 31, 32, 33, 64, 95, 511, 600}) {
        for (int sourceShift : new int[] {0, 1, 2, 3}) {
          int targetShift = (sourceShift * 3) % 5;
          if (2L * count + sourceShift > source.byteSize()) {
            continue;
          }
          target.fill((byte) 0x55);
          TensorView view = TensorView.of("t", DType.BF16, new long[] {count},
              source.asSlice(sourceShift, 2L * count));
          view.copyRangeTo(0, count, target, targetShift, DType.F32);
          for (int i = 0; i < count; i++) {
            int expected = (source.get(SHORT, sourceShift + 2L * i) & 0xFFFF) << 16;
            assertEquals(expected, target.get(INT, targetShift + 4L * i), "count " + count + ", element " + i);
          }
          if (count < 600) {
            assertEquals((byte) 0x55, target.get(ValueLayout.JAVA_BYTE, targetShift + 4L * count), "no write past the end");
          }
        }
      }
    }
  }
}
