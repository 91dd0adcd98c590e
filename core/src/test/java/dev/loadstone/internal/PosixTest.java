package dev.loadstone.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PosixTest {
  @TempDir Path dir;

  /** The load's page advice: mapping pages in and dropping them never changes what is read. */
  @Test
  void releasedFilePagesReadBackTheSameData() throws IOException {
    assumeTrue(Posix.isLinux());
    MemorySegment data = Arena.ofAuto().allocate(3 * 4096 + 100);
    for (long i = 0; i < data.byteSize(); i++) {
      data.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31));
    }
    Path file = dir.resolve("t.safetensors");
    SafeTensorsWriter.write(file, null, List.of(TensorView.of("x", DType.U8, new long[] {data.byteSize()}, data)));
    try (SafeTensors tensors = SafeTensors.open(file)) {
      MemorySegment mapped = tensors.tensor("x").segment();
      assertTrue(Posix.madvise(mapped, Posix.MADV_POPULATE_READ)
          || Posix.fallbacks().containsKey("madvise(MADV_POPULATE_READ)"));
      assertTrue(Posix.madvise(mapped, Posix.MADV_DONTNEED));
      assertEquals(-1L, mapped.mismatch(data));
    }
  }

  /** The sampled residency that AUTO decides on agrees with the exact count, cold and warm. */
  @Test
  void sampledResidencyAgreesWithTheExactCount() throws IOException {
    assumeTrue(Posix.isLinux());
    Path file = dir.resolve("data.bin");
    int size = 32 << 20;
    java.nio.file.Files.write(file, new byte[size]);
    assumeTrue(Posix.evict(file), "the page cache cannot be dropped here");
    try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(file); Arena arena = Arena.ofConfined()) {
      MemorySegment mapping = channel.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, size, arena);
      double coldExact = Posix.residentFraction(mapping).orElseThrow();
      assumeTrue(coldExact < 0.1, "the file stayed cached");
      assertEquals(coldExact, Posix.sampledResidentFraction(mapping, 1 << 20).orElseThrow(), 0.1, "cold");
      channel.read(java.nio.ByteBuffer.allocate(size / 2), 0);   // the first half into the cache
      double halfExact = Posix.residentFraction(mapping).orElseThrow();
      assertTrue(halfExact > 0.4 && halfExact < 0.95, "the half read and what the kernel read ahead: " + halfExact);
      assertEquals(halfExact, Posix.sampledResidentFraction(mapping, 1 << 20).orElseThrow(), 0.1, "half cached");
      assertEquals(1.0, Posix.sampledResidentFraction(mapping.asSlice(0, 4096), 1 << 20).orElseThrow(),
          "a slice smaller than the stride is asked about its first page");
    }
  }

  /** A call that fails is said once, with its errno, and the caller carries on. */
  @Test
  void aFailingCallIsReportedOnceWithItsErrno() {
    assumeTrue(Posix.isLinux());
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment memory = arena.allocate(4 * 4096, 4096);
      int unknownAdvice = 9999;
      assertFalse(Posix.madvise(memory, unknownAdvice));
      assertEquals("errno 22 (EINVAL)", Posix.fallbacks().get("madvise(9999)"));
      Posix.reportFallback("madvise(9999)", "a later failure");
      assertEquals("errno 22 (EINVAL)", Posix.fallbacks().get("madvise(9999)"), "the first failure is kept");
      assertThrows(UnsupportedOperationException.class, () -> Posix.fallbacks().clear());
    }
  }
}
