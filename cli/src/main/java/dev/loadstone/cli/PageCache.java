package dev.loadstone.cli;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.OptionalDouble;

/**
 * Puts files into the OS page cache and measures how much of them is there, so a load
 * benchmark measures memory, not the disk.
 */
final class PageCache {
  private static final long PAGE = 4096;
  private static final MethodHandle MINCORE = lookupMincore();

  private PageCache() {}

  /** Reads every byte of the files once, with plain reads (nothing stays mapped or resident). */
  static void readThrough(List<Path> files) throws IOException {
    ByteBuffer buffer = ByteBuffer.allocateDirect(8 << 20);
    for (Path file : files) {
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
        while (channel.read(buffer.clear()) > 0) {
          // reading is the point
        }
      }
    }
  }

  /**
   * The fraction of the files' pages in the page cache ({@code mincore}), or empty where that
   * cannot be asked.
   */
  static OptionalDouble residentFraction(List<Path> files) throws IOException {
    if (MINCORE == null) {
      return OptionalDouble.empty();
    }
    long resident = 0;
    long pages = 0;
    for (Path file : files) {
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
          Arena arena = Arena.ofConfined()) {
        long size = channel.size();
        if (size == 0) {
          continue;
        }
        MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
        long count = (size + PAGE - 1) / PAGE;
        MemorySegment vector = arena.allocate(count);
        int result = (int) MINCORE.invokeExact(mapping, size, vector);
        if (result != 0) {
          return OptionalDouble.empty();
        }
        for (long i = 0; i < count; i++) {
          resident += vector.get(ValueLayout.JAVA_BYTE, i) & 1;
        }
        pages += count;
      } catch (IOException e) {
        throw e;
      } catch (Throwable e) {
        return OptionalDouble.empty();
      }
    }
    return pages == 0 ? OptionalDouble.of(1) : OptionalDouble.of((double) resident / pages);
  }

  private static MethodHandle lookupMincore() {
    try {
      Linker linker = Linker.nativeLinker();
      return linker.defaultLookup().find("mincore").map(symbol -> linker.downcallHandle(symbol,
          FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
              ValueLayout.ADDRESS))).orElse(null);
    } catch (RuntimeException | Error e) {
      return null;
    }
  }
}
