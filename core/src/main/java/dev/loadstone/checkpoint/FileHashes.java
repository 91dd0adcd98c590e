package dev.loadstone.checkpoint;

import dev.loadstone.engine.Parallel;
import dev.loadstone.internal.RemoteReads;
import dev.loadstone.internal.RemoteFile;
import dev.loadstone.internal.Sha256;
import dev.loadstone.internal.UrlPath;
import dev.loadstone.remote.RemoteObject;
import dev.loadstone.remote.RemoteStore;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * The SHA-256 of each file of a checkpoint, checked against what it is expected to be: the
 * hash a caller gives by file name, else the name of the file's blob in the Hugging Face cache
 * ({@link HubCache#blobSha256}), else, for a remote file, the hub's {@code X-Linked-Etag}
 * header (the SHA-256 of an LFS file; the plain {@code ETag} of a small file is a git blob id,
 * never taken for one). A file with none of these is hashed and reported unchecked.
 *
 * <pre>{@code
 * try (Checkpoint model = Checkpoint.open("org/name")) {
 *   for (FileHashes.FileHash hash : FileHashes.sha256(model, Map.of(), 8)) {
 *     if (hash.mismatched()) System.err.println(hash);   // names the file, expected and actual
 *   }
 * }
 * }</pre>
 *
 * <p>Files are hashed in parallel, one thread per file (SHA-256 is sequential within a file):
 * a local file through a mapping of it, a remote one by streaming range requests of its
 * {@code RemoteOptions.rangeBytes()}, hashed as they arrive (nothing written to disk).
 */
public final class FileHashes {
  private FileHashes() {}

  /** Bytes per read of a local file: a heap buffer inside the core's L2 cache. */
  private static final int READ_BYTES = 256 << 10;

  /**
   * One file's hash.
   *
   * @param file the file (its URL for a remote one)
   * @param name its name in the checkpoint: relative to the checkpoint's folder (a shard name),
   *     or, for a remote file, the last part of its URL
   * @param sha256 its SHA-256, 64 lower-case hex digits
   * @param expected the SHA-256 expected of it, if any is known
   * @param expectedFrom where the expected hash came from (for messages), or empty
   */
  public record FileHash(Path file, String name, String sha256, Optional<String> expected, String expectedFrom) {
    /** Checks the values. */
    public FileHash {
      Objects.requireNonNull(file, "file");
      Objects.requireNonNull(expected, "expected");
    }

    /** Whether an expected hash was known. */
    public boolean checked() {
      return expected.isPresent();
    }

    /** Whether an expected hash was known and differs. */
    public boolean mismatched() {
      return expected.isPresent() && !expected.get().equals(sha256);
    }

    /** The exception for a mismatch: names the file, the expected and the actual hash. */
    public CheckpointException mismatch() {
      return new CheckpointException(Reason.SHA256_MISMATCH, file, null,
          "SHA-256 " + sha256 + ", expected " + expected.orElse("(none)") + " (" + expectedFrom + ")");
    }

    @Override
    public String toString() {
      return name + ": " + sha256 + (expected.isEmpty() ? " (no expected hash)"
          : mismatched() ? ", expected " + expected.get() + " (" + expectedFrom + "): MISMATCH" : " (" + expectedFrom + ")");
    }
  }

  /**
   * Hashes every file of {@code checkpoint} (its index first, then its shards) on up to
   * {@code threads} threads and checks each against its expected hash.
   *
   * @param expected SHA-256s (hex, any case) by file name as {@link FileHash#name()} gives it
   *     (a leading {@code ./} is ignored); these win over the cache's and the hub's
   * @throws IllegalArgumentException if a name of {@code expected} is no file of the checkpoint,
   *     or a value is not 64 hex digits
   * @throws IOException if a file cannot be read (naming it)
   */
  public static List<FileHash> sha256(Checkpoint checkpoint, Map<String, String> expected, int threads)
      throws IOException {
    List<Path> files = new ArrayList<>();
    checkpoint.index().ifPresent(files::add);
    files.addAll(checkpoint.files());
    Map<String, Path> byName = new LinkedHashMap<>();
    for (Path file : files) {
      byName.put(checkpoint.nameOf(file), file);
    }
    Map<String, String> given = new LinkedHashMap<>();
    for (Map.Entry<String, String> entry : expected.entrySet()) {
      String name = entry.getKey().startsWith("./") ? entry.getKey().substring(2) : entry.getKey();
      if (!byName.containsKey(name)) {
        throw new IllegalArgumentException("no file '" + entry.getKey() + "' in " + checkpoint.path()
            + " (its files: " + String.join(", ", byName.keySet()) + ")");
      }
      given.put(name, Sha256.parseHex(entry.getValue()).orElseThrow(() -> new IllegalArgumentException(
          "the SHA-256 given for '" + entry.getKey() + "' is not 64 hex digits: '" + entry.getValue() + "'")));
    }
    RemoteStore client = checkpoint.shards().stream().map(SafeTensors::path).map(UrlPath::remoteOf)
        .flatMap(Optional::stream).map(RemoteFile::store).findFirst().orElse(null);
    List<String> names = new ArrayList<>(byName.keySet());
    FileHash[] results = new FileHash[names.size()];
    try {
      Parallel.forEach(java.util.stream.IntStream.range(0, names.size()).boxed().toList(), threads,
          UnaryOperator.identity(), i -> {
            try {
              results[i] = hash(byName.get(names.get(i)), names.get(i), given.get(names.get(i)), client);
            } catch (IOException e) {
              throw new UncheckedIOException(e);
            }
          });
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
    return List.of(results);
  }

  private static FileHash hash(Path file, String name, String given, RemoteStore client) throws IOException {
    if (file instanceof UrlPath url) {
      RemoteObject object = url.remote().map(RemoteFile::object).orElse(null);
      String sha;
      if (object == null) {
        // The index of a remote checkpoint: opened here by its first range.
        byte[] first = new byte[(int) Math.min(client.options().rangeBytes(), 1 << 20)];
        RemoteStore.Start start = client.readStart(file.toUri(), MemorySegment.ofArray(first));
        object = start.object();
        sha = hashRemote(client, object, first, start.received(), name);
      } else {
        sha = hashRemote(client, object, null, 0, name);
      }
      Optional<String> linked = object.header("X-Linked-Etag").flatMap(Sha256::parseHex);
      return result(file, name, sha, given, linked, "the hub's X-Linked-Etag");
    }
    String sha = hashLocal(file);
    return result(file, name, sha, given, HubCache.blobSha256(file), "the cache's blob name");
  }

  private static FileHash result(Path file, String name, String sha, String given, Optional<String> other,
      String otherFrom) {
    if (given != null) {
      return new FileHash(file, name, sha, Optional.of(given), "given");
    }
    return new FileHash(file, name, sha, other, other.isPresent() ? otherFrom : "");
  }

  /**
   * The SHA-256 of a local file, read with positional reads into one heap buffer (inside the
   * core's L2 cache) and hashed from there. No mapping: the kernel copies out of the page cache,
   * and threads hashing files side by side do not contend on mapping the pages in and out
   * (measured on the README's machine, 2 threads: 1.33 GB/s per thread through a mapping, below
   * the JDK's 1.5-1.7 on a heap array).
   */
  static String hashLocal(Path file) throws IOException {
    Sha256 sha = new Sha256();
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = channel.size();
      byte[] buffer = new byte[READ_BYTES];
      java.nio.ByteBuffer view = java.nio.ByteBuffer.wrap(buffer);
      for (long done = 0; done < size; ) {
        view.clear().limit((int) Math.min(READ_BYTES, size - done));
        int n = channel.read(view, done);
        if (n < 0) {
          throw new IOException(file + ": ends at byte " + done + " of the " + size + " it had when opened"
              + " (truncated while it was hashed)");
        }
        sha.update(buffer, 0, n);
        done += n;
      }
    } catch (IOException e) {
      throw e.getMessage() != null && e.getMessage().contains(file.toString()) ? e
          : new IOException(file + ": cannot be read to hash it: " + e.getMessage(), e);
    }
    return sha.finish();
  }

  /** The SHA-256 of a remote object, streamed by range requests (after the {@code first} bytes, if given). */
  private static String hashRemote(RemoteStore client, RemoteObject object, byte[] first, int firstLength,
      String name) throws IOException {
    Sha256 sha = new Sha256();
    long done = 0;
    if (first != null) {
      sha.update(first, 0, firstLength);
      done = firstLength;
    }
    byte[] buffer = new byte[(int) Math.min(client.options().rangeBytes(), Math.max(1, object.size()))];
    while (done < object.size()) {
      int n = (int) Math.min(buffer.length, object.size() - done);
      MemorySegment target = MemorySegment.ofArray(buffer).asSlice(0, n);
      RemoteReads.read(client, object, done, target, "hashing " + name);
      sha.update(buffer, 0, n);
      done += n;
    }
    return sha.finish();
  }
}
