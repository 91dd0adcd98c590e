package dev.loadstone.safetensors;

import dev.loadstone.internal.Posix;
import dev.loadstone.internal.RemoteFile;
import dev.loadstone.internal.RemoteStores;
import dev.loadstone.remote.RemoteStore;
import dev.loadstone.internal.UrlPath;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.URI;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.locks.LockSupport;

/**
 * An open {@code .safetensors} file: the whole file memory-mapped read-only, its header parsed
 * and validated, and a zero-copy {@link TensorView} for each tensor.
 *
 * <pre>{@code
 * try (SafeTensors file = SafeTensors.open(Path.of("model.safetensors"))) {
 *   TensorView embed = file.tensor("model.embed_tokens.weight");
 *   float first = embed.getFloat(0);
 * }
 * }</pre>
 *
 * <p>{@link #close()} unmaps the file at once. After it, every access to this object or to one
 * of its views, from any thread, throws {@link IllegalStateException}; none can crash the JVM.
 * Instances are safe to share between threads.
 *
 * <p><b>Remote files.</b> {@link #open(URI, RemoteOptions)} opens an {@code http://} or
 * {@code https://} URL (or one of a scheme a {@link dev.loadstone.remote.RemoteStoreProvider}
 * claims, such as {@code s3://} with the {@code loadstone-s3} module) by reading only the 8-byte length and the header, with range requests,
 * and validates them as {@link #open(Path)} does. Nothing is mapped: the views of a remote file
 * have names, dtypes, shapes and offsets but no bytes ({@link TensorView#segment()} refuses), and
 * a COPY load ({@code VarStore.load}) reads their bytes with parallel range requests.
 * {@link #path()} is then a path whose {@code toString()} and {@code toUri()} give the URL.
 */
public final class SafeTensors implements TensorSource, AutoCloseable {
  /** How long {@link #close()} waits for native calls on the mapping to return. */
  private static final long NATIVE_HOLD_TIMEOUT_NANOS = 10_000_000_000L;
  /** The first request for a remote file asks for this many bytes: the length and most headers. */
  static final int REMOTE_PROBE_BYTES = 32 << 10;
  private static final ValueLayout.OfLong LENGTH_LAYOUT =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final Path path;
  /** The file's identity when it was opened (device and inode on Linux), or null if unknown. */
  private volatile Object fileKey;
  private final Arena arena;
  private final long fileSize;
  private final long headerLength;
  private final Map<String, String> metadata;
  private final List<TensorView> tensors;
  private final Map<String, TensorView> byName;
  /** How to read the file, when it is remote (and nothing is mapped); else null. */
  private final RemoteFile remote;

  /** @param data the data section's mapping, or null for a remote file */
  private SafeTensors(Path path, Arena arena, long fileSize, long headerLength, Header header,
      MemorySegment data, RemoteFile remote) {
    this.path = path;
    this.remote = remote;
    this.arena = arena;
    this.fileSize = fileSize;
    this.headerLength = headerLength;
    this.metadata = header.metadata();
    List<TensorView> views = new ArrayList<>(header.tensors().size());
    Map<String, TensorView> index = HashMap.newHashMap(header.tensors().size());
    for (TensorEntry entry : header.tensors()) {
      TensorView view = new TensorView(this, entry.name(), entry.dtype(), entry.shape(),
          data == null ? null : data.asSlice(entry.begin(), entry.byteLength()), entry.byteLength(), entry.begin());
      views.add(view);
      index.put(entry.name(), view);
    }
    this.tensors = Collections.unmodifiableList(views);
    this.byName = index;
  }

