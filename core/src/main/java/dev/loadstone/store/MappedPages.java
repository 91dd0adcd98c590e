package dev.loadstone.store;

import java.lang.foreign.MemorySegment;

/**
 * The page advice {@link VarStore#load} gives a checkpoint's mapping, for code that copies out
 * of the mapping by other means (a native library's copy routine, for instance) and wants the
 * same memory behaviour: pages mapped in ahead of reading, and dropped from the process once
 * copied, so resident memory holds one copy of the weights rather than two.
 *
 * <pre>{@code
 * MemorySegment chunk = tensor.segment().asSlice(offset, length);
 * MappedPages.populate(chunk);
 * nativeCopy(chunk);                      // reads the mapping
 * MappedPages.release(chunk);             // the OS page cache keeps the data
 * }</pre>
 *
 * <p>Both calls act on the whole pages inside the segment only, and quietly do nothing where
 * the system cannot (not Linux, an old kernel, native access not enabled for the core module).
 */
public final class MappedPages {
  private MappedPages() {}

  /**
   * Maps the pages of {@code mapped}, a slice of a file mapping, ahead of reading them
   * ({@code MADV_POPULATE_READ}): cheaper than a page fault every few pages.
   */
  public static void populate(MemorySegment mapped) {
    NativeMemory.populate(requireMapped(mapped));
  }

  /**
   * Drops the pages of {@code mapped}, a slice of a read-only file mapping, from the process
   * ({@code MADV_DONTNEED}). Reading them again reads the same data back from the page cache.
   *
   * @throws IllegalArgumentException if the segment is not a read-only file mapping: dropping
   *     pages of anonymous or writable memory would lose data
   */
  public static void release(MemorySegment mapped) {
    if (!mapped.isReadOnly()) {
      throw new IllegalArgumentException("only read-only file mappings can drop their pages");
    }
    NativeMemory.release(requireMapped(mapped));
  }

  private static MemorySegment requireMapped(MemorySegment segment) {
    if (!segment.isMapped()) {
      throw new IllegalArgumentException("not a file mapping: " + segment);
    }
    return segment;
  }
}
