package dev.loadstone.store;

import dev.loadstone.internal.Posix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Optional;

/**
 * How the store uses memory so that loading stays cheap, each step degrading to plain Java
 * behaviour where the system call is unavailable (see {@link Posix}):
 *
 * <ul>
 *   <li>{@link #allocate}: large variables get their own anonymous mapping, zero-filled by the
 *       kernel, returned to the system on close, with transparent huge pages requested. Unlike
 *       {@code malloc} from several threads, this never leaves freed memory behind in per-thread
 *       heaps, so resident memory stays at the variables' size.
 *   <li>{@link #prefault}: touches fresh memory in one call ({@code MADV_POPULATE_WRITE}), as a
 *       model's initialization would.
 * </ul>
 */
final class NativeMemory {
  /** Variables at least this large get their own mapping; smaller ones come from the arena. */
  private static final long MAPPING_THRESHOLD = 1L << 20;
  private static final long HUGE_PAGE = 2L << 20;

  private NativeMemory() {}

  /**
   * Zeroed memory of {@code bytes} bytes, 64-byte aligned (page-aligned when mapped), freed when
   * {@code arena} closes.
   */
  static MemorySegment allocate(Arena arena, long bytes) {
    if (bytes >= MAPPING_THRESHOLD) {
      Optional<MemorySegment> mapped = Posix.mapAnonymous(bytes, arena);
      if (mapped.isPresent()) {
        if (bytes >= HUGE_PAGE) {
          Posix.madvise(mapped.get(), Posix.MADV_HUGEPAGE);
        }
        return mapped.get();
      }
    }
    return arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes);
  }

  /** Makes every page of fresh memory resident, as writing it would. */
  static void prefault(MemorySegment memory) {
    if (!Posix.madvise(memory, Posix.MADV_POPULATE_WRITE)) {
      for (long offset = 0; offset < memory.byteSize(); offset += Posix.PAGE_SIZE) {
        memory.set(ValueLayout.JAVA_BYTE, offset, memory.get(ValueLayout.JAVA_BYTE, offset));
      }
    }
  }
}
