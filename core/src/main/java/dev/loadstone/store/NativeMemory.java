package dev.loadstone.store;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;
import java.util.Optional;

/**
 * The few Linux memory calls that make loading cheap, each degrading to plain Java behaviour
 * where it is unavailable (not Linux, native access not enabled, an old kernel):
 *
 * <ul>
 *   <li>{@link #allocate}: large variables get their own anonymous mapping ({@code mmap}),
 *       zero-filled by the kernel, returned to the system on close, with transparent huge pages
 *       requested. Unlike {@code malloc} from several threads, this never leaves freed memory
 *       behind in per-thread heaps, so resident memory stays at the variables' size.
 *   <li>{@link #prefault}: touches fresh memory in one call ({@code MADV_POPULATE_WRITE}), as a
 *       model's initialization would.
 *   <li>{@link #populate}: maps a file range's pages ahead of reading ({@code MADV_POPULATE_READ}),
 *       cheaper than a page fault every few pages.
 *   <li>{@link #release}: drops copied file pages from the process ({@code MADV_DONTNEED}), so
 *       resident memory holds one copy of the weights, not two; the OS page cache keeps them.
 * </ul>
 */
final class NativeMemory {
  private static final long PAGE_SIZE = 4096;
  /** Variables at least this large get their own mapping; smaller ones come from the arena. */
  private static final long MAPPING_THRESHOLD = 1L << 20;

  private static final int PROT_READ_WRITE = 0x1 | 0x2;
  private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
  private static final int MADV_DONTNEED = 4;
  private static final int MADV_HUGEPAGE = 14;
  private static final int MADV_POPULATE_READ = 22;
  private static final int MADV_POPULATE_WRITE = 23;

  private static final MethodHandle MADVISE = function("madvise",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
  private static final MethodHandle MMAP = function("mmap",
      FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
          ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
  private static final MethodHandle MUNMAP = function("munmap",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));

  private NativeMemory() {}

  /**
   * Zeroed memory of {@code bytes} bytes, 64-byte aligned (page-aligned when mapped), freed when
   * {@code arena} closes.
   */
  static MemorySegment allocate(Arena arena, long bytes) {
    if (bytes >= MAPPING_THRESHOLD && MMAP != null && MUNMAP != null) {
      Optional<MemorySegment> mapped = map(arena, bytes);
      if (mapped.isPresent()) {
        return mapped.get();
      }
    }
    return arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes);
  }

  private static Optional<MemorySegment> map(Arena arena, long bytes) {
    long length = (bytes + PAGE_SIZE - 1) & -PAGE_SIZE;
    try {
      MemorySegment address = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, length,
          PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
      if (address.address() == -1L || address.address() == 0L) {
        return Optional.empty();
      }
      MemorySegment memory = address.reinterpret(length, arena, NativeMemory::unmap);
      if (length >= 2L << 20) {
        advise(memory, MADV_HUGEPAGE);
      }
      return Optional.of(memory.asSlice(0, bytes));
    } catch (Throwable e) {
      return Optional.empty();
    }
  }

  private static void unmap(MemorySegment mapping) {
    try {
      int ignored = (int) MUNMAP.invokeExact(mapping, mapping.byteSize());
    } catch (Throwable e) {
      // nothing sensible to do while an arena closes
    }
  }

  /** Makes every page of fresh memory resident, as writing it would. */
  static void prefault(MemorySegment memory) {
    if (!advise(memory, MADV_POPULATE_WRITE)) {
      for (long offset = 0; offset < memory.byteSize(); offset += PAGE_SIZE) {
        memory.set(ValueLayout.JAVA_BYTE, offset, memory.get(ValueLayout.JAVA_BYTE, offset));
      }
    }
  }

  /** Maps the pages wholly inside {@code mapped}, a slice of a file mapping, ahead of reading. */
  static void populate(MemorySegment mapped) {
    advise(mapped, MADV_POPULATE_READ);
  }

  /**
   * Drops the pages wholly inside {@code mapped}, a slice of a read-only file mapping, from the
   * process. Pages shared with neighbouring data are kept; a dropped page is read back from the
   * page cache if touched again, so this never changes what the mapping reads.
   */
  static void release(MemorySegment mapped) {
    advise(mapped, MADV_DONTNEED);
  }

  /** madvise on the whole pages inside {@code segment}; false if it could not be done. */
  private static boolean advise(MemorySegment segment, int advice) {
    if (MADVISE == null || segment.byteSize() == 0) {
      return false;
    }
    long address = segment.address();
    long start = (address + PAGE_SIZE - 1) & -PAGE_SIZE;
    long end = (address + segment.byteSize()) & -PAGE_SIZE;
    if (end <= start) {
      return true;
    }
    try {
      // Passing a segment (not a raw address) keeps its arena open during the call, so the
      // range cannot be unmapped and reused by other memory meanwhile.
      return (int) MADVISE.invokeExact(segment.asSlice(start - address, end - start), end - start, advice) == 0;
    } catch (Throwable e) {
      return false;
    }
  }

  private static MethodHandle function(String name, FunctionDescriptor descriptor) {
    if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) {
      return null;
    }
    try {
      Linker linker = Linker.nativeLinker();
      SymbolLookup lookup = linker.defaultLookup();
      return lookup.find(name).map(symbol -> linker.downcallHandle(symbol, descriptor)).orElse(null);
    } catch (RuntimeException | Error e) {
      return null;
    }
  }
}
