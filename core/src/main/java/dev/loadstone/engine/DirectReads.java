package dev.loadstone.engine;

import com.sun.nio.file.ExtendedOpenOption;
import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.internal.Posix;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorSource;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Reads chunks of a checkpoint's files with positional reads instead of through the mapping,
 * for a load of files that are not in the page cache: one large read per chunk into a staging
 * buffer (no page faults, no read-ahead guesses), {@code O_DIRECT} where the file system takes
 * it (then the page cache does not grow by the checkpoint), buffered reads elsewhere.
 *
 * <p>Each reading thread holds one staging buffer of a chunk's size at a time, so the memory
 * this takes is bounded by the number of readers, whatever the checkpoint's size. A read that
 * comes back short (the file was truncated since it was opened) or fails ({@code EIO}) throws
 * {@link UncheckedIOException} naming the file; a file replaced since it was opened is refused
 * when it is opened for reading.
 */
final class DirectReads implements AutoCloseable {
  /**
   * Reads in flight when a load reads directly: a device needs several outstanding requests to
   * reach its throughput (queue depth), more than the cores that convert.
   */
  static final int READS_IN_FLIGHT = 8;
  /** The largest alignment {@code O_DIRECT} is used with. */
  private static final long MAX_ALIGNMENT = 64 << 10;

  /** A file opened for reading: its channel, and the alignment its reads need (1: buffered). */
  private record Reader(FileChannel channel, long alignment) {}

  private final Map<Path, SafeTensors> files = new HashMap<>();
  private final Map<Path, Reader> readers = new ConcurrentHashMap<>();
  private final Arena arena = Arena.ofShared();
  private final BlockingQueue<MemorySegment> stages;

  /**
   * @param source the checkpoint the tensors belong to
   * @param readers how many threads read at once (one staging buffer each)
   * @param chunkBytes the most bytes one read returns
   */
  DirectReads(TensorSource source, int readers, long chunkBytes) {
    List<SafeTensors> opened = switch (source) {
      case Checkpoint checkpoint -> checkpoint.shards();
      case SafeTensors file -> List.of(file);
      default -> List.of();
    };
    for (SafeTensors file : opened) {
      files.put(file.path(), file);
    }
    stages = new ArrayBlockingQueue<>(readers);
    for (int i = 0; i < readers; i++) {
      stages.add(arena.allocate(chunkBytes + 2 * MAX_ALIGNMENT, MAX_ALIGNMENT));
    }
  }

  /** Whether {@link #read} can read this tensor: it lies in one of the checkpoint's files. */
  boolean canRead(TensorView tensor) {
    return tensor.file().map(files::containsKey).orElse(false);
  }

  /** A staging buffer, held by the calling thread until {@link #release}. */
  MemorySegment acquire() {
    MemorySegment stage = stages.poll();
    if (stage == null) {
      throw new IllegalStateException("more readers than staging buffers");
    }
    return stage;
  }

  /** Gives back a staging buffer from {@link #acquire}. */
  void release(MemorySegment stage) {
    stages.add(stage);
  }

  /**
   * Reads {@code length} bytes of {@code tensor}'s data, from byte {@code offset} of it, into
   * {@code stage}.
   *
   * @return the bytes, a slice of {@code stage}
   * @throws UncheckedIOException if the read fails or comes back short, naming the file
   */
  MemorySegment read(TensorView tensor, long offset, long length, MemorySegment stage) {
    Path path = tensor.file().orElseThrow();
    SafeTensors file = files.get(path);
    long position = file.dataOffset() + tensor.dataOffsets()[0] + offset;
    try {
      Reader reader = readers.computeIfAbsent(path, p -> open(file));
      long start = position & -reader.alignment();
      long end = (position + length + reader.alignment() - 1) & -reader.alignment();
      ByteBuffer buffer = stage.asSlice(0, end - start).asByteBuffer();
      long needed = position + length - start;
      while (buffer.position() < needed) {
        int read = reader.channel().read(buffer, start + buffer.position());
        if (read <= 0) {
          throw new IOException(path + ": the file ends at byte " + (start + buffer.position())
              + ", within the data of tensor '" + tensor.name() + "' (bytes " + position + " to "
              + (position + length) + "): truncated since it was opened");
        }
      }
      return stage.asSlice(position - start, length);
    } catch (IOException e) {
      throw new UncheckedIOException(e.getMessage(), e);
    }
  }

  /**
   * Opens a file with {@code O_DIRECT} where it can, buffered otherwise (said once). Refuses a
   * file replaced or truncated since the checkpoint was opened.
   */
  private static Reader open(SafeTensors file) {
    try {
      FileChannel buffered = file.reopen();
      long alignment = Files.getFileStore(file.path()).getBlockSize();
      if (Long.bitCount(alignment) != 1 || alignment > MAX_ALIGNMENT) {
        Posix.reportFallback("O_DIRECT", file.path() + ": block size " + alignment + "; buffered reads instead");
        return new Reader(buffered, 1);
      }
      try {
        FileChannel direct = file.reopen(ExtendedOpenOption.DIRECT);
        buffered.close();
        return new Reader(direct, alignment);
      } catch (UnsupportedOperationException | IOException e) {
        Posix.reportFallback("O_DIRECT", file.path() + ": " + e.getMessage() + "; buffered reads instead");
        return new Reader(buffered, 1);
      }
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
    }
    arena.close();
  }
}
