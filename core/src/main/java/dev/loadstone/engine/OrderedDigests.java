package dev.loadstone.engine;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.internal.Sha256;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorSource;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The SHA-256 of each file of a load, computed in the load's own pass: the copy's chunks are
 * read on many threads, and each file's bytes are added to its digest in file order by the
 * thread that holds them (the mapping, a staging buffer before it is reused, or the
 * destination the bytes were read into), which first waits until the file's digest has
 * reached the chunk's first byte. The bytes no copy reads (the header, tensors not loaded, a
 * dequantized weight's stored tensors) are {@link Range}s of their own, read only to be
 * hashed. The chunks are taken in file order, so the chunk a thread waits for is always held
 * by a thread that does not wait for a later one: no deadlock.
 *
 * <p>SHA-256 is sequential within a file: one file hashes at one thread's speed, and the
 * load's threads spread over the files ({@link #interleave}).
 */
final class OrderedDigests implements AutoCloseable {

  /** Bytes {@code [position, position + length)} of a file that only the hash reads. */
  record Range(SafeTensors file, long position, long length) {}

  /** Thrown to a thread waiting for bytes that will not come, because the load failed. */
  static final class Aborted extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Aborted() {
      super("the load failed elsewhere", null, false, false);
    }
  }

  private static final class Digest {
    final SafeTensors file;
    final Sha256 sha = new Sha256();
    long frontier;

    Digest(SafeTensors file) {
      this.file = file;
    }
  }

  private final Map<Path, Digest> digests = new LinkedHashMap<>();
  private final Map<Path, MemorySegment> mappings = new java.util.concurrent.ConcurrentHashMap<>();
  private final Arena arena = Arena.ofShared();
  private volatile Throwable failure;

  /** @throws IllegalArgumentException if the source is no checkpoint of files */
  OrderedDigests(TensorSource source) {
    List<SafeTensors> files = switch (source) {
      case Checkpoint checkpoint -> checkpoint.shards();
      case SafeTensors file -> List.of(file);
      default -> throw new IllegalArgumentException("a load from " + source.path() + " cannot be hashed: not files");
    };
    for (SafeTensors file : files) {
      digests.put(file.path(), new Digest(file));
    }
  }

  /** The file a tensor's bytes are in. */
  SafeTensors fileOf(TensorView tensor) {
    return digests.get(tensor.file().orElseThrow()).file;
  }

  /** Where a tensor's byte {@code offset} lies in its file. */
  long filePosition(TensorView tensor, long offset) {
    return fileOf(tensor).dataOffset() + tensor.dataOffsets()[0] + offset;
  }

  /**
   * The bytes of every file that {@code covered} (file positions {@code [start, end)} read by
   * the copy, by file) leaves out, in pieces of at most {@code pieceBytes}.
   */
  List<Range> uncovered(Map<Path, List<long[]>> covered, long pieceBytes) {
    List<Range> ranges = new ArrayList<>();
    for (Digest digest : digests.values()) {
      List<long[]> spans = new ArrayList<>(covered.getOrDefault(digest.file.path(), List.of()));
      spans.sort(Comparator.comparingLong(span -> span[0]));
      long position = 0;
      for (long[] span : spans) {
        addPieces(ranges, digest.file, position, span[0], pieceBytes);
        position = Math.max(position, span[1]);
      }
      addPieces(ranges, digest.file, position, digest.file.fileSize(), pieceBytes);
    }
    return ranges;
  }

  private static void addPieces(List<Range> ranges, SafeTensors file, long from, long to, long pieceBytes) {
    for (long position = from; position < to; position += pieceBytes) {
      ranges.add(new Range(file, position, Math.min(pieceBytes, to - position)));
    }
  }

  /** The bytes of a local range, from a mapping of its file made for the hash (the page cache's). */
  MemorySegment mapped(Range range) {
    MemorySegment mapping = mappings.computeIfAbsent(range.file().path(), path -> {
      try (FileChannel channel = range.file().reopen()) {
        return channel.map(FileChannel.MapMode.READ_ONLY, 0, range.file().fileSize(), arena);
      } catch (IOException e) {
        throw new UncheckedIOException(e.getMessage(), e);
      }
    });
    return mapping.asSlice(range.position(), range.length());
  }

  /**
   * Adds {@code bytes}, which start at {@code position} of {@code file}, to its digest once every
   * byte before them is in.
   *
   * @throws Aborted if the load failed while waiting
   */
  void add(Path file, long position, MemorySegment bytes) {
    if (bytes.byteSize() == 0) {
      return;   // an empty tensor's chunk: nothing to wait for
    }
    Digest digest = digests.get(file);
    synchronized (digest) {
      while (digest.frontier != position) {
        if (failure != null) {
          throw new Aborted();
        }
        if (digest.frontier > position) {
          throw new IllegalStateException(file + ": bytes from " + position + " offered twice to the hash");
        }
        try {
          digest.wait();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException("interrupted while waiting to hash " + file, e);
        }
      }
      digest.sha.update(bytes);
      digest.frontier += bytes.byteSize();
      digest.notifyAll();
    }
  }

  /** Wakes every waiting thread to give up: the load failed with {@code cause}. */
  void abort(Throwable cause) {
    if (cause instanceof Aborted) {
      return;
    }
    synchronized (this) {
      if (failure == null) {
        failure = cause;
      }
    }
    for (Digest digest : digests.values()) {
      synchronized (digest) {
        digest.notifyAll();
      }
    }
  }

  /** The failure that made waiting threads give up, if any. */
  Throwable failure() {
    return failure;
  }

  /**
   * Every file's SHA-256 in hex, by file.
   *
   * @throws IllegalStateException if a file was not hashed to its end (a bug)
   */
  Map<Path, String> finish() {
    Map<Path, String> hashes = new LinkedHashMap<>();
    for (Map.Entry<Path, Digest> entry : digests.entrySet()) {
      Digest digest = entry.getValue();
      if (digest.frontier != digest.file.fileSize()) {
        throw new IllegalStateException(entry.getKey() + ": hashed " + digest.frontier + " of "
            + digest.file.fileSize() + " bytes");
      }
      hashes.put(entry.getKey(), digest.sha.finish());
    }
    return hashes;
  }

  /**
   * Orders chunks so that the threads, taking them in turn, spread over the files: the first
   * chunk of each file, then the second of each, and so on (each file's own chunks in file
   * order, which the hash needs).
   */
  static <C> List<C> interleave(List<List<C>> perFile) {
    List<C> order = new ArrayList<>();
    for (int i = 0; ; i++) {
      boolean any = false;
      for (List<C> chunks : perFile) {
        if (i < chunks.size()) {
          order.add(chunks.get(i));
          any = true;
        }
      }
      if (!any) {
        return order;
      }
    }
  }

  @Override
  public void close() {
    arena.close();
  }
}
