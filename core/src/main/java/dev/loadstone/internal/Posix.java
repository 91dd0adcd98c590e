package dev.loadstone.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * The few Linux memory calls core makes through {@code java.lang.foreign}. Each one reports
 * failure (false, or empty) rather than throwing where it cannot be made: not Linux, native
 * access not enabled for the core module, an old kernel, a refusing security policy. Callers
 * then fall back to plain Java behaviour, and the first failure of each call (with its
 * {@code errno}) is said once: logged at {@code DEBUG} level to the {@code dev.loadstone}
 * {@link System.Logger} and kept in {@link #fallbacks()}, which {@code loadstone bench} prints.
 * Exported to the CLI only, for its page-cache probes and reports.
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

  private static final System.Logger LOG = System.getLogger("dev.loadstone");
  /** The first failure of each call, in the order seen; see {@link #fallbacks()}. */
  private static final Map<String, String> FALLBACKS = Collections.synchronizedMap(new LinkedHashMap<>());

  /** Where a call leaves {@code errno}, read right after it (the JVM may overwrite it later). */
  private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
  private static final VarHandle ERRNO =
      CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
  private static final MethodHandle MADVISE = downcall("madvise",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT),
      Linker.Option.captureCallState("errno"));
  private static final MethodHandle MMAP = downcall("mmap",
      FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
          ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
  private static final MethodHandle MUNMAP = downcall("munmap",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
  private static final MethodHandle MPROTECT = downcall("mprotect",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
  private static final MethodHandle OPEN = downcall("open",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
  private static final MethodHandle FSYNC = downcall("fsync", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
  private static final MethodHandle FADVISE = downcall("posix_fadvise", FunctionDescriptor.of(ValueLayout.JAVA_INT,
      ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
  private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
  private static final int O_RDONLY = 0;
  private static final int POSIX_FADV_DONTNEED = 4;
  private static final MethodHandle MINCORE = downcall("mincore",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
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
    int errno;
    try (Arena state = Arena.ofConfined()) {
      MemorySegment callState = state.allocate(CALL_STATE);
      // Passing a segment (not a raw address) keeps its arena open during the call, so the
      // range cannot be unmapped and reused by other memory meanwhile.
      if ((int) MADVISE.invokeExact(callState, segment.asSlice(start - address, end - start), end - start, advice) == 0) {
        return true;
      }
      errno = (int) ERRNO.get(callState, 0L);
    } catch (Throwable e) {
      reportFallback("madvise(" + adviceName(advice) + ")", e.toString());
      return false;
    }
    reportFallback("madvise(" + adviceName(advice) + ")", describeErrno(errno)
        + (errno == 22 && (advice == MADV_POPULATE_READ || advice == MADV_POPULATE_WRITE) ? ": the kernel does not know this advice (it needs Linux 5.14)" : ""));
    return false;
  }

  /**
   * Says once, for each {@code call}, that it was not available or failed and why: logged at
   * {@code DEBUG} level and kept for {@link #fallbacks()}. Later failures of the same call are
   * not repeated.
   *
   * @param call what could not be done, e.g. {@code madvise(MADV_POPULATE_READ)}
   * @param why the reason, e.g. {@code errno 22 (EINVAL)}
   */
  public static void reportFallback(String call, String why) {
    if (FALLBACKS.putIfAbsent(call, why) == null) {
      LOG.log(System.Logger.Level.DEBUG, () -> "Loadstone: " + call + " is unavailable or failed (" + why
          + "); carrying on without it (plain Java where it matters)");
    }
  }

  /**
   * The calls that were not available or failed in this process, each with the reason for its
   * first failure, in the order seen: what Loadstone did without (page advice, huge pages,
   * streaming-store routines), so a slower than expected load can be explained.
   */
  public static Map<String, String> fallbacks() {
    synchronized (FALLBACKS) {
      return Collections.unmodifiableMap(new LinkedHashMap<>(FALLBACKS));
    }
  }

  private static String adviceName(int advice) {
    return switch (advice) {
      case MADV_DONTNEED -> "MADV_DONTNEED";
      case MADV_HUGEPAGE -> "MADV_HUGEPAGE";
      case MADV_POPULATE_READ -> "MADV_POPULATE_READ";
      case MADV_POPULATE_WRITE -> "MADV_POPULATE_WRITE";
      default -> Integer.toString(advice);
    };
  }

  /** {@code errno 22 (EINVAL)} for the values these calls return. */
  private static String describeErrno(int errno) {
    String name = switch (errno) {
      case 1 -> "EPERM";
      case 11 -> "EAGAIN";
      case 12 -> "ENOMEM";
      case 14 -> "EFAULT";
      case 16 -> "EBUSY";
      case 22 -> "EINVAL";
      case 38 -> "ENOSYS";
      case 133 -> "EHWPOISON";
      default -> null;
    };
    return "errno " + errno + (name == null ? "" : " (" + name + ")");
  }

  /**
   * Drops ranges of one file from the page cache as they are read ("drop-behind"), so that a
   * load reading a cold file leaves the cache as it found it. Holds a descriptor of its own on
   * the file (the advice acts on the file's cache, whichever descriptor gives it).
   */
  public static final class CacheDropper implements AutoCloseable {
    private final int fd;

    private CacheDropper(int fd) {
      this.fd = fd;
    }

    /** Drops the pages of {@code [offset, offset + length)} that nobody has mapped or dirtied. */
    public void drop(long offset, long length) {
      try {
        int ignored = (int) FADVISE.invokeExact(fd, offset, length, POSIX_FADV_DONTNEED);
      } catch (Throwable e) {
        reportFallback("posix_fadvise(POSIX_FADV_DONTNEED)", e.toString());
      }
    }

    @Override
    public void close() {
      try {
        int ignored = (int) CLOSE.invokeExact(fd);
      } catch (Throwable e) {
        // nothing was written through it
      }
    }
  }

  /** A {@link CacheDropper} for {@code file}, or empty where the calls are not available. */
  public static Optional<CacheDropper> cacheDropper(java.nio.file.Path file) {
    if (OPEN == null || FADVISE == null || CLOSE == null) {
      return Optional.empty();
    }
    try (Arena arena = Arena.ofConfined()) {
      int fd = (int) OPEN.invokeExact(arena.allocateFrom(file.toString()), O_RDONLY);
      return fd < 0 ? Optional.empty() : Optional.of(new CacheDropper(fd));
    } catch (Throwable e) {
      reportFallback("open", e.toString());
      return Optional.empty();
    }
  }

  /**
   * Drops a file's pages from the page cache, so that its next read comes from the storage:
   * {@code fsync} first (dirty pages cannot be dropped), then
   * {@code posix_fadvise(POSIX_FADV_DONTNEED)}. Pages that a process has mapped stay.
   *
   * @return whether both calls succeeded
   */
  public static boolean evict(java.nio.file.Path file) {
    if (OPEN == null || FSYNC == null || FADVISE == null || CLOSE == null) {
      return false;
    }
    try (Arena arena = Arena.ofConfined()) {
      int fd = (int) OPEN.invokeExact(arena.allocateFrom(file.toString()), O_RDONLY);
      if (fd < 0) {
        return false;
      }
      try {
        return (int) FSYNC.invokeExact(fd) == 0 && (int) FADVISE.invokeExact(fd, 0L, 0L, POSIX_FADV_DONTNEED) == 0;
      } finally {
        int ignored = (int) CLOSE.invokeExact(fd);
      }
    } catch (Throwable e) {
      reportFallback("posix_fadvise(POSIX_FADV_DONTNEED)", e.toString());
      return false;
    }
  }

  /**
   * The fraction of {@code mapping}'s pages (a file mapping, or a slice of one) that are in the
   * page cache ({@code mincore}), or empty where that cannot be asked. Reads nothing from the
   * file and maps nothing in.
   */
  public static OptionalDouble residentFraction(MemorySegment mapping) {
    if (MINCORE == null || mapping.byteSize() == 0) {
      return OptionalDouble.empty();
    }
    deliverPendingFaults();
    long address = mapping.address();
    long start = address & -PAGE_SIZE;
    long end = (address + mapping.byteSize() + PAGE_SIZE - 1) & -PAGE_SIZE;
    long pages = (end - start) / PAGE_SIZE;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment vector = arena.allocate(pages);
      // The range starts at the page holding the segment's first byte, which the segment's own
      // mapping holds too (mappings start on page boundaries).
      MemorySegment range = MemorySegment.ofAddress(start).reinterpret(end - start);
      if ((int) MINCORE.invokeExact(range, end - start, vector) != 0) {
        reportFallback("mincore", "refused");
        return OptionalDouble.empty();
      }
      long resident = 0;
      for (long i = 0; i < pages; i++) {
        resident += vector.get(ValueLayout.JAVA_BYTE, i) & 1;
      }
      return OptionalDouble.of((double) resident / pages);
    } catch (Throwable e) {
      reportFallback("mincore", e.toString());
      return OptionalDouble.empty();
    }
  }

  /**
   * {@link #residentFraction(MemorySegment)} estimated from one page in every {@code stride}
   * bytes (at least one page): a handful of small {@code mincore} calls where the exact count
   * asks about every page, for deciding how to read a file rather than reporting on it.
   */
  public static OptionalDouble sampledResidentFraction(MemorySegment mapping, long stride) {
    long step = Math.max(stride, PAGE_SIZE);
    long samples = 0;
    double resident = 0;
    for (long offset = 0; offset < mapping.byteSize(); offset += step) {
      OptionalDouble page = residentFraction(mapping.asSlice(offset, 1));   // the page holding that byte
      if (page.isEmpty()) {
        return page;
      }
      resident += page.getAsDouble();
      samples++;
    }
    return samples == 0 ? OptionalDouble.empty() : OptionalDouble.of(resident / samples);
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
    reportFallback("mprotect(PROT_EXEC)", "the system refuses executable memory");
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
        reportFallback("mmap(MAP_ANONYMOUS)", "refused for " + length + " bytes");
        return Optional.empty();
      }
      return Optional.of(address.reinterpret(length));
    } catch (Throwable e) {
      reportFallback("mmap(MAP_ANONYMOUS)", e.toString());
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
  public static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
    if (!LINUX) {
      reportFallback(name, "not Linux");
      return null;
    }
    try {
      Linker linker = Linker.nativeLinker();
      SymbolLookup lookup = linker.defaultLookup();
      Optional<MemorySegment> symbol = lookup.find(name);
      if (symbol.isEmpty()) {
        reportFallback(name, "the C library has no such function");
        return null;
      }
      return linker.downcallHandle(symbol.get(), descriptor, options);
    } catch (RuntimeException | Error e) {
      // IllegalCallerException where native access is denied to the module
      // (--enable-native-access=dev.loadstone.core, or ALL-UNNAMED on the class path, allows it).
      reportFallback(name, e + " (enable native access: --enable-native-access=dev.loadstone.core,"
          + " or ALL-UNNAMED on the class path)");
      return null;
    }
  }
}
