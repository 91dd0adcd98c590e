package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.internal.Posix;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.OptionalDouble;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Puts files into the OS page cache (or takes them out) and measures how much of them is there
 * and in what page size, so a load benchmark measures memory, not the disk, and says what it
 * measured.
 */
final class PageCache {
  /** The first line of each mapping in smaps: {@code start-end perms offset dev inode [path]}. */
  private static final Pattern SMAPS_HEADER = Pattern.compile("[0-9a-f]+-[0-9a-f]+ ");

  private PageCache() {}

  /**
   * Reads every tensor of a checkpoint once, the way a load reads a file that is not cached yet
   * (through a mapping advised to use 2 MiB pages, so the kernel caches it in 2 MiB folios where
   * it can), and measures how much of it the kernel then maps with 2 MiB pages. Nothing stays
   * mapped or resident in this process afterwards.
   *
   * @return the fraction of the tensors' mapped bytes in 2 MiB pages ({@code FilePmdMapped} in
   *     {@code /proc/self/smaps}), or empty where that cannot be read
   */
  static OptionalDouble readThrough(Path checkpointPath) throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(checkpointPath)) {
      List<MemorySegment> populated = new ArrayList<>();
      for (TensorView tensor : checkpoint.tensors()) {
        MemorySegment data = tensor.segment();
        if (data.byteSize() > 0) {
          Posix.madvise(data, Posix.MADV_POPULATE_READ);
          populated.add(data);
        }
      }
      OptionalDouble huge = hugePageFraction(checkpoint.files());
      populated.forEach(data -> Posix.madvise(data, Posix.MADV_DONTNEED));
      return huge;
    }
  }

  /** Sums {@code FilePmdMapped} and {@code Rss} over this process's mappings of {@code files}. */
  private static OptionalDouble hugePageFraction(List<Path> files) {
    try {
      Set<String> names = new HashSet<>();
      for (Path file : files) {
        names.add(file.toRealPath().toString());
      }
      long rss = 0;
      long pmd = 0;
      boolean inFile = false;
      for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
        if (SMAPS_HEADER.matcher(line).lookingAt()) {
          String[] fields = line.trim().split("\\s+", 6);
          inFile = fields.length == 6 && names.contains(fields[5]);
        } else if (inFile && line.startsWith("Rss:")) {
          rss += kilobytes(line);
        } else if (inFile && line.startsWith("FilePmdMapped:")) {
          pmd += kilobytes(line);
        }
      }
      return rss == 0 ? OptionalDouble.empty() : OptionalDouble.of((double) pmd / rss);
    } catch (IOException | RuntimeException e) {
      return OptionalDouble.empty();
    }
  }

  private static long kilobytes(String smapsLine) {
    String[] fields = smapsLine.trim().split("\\s+");
    return Long.parseLong(fields[1]);
  }

  /**
   * Drops the files' clean pages from the OS page cache ({@code posix_fadvise} with
   * {@code POSIX_FADV_DONTNEED}), so that the next read comes from the disk.
   *
   * @return whether every file was advised
   */
  static boolean evict(List<Path> files) {
    boolean all = true;
    for (Path file : files) {
      all &= Posix.evict(file);
    }
    return all;
  }

  /**
   * The fraction of the files' pages in the page cache ({@code mincore}), or empty where that
   * cannot be asked.
   */
  static OptionalDouble residentFraction(List<Path> files) throws IOException {
    double resident = 0;
    long bytes = 0;
    for (Path file : files) {
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
          Arena arena = Arena.ofConfined()) {
        long size = channel.size();
        if (size == 0) {
          continue;
        }
        OptionalDouble fraction = Posix.residentFraction(channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena));
        if (fraction.isEmpty()) {
          return OptionalDouble.empty();
        }
        resident += fraction.getAsDouble() * size;
        bytes += size;
      }
    }
    return bytes == 0 ? OptionalDouble.of(1) : OptionalDouble.of(resident / bytes);
  }
}