  /**
   * Maps and validates a file. The mapping is released when the returned object is closed, or
   * at once if validation fails.
   *
   * @throws SafeTensorsException if the file breaks a rule of the format
   * @throws IOException if the file cannot be read or mapped
   */
  public static SafeTensors open(Path path) throws IOException {
    try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
      Object key = fileKey(path);
      long size = channel.size();
      if (size < Long.BYTES) {
        throw fileTooSmall(path, size);
      }
      Arena arena = Arena.ofShared();
      try {
        SafeTensors file = of(path, arena, map(channel, path, size, arena));
        file.fileKey = key;
        return file;
      } catch (Throwable t) {
        arena.close();
        throw t;
      }
    }
  }

  /**
   * Validates a whole file image (length, header, data) that is already in memory. This is
   * {@link #open}'s work without the file system, so that tests and the fuzz test can feed byte
   * arrays directly. The result's {@link #close()} closes {@code arena}; on failure the caller
   * still owns it.
   *
   * @param path the file, for error messages and {@link #path()}; may be {@code null}
   * @param arena the arena {@code image} lives in
   */
  static SafeTensors of(Path path, Arena arena, MemorySegment image) throws SafeTensorsException {
    long size = image.byteSize();
    if (size < Long.BYTES) {
      throw fileTooSmall(path, size);
    }
    long headerLength = image.get(LENGTH_LAYOUT, 0);
    checkHeaderLength(path, size, headerLength);
    byte[] json = image.asSlice(Long.BYTES, headerLength).toArray(ValueLayout.JAVA_BYTE);
    long dataOffset = Long.BYTES + headerLength;
    Header header = HeaderParser.parse(json, 0, json.length, size - dataOffset, path);
    // Read-only once here, so that the views' slices are read-only without a copy each.
    return new SafeTensors(path, arena, size, headerLength, header,
        image.asSlice(dataOffset).asReadOnly(), null);
  }

  /** The rules of the 8-byte header length, for a file of {@code size} bytes. */
  private static void checkHeaderLength(Path path, long size, long headerLength) throws SafeTensorsException {
    if (headerLength < 0 || headerLength > HeaderParser.MAX_HEADER_LENGTH) {
      throw new SafeTensorsException(Reason.HEADER_TOO_LARGE, path, null,
          "the header length is " + Long.toUnsignedString(headerLength) + " bytes");
    }
    if (headerLength > size - Long.BYTES) {
      throw new SafeTensorsException(Reason.HEADER_OUT_OF_BOUNDS, path, null,
          "the header length is " + headerLength + " bytes, but only " + (size - Long.BYTES)
              + " bytes follow it");
    }
  }

  /**
   * Opens a remote file ({@code http://}, {@code https://}, or a scheme a
   * {@link dev.loadstone.remote.RemoteStoreProvider} claims): reads its 8-byte header length
   * and its header with range requests (one request for most files, two for a header of more
   * than 32 KiB) and validates them as {@link #open(Path)} does. Nothing else is read until a
   * COPY load reads the tensors. The returned object holds a connection pool shared with other
   * files opened with equal options, until {@link #close()}.
   *
   * @throws SafeTensorsException if the file breaks a rule of the format
   * @throws NoSuchFileException naming the URL if the server says it does not exist (404, 410)
   * @throws IOException naming the URL if the server cannot be reached, refuses access, or
   *     cannot serve byte ranges
   */
  public static SafeTensors open(URI url, RemoteOptions options) throws IOException {
    RemoteStore store = RemoteStores.acquire(url, options);
    try {
      return openRemote(url, store);
    } catch (Throwable t) {
      store.close();
      throw t;
    }
  }

  private static SafeTensors openRemote(URI url, RemoteStore store) throws IOException {
    UrlPath named = UrlPath.of(url);
    byte[] probe = new byte[REMOTE_PROBE_BYTES];
    RemoteStore.Start start = store.readStart(url, MemorySegment.ofArray(probe));
    long size = start.object().size();
    if (size < Long.BYTES) {
      throw fileTooSmall(named, size);
    }
    long headerLength = MemorySegment.ofArray(probe).get(LENGTH_LAYOUT, 0);
    checkHeaderLength(named, size, headerLength);
    byte[] json = new byte[(int) headerLength];
    int inProbe = (int) Math.min(headerLength, start.received() - Long.BYTES);
    System.arraycopy(probe, Long.BYTES, json, 0, inProbe);
    if (inProbe < headerLength) {
      dev.loadstone.internal.RemoteReads.read(store, start.object(), Long.BYTES + inProbe,
          MemorySegment.ofArray(json).asSlice(inProbe), "the header");
    }
    long dataOffset = Long.BYTES + headerLength;
    Header header = HeaderParser.parse(json, 0, json.length, size - dataOffset, named);
    RemoteFile remote = new RemoteFile(start.object(), dataOffset, store);
    return new SafeTensors(UrlPath.of(remote), Arena.ofShared(), size, headerLength, header, null, remote);
  }

  private static SafeTensorsException fileTooSmall(Path path, long size) {
    return new SafeTensorsException(Reason.FILE_TOO_SMALL, path, null,
        "the file has " + size + " bytes");
  }

  private static MemorySegment map(FileChannel channel, Path path, long size, Arena arena)
      throws IOException {
    try {
      MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
      // Lets the kernel map the file with 2 MiB pages where the page cache holds it in 2 MiB
      // folios, and read it in as such when it is not cached yet: copying out of such a mapping
      // runs at memcpy speed, while 4 KiB pages cost a page-table entry and a TLB miss each.
      Posix.madvise(mapping, Posix.MADV_HUGEPAGE);
      return mapping;
    } catch (IOException e) {
      throw new IOException(path + ": cannot map " + size + " bytes (" + e.getMessage()
          + "); on Linux, check the address space limit (ulimit -v) and vm.max_map_count", e);
    }
  }

  /** The file this was opened from. */
  @Override
  public Path path() {
    return path;
  }

  /**
   * Opens this file again, for positional reads that do not go through the mapping (how a load
   * reads a file that is not in the page cache: large reads straight into memory, no page
   * faults). The caller closes the channel.
   *
   * @param options open options besides {@code READ}, such as
   *     {@code com.sun.nio.file.ExtendedOpenOption.DIRECT}
   * @throws IOException if the file cannot be opened, or no longer is the file this was opened
   *     from (replaced or removed since: its bytes may belong to another checkpoint); a file
   *     truncated since shows as reads that come back short
   */
  public FileChannel reopen(OpenOption... options) throws IOException {
    if (remote != null) {
      throw new IOException(path + ": a remote file; it is read with range requests");
    }
    Object expected = fileKey;
    if (expected != null && !expected.equals(fileKey(path))) {
      throw new IOException(path + ": the file was replaced since it was opened");
    }
    Set<OpenOption> all = new HashSet<>(List.of(options));
    all.add(StandardOpenOption.READ);
    FileChannel channel = FileChannel.open(path, all);
    // Checked again after the open: the path named the same file before and after it.
    if (expected != null && !expected.equals(fileKey(path))) {
      channel.close();
      throw new IOException(path + ": the file was replaced since it was opened");
    }
    return channel;
  }

  /** The file's identity (device and inode on Linux), or null where the system has none. */
  private static Object fileKey(Path path) throws IOException {
    return Files.readAttributes(path, BasicFileAttributes.class).fileKey();
  }

  /**
   * The header's {@code __metadata__} map, in header order; empty when the header has none (or
   * has {@code null}).
   */
  public Optional<Map<String, String>> metadata() {
    return Optional.ofNullable(metadata);
  }

  /** Every tensor, in the order of their data in the file. */
  @Override
  public List<TensorView> tensors() {
    return tensors;
  }

  /** The tensor of this name, if any. */
  @Override
  public Optional<TensorView> find(String name) {
    return Optional.ofNullable(byName.get(name));
  }

  /** The file's size in bytes. */
  public long fileSize() {
    return fileSize;
  }

  /** The length of the JSON header in bytes (without the 8-byte length before it). */
  public long headerLength() {
    return headerLength;
  }

  /** Where the data section starts in the file: {@code 8 + headerLength()}. */
  public long dataOffset() {
    return Long.BYTES + headerLength;
  }

  /** The total bytes of tensor data. */
  public long dataLength() {
    return fileSize - dataOffset();
  }

  /** Whether this is a remote file (opened from a URL; nothing mapped). */
  public boolean isRemote() {
    return remote != null;
  }

  /** Whether the file is still mapped (for a remote file: not yet closed). */
  public boolean isOpen() {
    return arena.scope().isAlive();
  }

  /**
   * Unmaps the file. Idempotent. Waits for no Java reader: a read in progress on another thread
   * either completes first or throws {@link IllegalStateException}. A native call on the mapping
   * (the page advice of a load, a libtorch copy) holds it until it returns; close waits for that,
   * up to {@link #NATIVE_HOLD_TIMEOUT_NANOS}.
   *
   * @throws IllegalStateException if a native call held the mapping for longer than that
   */
  @Override
  public void close() {
    if (remote != null) {
      synchronized (this) {
        if (arena.scope().isAlive()) {
          arena.close();
          try {
            remote.store().close();
          } catch (IOException e) {
            // the store's connections; nothing of this file depends on them any more
          }
        }
      }
      return;
    }
    long deadline = System.nanoTime() + NATIVE_HOLD_TIMEOUT_NANOS;
    while (arena.scope().isAlive()) {
      try {
        arena.close();
      } catch (IllegalStateException e) {
        // Either another thread closed it first (the loop ends), or a native call holds it.
        if (arena.scope().isAlive() && System.nanoTime() - deadline > 0) {
          throw new IllegalStateException(path + ": cannot unmap, a native call still uses the mapping", e);
        }
        LockSupport.parkNanos(100_000);
      }
    }
  }

  /** The exception to throw when a view is used after {@link #close()}. */
  IllegalStateException closedError(String tensor, RuntimeException cause) {
    return new IllegalStateException(
        path + ": closed; tensor '" + tensor + "' can no longer be read", cause);
  }

  @Override
  public String toString() {
    return "SafeTensors[" + path + ", " + tensors.size() + " tensors, " + fileSize + " bytes"
        + (isOpen() ? "" : ", closed") + "]";
  }
}
