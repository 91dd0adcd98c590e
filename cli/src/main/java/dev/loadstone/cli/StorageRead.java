package dev.loadstone.cli;

import com.sun.nio.file.ExtendedOpenOption;
import dev.loadstone.internal.Posix;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The storage's own speed on a checkpoint's files, for the baseline of a cold load: the files
 * dropped from the page cache, then read front to back in 8 MiB blocks by a number of threads
 * that each take the next block (so several reads are in flight), buffered or with
 * {@code O_DIRECT}, into memory that is then thrown away. No parsing, no copying: what any
 * loader would be bound by.
 */
final class StorageRead {
  private static final int BLOCK = 8 << 20;

  /** How the files are read. */
  enum Kind {
    /** Through the page cache (with the kernel's read-ahead). */
    BUFFERED,
    /** Around the page cache, {@code O_DIRECT}. */
    DIRECT
  }

  private StorageRead() {}

  /**
   * Drops the files from the page cache, then reads them all; in GB/s, or NaN where
   * {@code kind} cannot be used (a file system without {@code O_DIRECT}).
   */
  static double gbps(List<Path> files, int threads, Kind kind) throws IOException {
    PageCache.evict(files);
    record Block(Path file, long position) {}
    List<Block> blocks = new ArrayList<>();
    long bytes = 0;
    for (Path file : files) {
      long size = Files.size(file);
      for (long position = 0; position < size; position += BLOCK) {
        blocks.add(new Block(file, position));
      }
      bytes += size;
    }
    OpenOption[] options = kind == Kind.DIRECT
        ? new OpenOption[] {StandardOpenOption.READ, ExtendedOpenOption.DIRECT}
        : new OpenOption[] {StandardOpenOption.READ};
    List<FileChannel> channels = new ArrayList<>();
    try (Arena arena = Arena.ofShared()) {
      for (Path file : files) {
        channels.add(FileChannel.open(file, options));
      }
      AtomicInteger next = new AtomicInteger();
      List<Thread> readers = new ArrayList<>();
      List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
      long start = System.nanoTime();
      for (int t = 0; t < threads; t++) {
        // Mapped, not malloc'd: freed memory then goes back to the system at once (glibc keeps
        // freed large blocks once its threshold has grown), and does not count in the load's memory.
        MemorySegment buffer = Posix.mapAnonymous(BLOCK, arena).orElseGet(() -> arena.allocate(BLOCK, 1 << 16));
        readers.add(Thread.ofPlatform().start(() -> {
          try {
            int index;
            while ((index = next.getAndIncrement()) < blocks.size()) {
              Block block = blocks.get(index);
              FileChannel channel = channels.get(files.indexOf(block.file()));
              ByteBuffer target = buffer.asByteBuffer();
              // Until the block is full or the file ends (a short read: the next position would
              // no longer be aligned for O_DIRECT).
              int read;
              while (target.hasRemaining() && (read = channel.read(target, block.position() + target.position())) > 0
                  && read % 4096 == 0) {
                // go on
              }
            }
          } catch (IOException | RuntimeException e) {
            failures.add(e);
          }
        }));
      }
      for (Thread reader : readers) {
        reader.join();
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      if (!failures.isEmpty()) {
        throw new UncheckedIOException(new IOException("reading " + files.get(0) + " failed", failures.get(0)));
      }
      return bytes / seconds / 1e9;
    } catch (UnsupportedOperationException e) {
      return Double.NaN;
    } catch (IOException e) {
      if (kind == Kind.DIRECT) {
        return Double.NaN;   // O_DIRECT refused (EINVAL on tmpfs, for one)
      }
      throw e;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Double.NaN;
    } finally {
      for (FileChannel channel : channels) {
        channel.close();
      }
    }
  }
}
