package dev.loadstone.engine;

import com.sun.nio.file.ExtendedOpenOption;
import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.internal.Posix;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorSource;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.ReadMode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntFunction;

/**
 * Reads chunks of a checkpoint's files with positional reads instead of through the mapping,
 * for a load of files that are not in the page cache: one large read per chunk, many in
 * flight (no page faults, no read-ahead guesses), either {@link ReadMode#POSITIONAL} (buffered,
 * each range dropped from the page cache once read, straight into the destination where the
 * bytes need no conversion) or {@link ReadMode#DIRECT} ({@code O_DIRECT}, aligned reads into a
 * staging buffer).
 *
 * <p>Each reading thread holds at most one staging buffer of a chunk's size at a time, so the
 * memory this takes is bounded by the number of readers, whatever the checkpoint's size. A read
 * that comes back short (the file was truncated since it was opened) or fails ({@code EIO})
 * throws {@link UncheckedIOException} naming the file; a file replaced since it was opened is
 * refused when it is opened for reading.
 */
final class PositionalReads implements AutoCloseable {
  /**
   * Reads in flight: a device needs many outstanding requests to reach its throughput, far
   * more than the cores that convert. Measured on this project's machine (README): 32 readers
   * of 4 MiB read a cold file 2-3x faster than 8 or 16 of 8 MiB.
   */
  static final int READERS = Integer.getInteger("loadstone.readers", 32);
  /**
   * Readers of {@link ReadMode#DIRECT}, each of which always holds a staging buffer: as fast as
   * 32 there (README), at half the memory.
   */
  static final int DIRECT_READERS = Integer.getInteger("loadstone.directReaders", 16);

  /** How many threads read at once in {@code mode}. */
  static int readers(ReadMode mode) {
    return mode == ReadMode.DIRECT ? DIRECT_READERS : READERS;
  }
  /** Bytes per read. */
  static final long CHUNK_BYTES = 4L << 20;
  /** The largest alignment {@code O_DIRECT} is used with. */
  private static final long MAX_ALIGNMENT = 64 << 10;

  /** A file opened for reading: its channel, the alignment its reads need (1: buffered), and its drop-behind. */
  private record Reader(FileChannel channel, long alignment, Optional<Posix.CacheDropper> dropper) {}

  private final ReadMode mode;
  private final Set<Path> cached;
  private final Map<Path, SafeTensors> files = new HashMap<>();
  private final Map<Path, Reader> readers = new ConcurrentHashMap<>();
  private final StagingBuffers stages;

  /**
   * @param source the checkpoint the tensors belong to
   * @param mode {@link ReadMode#POSITIONAL} or {@link ReadMode#DIRECT}
   * @param readers how many threads read at once (one staging buffer each, made when first needed)
   * @param cached files in the page cache, read buffered and left there (no drop-behind, no
   *     {@code O_DIRECT})
   */
  PositionalReads(TensorSource source, ReadMode mode, int readers, Set<Path> cached) {
    this.mode = mode;
    this.cached = Set.copyOf(cached);
    List<SafeTensors> opened = switch (source) {
      case Checkpoint checkpoint -> checkpoint.shards();
      case SafeTensors file -> List.of(file);
      default -> List.of();
    };
    for (SafeTensors file : opened) {
      files.put(file.path(), file);
    }
    // A cached file's chunks are the mapping's (ChunkedCopy.CHUNK_BYTES of the wider dtype).
    long largest = cached.isEmpty() ? CHUNK_BYTES : Math.max(CHUNK_BYTES, ChunkedCopy.CHUNK_BYTES);
    stages = new StagingBuffers(readers, largest + 64 + 2 * MAX_ALIGNMENT, MAX_ALIGNMENT);
  }

