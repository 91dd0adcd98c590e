package dev.loadstone.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.loadstone.safetensors.StreamingKernels.Widening;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The streaming-store routines write exactly the definition's bits (BF16: a 16-bit shift; F16:
 * {@link Float#float16ToFloat}), exactly where asked, whatever the alignment and whether the
 * source is a file mapping; and a file truncated under them (or under the Vector API kernel) is
 * an exception, not a dead JVM.
 */
class StreamingKernelsTest {
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  /** Enough elements for the streaming path, and not a multiple of its step. */
  private static final int COUNT = (int) (StreamingKernels.MIN_TARGET_BYTES / 4) + 77;

  @TempDir Path dir;

  @ParameterizedTest
  @EnumSource(Widening.class)
  void theRoutinesAreInUseOnX8664LinuxWithTheirInstructions(Widening widening) throws IOException {
    String arch = System.getProperty("os.arch");
    Path cpuinfo = Path.of("/proc/cpuinfo");
    assumeTrue(("amd64".equals(arch) || "x86_64".equals(arch)) && Files.isReadable(cpuinfo));
    List<String> flags = List.of(Files.readAllLines(cpuinfo).stream().filter(line -> line.startsWith("flags"))
        .findFirst().orElse("").split("\\s+"));
    assumeTrue(flags.contains("avx2") && flags.contains("f16c"), "no AVX2 or F16C here");
    assertTrue(widening.available(), "x86-64 Linux with AVX2 and F16C, yet the " + widening
        + " routine did not load or failed its self-check");
  }

  @ParameterizedTest
  @EnumSource(Widening.class)
  void everyTargetAlignmentGetsExactlyTheDefinitionsBits(Widening widening) {
    assumeTrue(widening.available());
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment source = random16(arena, COUNT, 11);
      MemorySegment target = arena.allocate(4L * COUNT + 128, 64);
      for (int shift = 0; shift <= 64; shift += 4) {
        assertTrue(StreamingKernels.applies(widening, source, target, shift, COUNT));
        assertConvertsExactly(widening, source, target, shift);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(Widening.class)
  void aFileMappingIsReadThroughTheStage(Widening widening) throws IOException {
    assumeTrue(widening.available());
    Path file = dir.resolve("halves.bin");
    try (Arena arena = Arena.ofConfined()) {
      Files.write(file, random16(arena, COUNT, 12).toArray(ValueLayout.JAVA_BYTE));
    }
    try (Arena arena = Arena.ofConfined(); FileChannel channel = FileChannel.open(file)) {
      MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
      MemorySegment target = arena.allocate(4L * COUNT + 128, 64);
      assertConvertsExactly(widening, mapping, target, 0);
      assertConvertsExactly(widening, mapping, target, 36);
    }
  }

  @ParameterizedTest
  @EnumSource(Widening.class)
  void aReadOnlyTargetIsRefusedByJavaNotWrittenByNativeCode(Widening widening) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment source = random16(arena, COUNT, 13);
      MemorySegment target = arena.allocate(4L * COUNT, 64).asReadOnly();
      assertFalse(StreamingKernels.applies(widening, source, target, 0, COUNT));
      TensorView view = TensorView.of("t", dtype(widening), new long[] {COUNT}, source);
      // The JDK refuses writes to a read-only segment with either exception, by access path.
      RuntimeException e = assertThrows(RuntimeException.class, () -> view.copyRangeTo(0, COUNT, target, 0, DType.F32));
      assertTrue(e instanceof UnsupportedOperationException || e instanceof IllegalArgumentException, e.toString());
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"streaming", "vector", "copy"})
  void aFileTruncatedUnderAKernelIsAnExceptionNotACrash(String kernelName) throws IOException {
    FaultSafeStaging.Kernel kernel;
    if (kernelName.equals("copy")) {
      assumeTrue(StreamingKernels.copyApplies(MemorySegment.ofAddress(64).reinterpret(1 << 20),
          MemorySegment.ofAddress(64).reinterpret(1 << 20), 1 << 20));
      // Counts are BF16 elements; the copy moves their bytes.
      kernel = (source, sourceOffset, target, targetOffset, count) -> StreamingKernels.copy(
          source, 2 * sourceOffset, target, 2 * targetOffset, 2 * count) / 2;
    } else if (kernelName.equals("streaming")) {
      assumeTrue(Widening.BF16.available());
      kernel = (source, sourceOffset, target, targetOffset, count) -> StreamingKernels.widen(Widening.BF16,
          source, sourceOffset, target, targetOffset, count, (s, so, t, to, n) -> { });
    } else {
      assumeTrue(ConvertingCopy.VECTOR_KERNELS);
      kernel = VectorKernels::bf16ToF32;
    }
    int count = 4 << 20;
    Path file = dir.resolve("truncated.bin");
    try (Arena arena = Arena.ofConfined()) {
      Files.write(file, random16(arena, count, 14).toArray(ValueLayout.JAVA_BYTE));
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

  @org.junit.jupiter.api.Test
  void theCopyRoutineIsInUseOnX8664LinuxWithAvx() throws IOException {
    String arch = System.getProperty("os.arch");
    Path cpuinfo = Path.of("/proc/cpuinfo");
    assumeTrue(("amd64".equals(arch) || "x86_64".equals(arch)) && Files.isReadable(cpuinfo)
        && Boolean.parseBoolean(System.getProperty("loadstone.streaming", "true")));
    assumeTrue(Files.readAllLines(cpuinfo).stream().anyMatch(line -> line.startsWith("flags") && line.contains(" avx ")));
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment memory = arena.allocate(StreamingKernels.MIN_TARGET_BYTES, 64);
      assertTrue(StreamingKernels.copyApplies(memory, arena.allocate(StreamingKernels.MIN_TARGET_BYTES, 64),
          StreamingKernels.MIN_TARGET_BYTES), "x86-64 Linux with AVX, yet the copy routine did not load or failed its self-check");
    }
  }

  /** Same-dtype copies: every byte lands where it belongs, whatever the two alignments and length. */
  @ParameterizedTest
  @ValueSource(ints = {0, 1, 7, 33, 64, 100})
  void copiesPutEveryByteWhereItBelongs(int targetShift) throws IOException {
    int bytes = (int) StreamingKernels.MIN_TARGET_BYTES + 4 * 77 + 3;
    Path file = dir.resolve("bytes.bin");
    try (Arena arena = Arena.ofConfined()) {
      Files.write(file, random16(arena, bytes / 2 + 64, 15).toArray(ValueLayout.JAVA_BYTE));
    }
    try (Arena arena = Arena.ofConfined(); FileChannel channel = FileChannel.open(file)) {
      MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
      MemorySegment heapless = arena.allocate(mapping.byteSize(), 64).copyFrom(mapping);
      for (MemorySegment source : List.of(mapping, heapless)) {
        for (int sourceShift : new int[] {0, 3, 64}) {
          MemorySegment target = arena.allocate(bytes + 256L, 64);
          target.fill((byte) 0x5A);
          TensorView view = TensorView.of("t", DType.U8, new long[] {bytes}, source.asSlice(sourceShift, bytes));
          view.copyRangeTo(0, bytes, target, targetShift, DType.U8);
          assertEquals(-1, target.asSlice(targetShift, bytes).mismatch(source.asSlice(sourceShift, bytes)),
              "source shift " + sourceShift + ", " + (source.isMapped() ? "mapped" : "native"));
          for (long b = 0; b < targetShift; b++) {
            assertEquals((byte) 0x5A, target.get(ValueLayout.JAVA_BYTE, b), "no write before the start");
          }
          for (long b = targetShift + (long) bytes; b < target.byteSize(); b++) {
            assertEquals((byte) 0x5A, target.get(ValueLayout.JAVA_BYTE, b), "no write past the end");
          }
        }
      }
    }
  }

  private static DType dtype(Widening widening) {
    return widening == Widening.BF16 ? DType.BF16 : DType.F16;
  }

  /** Converts all of {@code source} to {@code target} at {@code offset}; checks every element and the bytes around. */
  private static void assertConvertsExactly(Widening widening, MemorySegment source, MemorySegment target, long offset) {
    target.fill((byte) 0x5A);
    TensorView view = TensorView.of("t", dtype(widening), new long[] {COUNT}, source.asSlice(0, 2L * COUNT));
    view.copyRangeTo(0, COUNT, target, offset, DType.F32);
    for (int i = 0; i < COUNT; i++) {
      short bits = source.get(SHORT, 2L * i);
      int expected = widening == Widening.BF16 ? (bits & 0xFFFF) << 16
          : Float.floatToRawIntBits(Float.float16ToFloat(bits));
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

  private static MemorySegment random16(Arena arena, int count, long seed) {
    Random random = new Random(seed);
    MemorySegment segment = arena.allocate(2L * count, 64);
    for (int i = 0; i < count; i++) {
      segment.set(SHORT, 2L * i, (short) random.nextInt());
    }
    return segment;
  }
}
