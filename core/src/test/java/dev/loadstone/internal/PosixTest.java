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