  /**
   * Reads byte ranges of {@code tensor}'s data (ascending, not overlapping): each into
   * {@code destinations.apply(index)} if given and the reads need no alignment, else into a
   * staging buffer, whose bytes of that range {@code use} then gets (to copy or convert from)
   * before it is reused. With {@code O_DIRECT}, ranges whose aligned blocks touch or overlap
   * (the row pieces of a dimension-1 slice) are read together, each block once.
   *
   * @param tiling whether the load's reads tile the file (a load of whole tensors): then each
   *     read drops the 4 MiB blocks it finishes from the page cache, else just its own pages
   * @return the bytes read from the file (with {@code O_DIRECT}, whole aligned blocks)
   * @throws UncheckedIOException if a read fails or comes back short, naming the file
   */
  long read(TensorView tensor, List<Pieces.ByteRange> ranges, boolean tiling,
      IntFunction<Optional<MemorySegment>> destinations, Pieces.RangeUse use) {
    Path path = tensor.file().orElseThrow();
    if (!tensor.segment().scope().isAlive()) {
      // The checkpoint was closed: its file is not read on behind its back.
      throw new IllegalStateException(path + ": the checkpoint is closed");
    }
    SafeTensors file = files.get(path);
    long base = file.dataOffset() + tensor.dataOffsets()[0];
    long bytesRead = 0;
    try {
      Reader reader = readers.computeIfAbsent(path, p -> open(file));
      long alignment = reader.alignment();
      for (int i = 0; i < ranges.size(); ) {
        long position = base + ranges.get(i).offset();
        long length = ranges.get(i).length();
        Optional<MemorySegment> destination = alignment == 1 ? destinations.apply(i) : Optional.empty();
        if (destination.isPresent()) {
          readFully(reader, tensor, destination.get(), position, position, length, tiling);
          bytesRead += length;
          i++;
          continue;
        }
        // The ranges read at once: this one, and the following ones whose blocks touch its.
        long start = position & -alignment;
        long end = (position + length + alignment - 1) & -alignment;
        int last = i;
        while (alignment > 1 && last + 1 < ranges.size()) {
          long next = base + ranges.get(last + 1).offset();
          long nextEnd = (next + ranges.get(last + 1).length() + alignment - 1) & -alignment;
          if ((next & -alignment) > end || nextEnd - start > CHUNK_BYTES + 2 * MAX_ALIGNMENT) {
            break;
          }
          end = nextEnd;
          last++;
        }
        long from = start;
        long to = end;
        int first = i;
        int through = last;
        stages.withBuffer(to - from, stage -> {
          try {
            long readEnd = base + ranges.get(through).offset() + ranges.get(through).length();
            readFully(reader, tensor, stage.asSlice(0, to - from), from, position, readEnd - position, tiling);
          } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
          }
          for (int r = first; r <= through; r++) {
            use.accept(r, stage.asSlice(base + ranges.get(r).offset() - from, ranges.get(r).length()));
          }
        });
        bytesRead += alignment == 1 ? length : to - from;
        i = last + 1;
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e.getMessage(), e);
    }
    return bytesRead;
  }

  /**
   * Where to cut a tensor for positional reads: the element indices at which the file's
   * {@link #CHUNK_BYTES} blocks start (rounded up to a whole element, or to 64 elements for
   * sub-byte dtypes, which keeps every piece byte-aligned), then its element count. Every piece
   * is at most a block, plus under 64 elements.
   */
  static List<Long> blockBoundaries(TensorSource source, TensorView tensor) {
    long fileStart = dataOffset(source, tensor) + tensor.dataOffsets()[0];
    long bits = tensor.dtype().bits();
    long grain = bits % 8 == 0 ? 1 : 64;
    long elements = tensor.elementCount();
    List<Long> boundaries = new java.util.ArrayList<>();
    for (long block = (fileStart / CHUNK_BYTES + 1) * CHUNK_BYTES; ; block += CHUNK_BYTES) {
      long element = Math.ceilDiv(Math.ceilDiv((block - fileStart) * 8, bits), grain) * grain;
      if (element >= elements) {
        break;
      }
      if (boundaries.isEmpty() || element > boundaries.getLast()) {
        boundaries.add(element);
      }
    }
    boundaries.add(elements);
    return boundaries;
  }

  private static long dataOffset(TensorSource source, TensorView tensor) {
    Path path = tensor.file().orElseThrow();
    return switch (source) {
      case Checkpoint checkpoint -> checkpoint.shards().stream().filter(s -> s.path().equals(path))
          .findFirst().orElseThrow().dataOffset();
      case SafeTensors file -> file.dataOffset();
      default -> throw new IllegalArgumentException("not a checkpoint of files: " + source);
    };
  }

  /**
   * Reads {@code [start, start + target.byteSize())} of the file into {@code target}, of which
   * the bytes {@code [position, position + length)} must arrive; then drops the range from the
   * page cache where the reads are buffered.
   */
  private void readFully(Reader reader, TensorView tensor, MemorySegment target, long start, long position,
      long length, boolean tiling) throws IOException {
    ByteBuffer buffer = target.asByteBuffer();
    long needed = position + length - start;
    while (buffer.position() < needed) {
      int read = reader.channel().read(buffer, start + buffer.position());
      // A read that ends off the alignment ended at the end of the file.
      if (read <= 0 || (buffer.position() < needed && buffer.position() % reader.alignment() != 0)) {
        throw new IOException(tensor.file().orElseThrow() + ": the file ends at byte " + (start + buffer.position())
            + ", within the data of tensor '" + tensor.name() + "' (bytes " + position + " to "
            + (position + length) + "): truncated since it was opened");
      }
    }
    if (reader.dropper().isPresent() && !tiling) {
      // A slice's reads do not tile the file: drop the pages this read covers whole.
      reader.dropper().get().drop(position, length);
    } else if (reader.dropper().isPresent()) {
      // The 4 MiB blocks this read ends, from the one its bytes start in: reads are cut where
      // blocks start, so over a load these ranges tile the file once, each dropped whole by the
      // read that finishes it (a folio is dropped only when the range covers it all).
      long fileEnd = files.get(tensor.file().orElseThrow()).dataOffset() + files.get(tensor.file().orElseThrow()).dataLength();
      long dropStart = position & -CHUNK_BYTES;
      long dropEnd = position + length == fileEnd ? fileEnd : (position + length) & -CHUNK_BYTES;
      if (dropEnd > dropStart) {
        reader.dropper().get().drop(dropStart, dropEnd - dropStart);
      }
    }
  }

  /**
   * Opens a file for this mode's reads: with {@code O_DIRECT} where asked and the file system
   * takes it, buffered with drop-behind otherwise (a refusal said once). Refuses a file
   * replaced since the checkpoint was opened.
   */
  private Reader open(SafeTensors file) {
    try {
      FileChannel buffered = file.reopen();
      if (cached.contains(file.path())) {
        return new Reader(buffered, 1, Optional.empty());
      }
      if (mode == ReadMode.DIRECT) {
        long alignment = Files.getFileStore(file.path()).getBlockSize();
        if (Long.bitCount(alignment) == 1 && alignment <= MAX_ALIGNMENT) {
          try {
            FileChannel direct = file.reopen(ExtendedOpenOption.DIRECT);
            buffered.close();
            return new Reader(direct, alignment, Optional.empty());
          } catch (UnsupportedOperationException | IOException e) {
            Posix.reportFallback("O_DIRECT", file.path() + ": " + e.getMessage() + "; buffered reads instead");
          }
        } else {
          Posix.reportFallback("O_DIRECT", file.path() + ": block size " + alignment + "; buffered reads instead");
        }
      }
      return new Reader(buffered, 1, Posix.cacheDropper(file.path()));
    } catch (IOException e) {
      throw new UncheckedIOException(e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    for (Reader reader : readers.values()) {
      try {
        reader.channel().close();
      } catch (IOException e) {
        // nothing was written; nothing to lose
      }
      reader.dropper().ifPresent(Posix.CacheDropper::close);
    }
    stages.close();
  }
}
