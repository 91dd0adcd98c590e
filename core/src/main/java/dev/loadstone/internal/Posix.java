package dev.loadstone.internal;

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
 * The few Linux memory calls core makes through {@code java.lang.foreign}. Each one reports
 * failure (false, or empty) rather than throwing where it cannot be made: not Linux, native
 * access not enabled for the core module, an old kernel, a refusing security policy. Callers
 * then fall back to plain Java behaviour. Exported to the CLI only, for its page-cache probes.
 */
public final class Posix {
  /** The page size these calls round to (x86-64 and the usual arm64 kernels). */
  public static final long PAGE_SIZE = 4096;

  /** Drop the pages from the process; file pages stay in the page cache. */
  public static final int MADV_DONTNEED = 4;
  /** Back the range with 2 MiB pages where possible (anonymous memory and page-cache folios). */
  public static final int MADV_HUGEPAGE = 14;
  /** Map every page of the range now, reading file pages in (Linux 5.14). */
  public static final int MADV_POPULATE_READ = 22;
  /** Make every page of the range resident and writable now (Linux 5.14). */
  public static final int MADV_POPULATE_WRITE = 23;

  private static final int PROT_READ = 0x1;
  private static final int PROT_WRITE = 0x2;
  private static final int PROT_EXEC = 0x4;
  private static final int MAP_PRIVATE = 0x02;
  private static final int MAP_ANONYMOUS = 0x20;

  private static final boolean LINUX =
      System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux");

  private static final MethodHandle MADVISE = downcall("madvise",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
  private static final MethodHandle MMAP = downcall("mmap",
      FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
          ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
  private static final MethodHandle MUNMAP = downcall("munmap",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
  private static final MethodHandle MPROTECT = downcall("mprotect",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
  /** C's {@code abs}: a native call with no effect, for {@link #deliverPendingFaults()}. */
  private static final MethodHandle ABS = downcall("abs", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

  private Posix() {}

  /**
   * Makes the JVM throw, here, a fault from an earlier read of a file mapping on this thread.
   *
   * <p>When the file behind a mapping shrinks, reading the lost pages faults. In the JVM's copy
   * routine, compiled code learns of the fault from an asynchronous exception ({@link
   * InternalError}) thrown at the next safepoint poll. If that poll falls inside the linker's
   * acquisition of a segment for a native call, the acquisition is never released, and the
   * segment's arena can then never be closed. Calling this between a copy out of a mapping and
   * a native call that takes segments moves the delivery here: returning from native code is
   * where the JVM throws pending asynchronous exceptions, and this call takes no segment.
   */
  public static void deliverPendingFaults() {
    if (ABS != null) {
      try {
        int ignored = (int) ABS.invokeExact(0);
      } catch (RuntimeException | Error e) {
        throw e;
      } catch (Throwable e) {
        throw new IllegalStateException(e);
      }
    }
  }

  /** Whether this is Linux, where the calls of this class exist. */
  public static boolean isLinux() {
    return LINUX;
  }

  /**
   * {@code madvise} on the whole pages inside {@code segment} (a partial page at either end is
   * left alone, as it may hold other data).
   *
   * @return whether the advice was given (true also when no whole page lies inside)
   */
  public static boolean madvise(MemorySegment segment, int advice) {
    if (MADVISE == null || segment.byteSize() == 0) {
      return false;
    }
    deliverPendingFaults();
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

  /**
   * A private anonymous mapping of {@code bytes} (rounded up to whole pages), zero-filled by the
   * kernel and unmapped when {@code arena} closes.
   */
  public static Optional<MemorySegment> mapAnonymous(long bytes, Arena arena) {
    long length = (bytes + PAGE_SIZE - 1) & -PAGE_SIZE;
    Optional<MemorySegment> mapping = map(length, PROT_READ | PROT_WRITE);
    return mapping.map(memory -> memory.reinterpret(length, arena, Posix::unmap).asSlice(0, bytes));
  }

  /**
   * Machine code for this processor in memory it may execute: written to a fresh mapping, which
   * is then made read-only and executable (never writable and executable at once). The mapping
   * lives as long as the process.
   *
   * @return the code's address, or empty where the system refuses executable memory
   */
  public static Optional<MemorySegment> mapExecutable(byte[] code) {
    long length = (code.length + PAGE_SIZE - 1) & -PAGE_SIZE;
    Optional<MemorySegment> mapping = map(length, PROT_READ | PROT_WRITE);
    if (mapping.isEmpty() || MPROTECT == null) {
      mapping.ifPresent(Posix::unmap);
      return Optional.empty();
    }
    MemorySegment page = mapping.get();
    MemorySegment.copy(MemorySegment.ofArray(code), 0, page, 0, code.length);
    try {
      if ((int) MPROTECT.invokeExact(page, length, PROT_READ | PROT_EXEC) == 0) {
        return Optional.of(page);
      }
    } catch (Throwable e) {
      // fall through: refused
    }
    unmap(page);
    return Optional.empty();
  }

  private static Optional<MemorySegment> map(long length, int protection) {
    if (MMAP == null || MUNMAP == null) {
      return Optional.empty();
    }
    try {
      MemorySegment address = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, length, protection,
          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
      if (address.address() == -1L || address.address() == 0L) {
        return Optional.empty();
      }
      return Optional.of(address.reinterpret(length));
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

  /**
   * A downcall handle for the C library function {@code name}, or {@code null} where it cannot
   * be had (not Linux, no such symbol, native access refused).
   */
  public static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
    if (!LINUX) {
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
