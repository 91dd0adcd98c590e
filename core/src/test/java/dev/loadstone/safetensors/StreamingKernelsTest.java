package dev.loadstone.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The streaming-store BF16 -> F32 routine writes exactly the definition's bits, exactly where
 * asked, whatever the alignment and whether the source is a file mapping; and a file truncated
 * under it (or under the Vector API kernel) is an exception, not a dead JVM.
 */
class StreamingKernelsTest {
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  /** Enough elements for the streaming path, and not a multiple of its step. */
  private static final int COUNT = (int) (StreamingKernels.MIN_TARGET_BYTES / 4) + 77;

  @TempDir Path dir;

  @Test
  void theRoutineIsInUseOnX8664LinuxWithAvx2() throws IOException {
    String arch = System.getProperty("os.arch");
    Path cpuinfo = Path.of("/proc/cpuinfo");
    assumeTrue(("amd64".equals(arch) || "x86_64".equals(arch)) && Files.isReadable(cpuinfo));
    boolean avx2 = Files.readAllLines(cpuinfo).stream().filter(line -> line.startsWith("flags"))
        .findFirst().map(line -> line.contains(" avx2")).orElse(false);
    assumeTrue(avx2, "no AVX2 here");
    assertTrue(StreamingKernels.AVAILABLE, "x86-64 Linux with AVX2, yet the routine did not load or failed its self-check");
  }

  @Test
  void everyTargetAlignmentGetsExactlyTheShiftedBits() {
    assumeTrue(StreamingKernels.AVAILABLE);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment source = randomBf16(arena, COUNT, 11);
      MemorySegment target = arena.allocate(4L * COUNT + 128, 64);
      for (int shift = 0; shift <= 64; shift += 4) {
        assertTrue(StreamingKernels.applies(source, target, shift, COUNT));
        assertConvertsExactly(source, target, shift);
      }
    }
  }

  @Test
  void aFileMappingIsReadThroughTheStage() throws IOException {
    assumeTrue(StreamingKernels.AVAILABLE);
    Path file = dir.resolve("bf16.bin");
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment data = randomBf16(arena, COUNT, 12);
      Files.write(file, data.toArray(ValueLayout.JAVA_BYTE));
    }
    try (Arena arena = Arena.ofConfined(); FileChannel channel = FileChannel.open(file)) {
      MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
      MemorySegment target = arena.allocate(4L * COUNT + 128, 64);
      assertConvertsExactly(mapping, target, 0);
      assertConvertsExactly(mapping, target, 36);
    }
  }

  @Test
  void aReadOnlyTargetIsRefusedByJavaNotWrittenByNativeCode() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment source = randomBf16(arena, COUNT, 13);
      MemorySegment target = arena.allocate(4L * COUNT, 64).asReadOnly();
      assertTrue(!StreamingKernels.applies(source, target, 0, COUNT));
      TensorView view = TensorView.of("t", DType.BF16, new long[] {COUNT}, source);
      assertThrows(UnsupportedOperationException.class, () -> view.copyRangeTo(0, COUNT, target, 0, DType.F32));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"streaming", "vector"})
  void aFileTruncatedUnderAKernelIsAnExceptionNotACrash(String kernelName) throws IOException {
    Staging.Kernel kernel = kernelName.equals("streaming") ? StreamingKernels::bf16ToF32 : VectorKernels::bf16ToF32;
    assumeTrue(kernelName.equals("streaming") ? StreamingKernels.AVAILABLE : Conversion.VECTOR_KERNELS);
    int count = 4 << 20;
    Path file = dir.resolve("truncated.bin");
    try (Arena arena = Arena.ofConfined()) {
      Files.write(file, randomBf16(arena, count, 14).toArray(ValueLayout.JAVA_BYTE));
    }
    try (Arena arena = Arena.ofConfined(); FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
      MemorySegment target = arena.allocate(4L * count, 64);
      for (int round = 0; round < 20; round++) {
        kernel.convert(mapping, 0, target, 0, count); // warm: compiled code faults differently
      }
      try (FileChannel writer = FileChannel.open(file, StandardOpenOption.WRITE)) {
        writer.truncate(channel.size() / 3);
      }
      assertThrows(InternalError.class, () -> kernel.convert(mapping, 0, target, 0, count));
    }
  }

  /** Converts all of {@code source} to {@code target} at {@code offset}; checks every element and the bytes around. */
  private static void assertConvertsExactly(MemorySegment source, MemorySegment target, long offset) {
    target.fill((byte) 0x5A);
    TensorView view = TensorView.of("t", DType.BF16, new long[] {COUNT}, source.asSlice(0, 2L * COUNT));
    view.copyRangeTo(0, COUNT, target, offset, DType.F32);
    for (int i = 0; i < COUNT; i++) {
      int expected = (source.get(SHORT, 2L * i) & 0xFFFF) << 16;
      int actual = target.get(INT, offset + 4L * i);
      if (expected != actual) {
        assertEquals(expected, actual, "element " + i + " at target offset " + offset);
      }
    }
    for (long b = 0; b < offset; b++) {
      assertEquals((byte) 0x5A, target.get(ValueLayout.JAVA_BYTE, b), "no write before the start");
    }
    for (long b = offset + 4L * COUNT; b < target.byteSize(); b++) {
      assertEquals((byte) 0x5A, target.get(ValueLayout.JAVA_BYTE, b), "no write past the end");
    }
  }

  private static MemorySegment randomBf16(Arena arena, int count, long seed) {
    Random random = new Random(seed);
    MemorySegment segment = arena.allocate(2L * count, 64);
    for (int i = 0; i < count; i++) {
      segment.set(SHORT, 2L * i, (short) random.nextInt());
    }
    return segment;
  }
}
