package dev.loadstone.store;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Drops already-copied pages of a read-only file mapping from the process with
 * {@code madvise(MADV_DONTNEED)}: resident memory then holds about one copy of the weights
 * instead of two, while the file stays in the OS page cache. Degrades to doing nothing where the
 * call is unavailable (not Linux, native access not enabled).
 */
final class PageRelease {
  private static final int MADV_DONTNEED = 4;
  private static final long PAGE_SIZE = 4096;
  private static final MethodHandle MADVISE = lookup();

  private PageRelease() {}

  /** Whether releasing pages works on this platform. */
  static boolean isAvailable() {
    return MADVISE != null;
  }

  /**
   * Releases the whole pages inside {@code mapped}, a slice of a read-only file mapping. Pages
   * shared with neighbouring data are kept; a released page is read back from the page cache if
   * touched again, so this never changes what the mapping reads.
   */
  static void release(MemorySegment mapped) {
    if (MADVISE == null) {
      return;
    }
    long address = mapped.address();
    long start = (address + PAGE_SIZE - 1) & -PAGE_SIZE;
    long end = (address + mapped.byteSize()) & -PAGE_SIZE;
    if (end <= start) {
      return;
    }
    try {
      // Passing the segment (not a raw address) keeps its arena open during the call, so the
      // range cannot be unmapped and reused by other memory meanwhile.
      int ignored = (int) MADVISE.invokeExact(mapped.asSlice(start - address, end - start), end - start, MADV_DONTNEED);
    } catch (Throwable e) {
      // Releasing pages is an optimization; the copy is already done.
    }
  }

  private static MethodHandle lookup() {
    if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
      return null;
    }
    try {
      Linker linker = Linker.nativeLinker();
      return linker.defaultLookup().find("madvise").map(symbol -> linker.downcallHandle(symbol,
          FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT))).orElse(null);
    } catch (RuntimeException | Error e) {
      return null;
    }
  }
}
