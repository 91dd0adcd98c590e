package dev.loadstone.engine;

import dev.loadstone.engine.LoadPlan.Assignment;
import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.internal.Posix;
import dev.loadstone.internal.RemoteFile;
import dev.loadstone.internal.UrlPath;
import dev.loadstone.quantization.QuantizedWeight;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.ReadMode;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntFunction;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/**
 * The copy of a load: every assignment of a {@link LoadPlan} cut into chunks of about
 * {@link #CHUNK_BYTES} and copied on {@link LoadOptions#threads()} threads that take chunks
 * from one counter, in file order (so the kernel reads a cold file ahead sequentially), with
 * the memory behaviour every backend wants and the failures every backend reports alike:
 *
 * <ul>
 *   <li>a chunk's bytes come from the file's mapping, or, for the files
 *       {@link LoadOptions#readMode()} says to read directly, from one positional read into a
 *       staging buffer ({@link PositionalReads}; then at least {@link PositionalReads#READERS}
 *       threads read at once), or, for a remote file, from one HTTP range request
 *       ({@link RangeReads}; then at least the remote options' concurrency threads read at
 *       once, in ranges of their size); the backend copies from the segment it is handed. With
 *       {@link ReadMode#AUTO}, the tensors of a file in the page cache are read positionally
 *       too, without drop-behind, straight into the target where the bytes need no conversion
 *       ({@link #readsFromCache}): the kernel copies out of the cache faster than a copy out of
 *       a mapping that must be faulted in;
 *   <li>each chunk's file pages are mapped in before the copy ({@code MADV_POPULATE_READ}, one
 *       call instead of a fault every few pages) and, with
 *       {@link LoadOptions#releaseMappedPages()}, dropped from the process after it
 *       ({@code MADV_DONTNEED}), so resident memory holds one copy of the weights, not two;
 *   <li>a quantized weight ({@link Assignment#dequantized()}) is computed a chunk of rows at a
 *       time straight into the destination the backend names ({@link #destinations}), reading
 *       its stored tensors through the mapping; where the packed tensor holds the chunk's rows
 *       as one range ({@link QuantizedWeight#storedRows}: FP8, 8-bit, compressed-tensors' packed
 *       words) that range is mapped in first ({@code MADV_POPULATE_READ}) and, with
 *       {@link LoadOptions#releaseMappedPages()}, dropped from the process after it; where it
 *       does not (a chunk of rows reads a strided part of a GPTQ or AWQ weight) it is faulted in
 *       and stays mapped until the checkpoint is closed;
 *   <li>a target that receives a slice of its tensor ({@link Assignment#slice()}: one rank's
 *       share, {@code LoadOptions.partition()}) is chunked in its own elements, each chunk read
 *       as the source pieces it covers ({@link Pieces}: one range for a dimension-0 slice, row
 *       pieces for a dimension-1 slice), so only the slice's bytes are read, in every read mode;
 *       a whole tensor is the one-piece case of the same path;
 *   <li>the bytes read are counted as they are read, for {@link LoadReport#bytesRead()};
 *   <li>progress is reported after each chunk;
 *   <li>a copy that fails (a fault in the mapping: a file truncated after it was mapped; a
 *       checkpoint closed by another thread) stops every thread at its next chunk and becomes
 *       one {@link LoadException} naming the file and the tensor ({@link LoadPlan#failure}).
 * </ul>
 *
 * <pre>{@code
 * new ChunkedCopy<>(plan, options)
 *     .perThread(body -> () -> { setUp(); try { body.run(); } finally { tearDown(); } })
 *     .run((assignment, first, count, source) -> copy(source, assignment.target().handle(), first, count));
 * // ChunkedCopy.chunkView(assignment, count, source) views the source as the tensor's elements
 * }</pre>
 *
 * @param <T> the backend's handle for a target
 */
public final class ChunkedCopy<T> {
  /**
   * Tensors are copied in chunks of about this many bytes (of the wider of the two dtypes), so
   * that all threads stay busy on one large tensor and each chunk's file pages can be dropped
   * once copied: resident memory then holds the targets plus a chunk per thread.
   */
  public static final long CHUNK_BYTES = 8L << 20;

  /** Pieces read out of the mapping get page advice of their own from this size up (a huge page). */
  private static final long ADVICE_BYTES = 2L << 20;

  /** {@link ReadMode#AUTO} asks the page cache about one page in every this many bytes. */
  private static final long RESIDENCY_SAMPLE_STRIDE = 2L << 20;

  /** Copies one chunk: elements {@code [first, first + count)} of the assignment's tensor. */
  @FunctionalInterface
  public interface ChunkCopy<T> {
    /**
     * @param source the chunk's bytes: a slice of the tensor's mapping (already paged in), or
     *     of a staging buffer the chunk was read into; copy from it, not from the tensor
     */
    void copy(Assignment<T> assignment, long first, long count, MemorySegment source);
  }

  /** Where a chunk's bytes come from. */
  private enum Read {
    /** The file's mapping. */
    MAPPED,
    /** A positional read of the file ({@link PositionalReads}). */
    POSITIONAL,
    /** A range request to a remote file ({@link RangeReads}). */
    RANGE
  }

  /**
   * Elements {@code [first, first + count)} of an assignment's target, how their bytes are
   * read, and where they lie in the tensor; or, with {@code range} and no assignment, bytes read
   * only to be hashed.
   */
  private record Chunk<T>(Assignment<T> assignment, long first, long count, Read read, Pieces pieces,
      OrderedDigests.Range range) {
    Chunk(Assignment<T> assignment, long first, long count, Read read, Pieces pieces) {
      this(assignment, first, count, read, pieces, null);
    }
  }

  /**
   * The chunk's {@code source} bytes as a one-dimensional view of {@code count} elements of the
   * assignment's tensor (same name, same dtype), to copy or convert with
   * {@link TensorView#copyRangeTo}, whose errors then name the tensor.
   */
  public static TensorView chunkView(Assignment<?> assignment, long count, MemorySegment source) {
    TensorView tensor = assignment.tensor();
    return TensorView.of(tensor.name(), tensor.dtype(), new long[] {count}, source);
  }

  /** A chunk's failure on its way out of {@link Parallel#forEach}. */
  private static final class ChunkFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient Assignment<?> assignment;
    private final transient Path file;

    ChunkFailure(Assignment<?> assignment, Throwable cause) {
      this(assignment, null, cause);
    }

    /** A failure reading bytes of {@code file} that only the hash reads. */
    ChunkFailure(Assignment<?> assignment, Path file, Throwable cause) {
      super(cause);
      this.assignment = assignment;
      this.file = file;
    }
  }

  private final LoadPlan<T> plan;
  private final LoadOptions options;
  private UnaryOperator<Runnable> perThread = UnaryOperator.identity();
  private Predicate<Assignment<T>> wholeOnly = assignment -> false;
  private Destinations<T> destinations = (assignment, first, count) -> Optional.empty();

  /** The copy of {@code plan}'s assignments, on the threads and with the page advice of {@code options}. */
  public ChunkedCopy(LoadPlan<T> plan, LoadOptions options) {
    this.plan = plan;
    this.options = options;
  }

  /** Wraps each copying thread's loop, to set up and tear down per-thread state. */
  public ChunkedCopy<T> perThread(UnaryOperator<Runnable> wrapper) {
    this.perThread = wrapper;
    return this;
  }

  /**
   * Where a chunk's bytes belong when they are copied as they are (same dtype, plain memory),
   * so that a positional read can put them there itself, skipping the copy.
   */
  @FunctionalInterface
  public interface Destinations<T> {
    /** The destination of elements {@code [first, first + count)}, or empty to be handed the bytes. */
    Optional<MemorySegment> of(Assignment<T> assignment, long first, long count);
  }

  /** Names where chunks' bytes belong (see {@link Destinations}); by default none. */
  public ChunkedCopy<T> destinations(Destinations<T> where) {
    this.destinations = where;
    return this;
  }

  /** Assignments that must be copied in one piece (a strided target, say). */
  public ChunkedCopy<T> wholeOnly(Predicate<Assignment<T>> test) {
    this.wholeOnly = test;
    return this;
  }

  /**
   * Copies every assignment of the plan with {@code copy}.
   *
   * @throws LoadException naming the file and tensor if a copy fails; the other threads stop
   *     at their next chunk
   */
  public void run(ChunkCopy<T> copy) throws LoadException {
    OrderedDigests digests = null;
    if (options.sha256()) {
      try {
        digests = new OrderedDigests(plan.source());
      } catch (IllegalArgumentException e) {
        throw new LoadException(e.getMessage(), plan.report(false), e);
      }
      checkExpectedNames();
    }
    try (OrderedDigests hashing = digests) {
      run(copy, hashing);
    }
  }

  private void run(ChunkCopy<T> copy, OrderedDigests digests) throws LoadException {
    Set<Path> positional = filesToReadPositionally();
    plan.noteReadDirectly(positional);
    // AUTO: the other local files are in the page cache; what of them needs no conversion is
    // read from the cache straight into its destination, without dropping it.
    Set<Path> cachedReads = new java.util.TreeSet<>();
    ReadMode readMode = options.readMode() == ReadMode.DIRECT ? ReadMode.DIRECT : ReadMode.POSITIONAL;
    List<Chunk<T>> chunks = new ArrayList<>();
    long bytesTotal = 0;
    int remoteReaders = 0;
    long rangeBytes = 0;
    for (Assignment<T> assignment : inFileOrder(plan.assignments())) {
      TensorView tensor = assignment.tensor();
      bytesTotal += assignment.bytesRead();
      if (assignment.dequantized().isPresent()) {
        // Whole rows of the logical [out, in] weight, about CHUNK_BYTES of the target each.
        long columns = assignment.dequantized().get().shape()[1];
        long rows = assignment.dequantized().get().shape()[0];
        long rowBytes = Math.max(1, assignment.targetDType().byteSize(columns));
        long chunkRows = Math.max(1, CHUNK_BYTES / rowBytes);
        for (long first = 0; first < rows; first += chunkRows) {
          chunks.add(new Chunk<>(assignment, first * columns, Math.min(chunkRows, rows - first) * columns, Read.MAPPED,
              null));
        }
        continue;
      }
      Pieces pieces = Pieces.of(tensor, assignment.slice());
      if (wholeOnly.test(assignment)) {
        if (assignment.slice().isPresent()) {
          throw plan.failure(assignment, new UnsupportedOperationException(
              "a target copied in one piece (a strided tensor) cannot take a slice"));
        }
        chunks.add(new Chunk<>(assignment, 0, tensor.elementCount(), Read.MAPPED, pieces));
        continue;
      }
      Optional<RemoteFile> remote = RangeReads.remoteFile(tensor);
      if (remote.isPresent()) {
        // One range request per chunk (per piece of a slice's chunk), of the remote options' size in the file's bytes.
        RemoteOptions settings = remote.get().store().options();
        remoteReaders = Math.max(remoteReaders, settings.concurrency());
        rangeBytes = Math.max(rangeBytes, settings.rangeBytes());
        plan.noteReadDirectly(Set.of(tensor.file().orElseThrow()));
        long bytesPerElement = Math.max(1, tensor.dtype().bits() / 8);
        addChunks(chunks, assignment, pieces, Math.max(64, (settings.rangeBytes() / bytesPerElement) & -64L), Read.RANGE);
        continue;
      }
      boolean cachedRead = options.readMode() == ReadMode.AUTO && assignment.slice().isEmpty()
          && tensor.file().isPresent() && !positional.contains(tensor.file().get()) && readsFromCache(assignment);
      if (cachedRead) {
        // Chunks as out of the mapping; no blocks to drop whole.
        cachedReads.add(tensor.file().get());
        long bytesPerElement = Math.max(1, Math.max(tensor.dtype().bits(), assignment.targetDType().bits()) / 8);
        addChunks(chunks, assignment, pieces, Math.max(64, (CHUNK_BYTES / bytesPerElement) & -64L), Read.POSITIONAL);
        continue;
      }
      if (tensor.file().map(positional::contains).orElse(false)) {
        if (assignment.slice().isPresent()) {
          long bytesPerElement = Math.max(1, tensor.dtype().bits() / 8);
          addChunks(chunks, assignment, pieces, Math.max(64, (PositionalReads.CHUNK_BYTES / bytesPerElement) & -64L),
              Read.POSITIONAL);
          continue;
        }
        // Cut where the file's 4 MiB blocks start, so that each read covers whole blocks (and
        // whole page-cache folios) and is dropped from the cache whole.
        long previous = 0;
        for (long boundary : PositionalReads.blockBoundaries(plan.source(), tensor)) {
          chunks.add(new Chunk<>(assignment, previous, boundary - previous, Read.POSITIONAL, pieces));
          previous = boundary;
        }
        continue;
      }
      // A multiple of 64 elements, so that sub-byte dtypes stay byte-aligned.
      long bytesPerElement = Math.max(1, Math.max(tensor.dtype().bits(), assignment.targetDType().bits()) / 8);
      addChunks(chunks, assignment, pieces, Math.max(64, (CHUNK_BYTES / bytesPerElement) & -64L), Read.MAPPED);
    }
    if (digests != null) {
      chunks = inHashOrder(chunks, digests);
      for (Chunk<T> chunk : chunks) {
        if (chunk.range() != null && chunk.range().file().isRemote()) {
          int concurrency = UrlPath.remoteOf(chunk.range().file().path())
              .map(f -> f.store().options().concurrency()).orElse(1);
          remoteReaders = Math.max(remoteReaders, concurrency);
          rangeBytes = Math.max(rangeBytes, CHUNK_BYTES);
        }
      }
    }
    OrderedDigests hashes = digests;
    long total = bytesTotal;
    AtomicLong done = new AtomicLong();
    plan.noteReadDirectly(cachedReads);
    // Many reads in flight for a device; for the page cache, the copying threads are the limit.
    int threads = Math.max(options.threads(), Math.max(remoteReaders,
        positional.isEmpty() ? 0 : PositionalReads.readers(readMode)));
    boolean reading = !positional.isEmpty() || !cachedReads.isEmpty();
    try (PositionalReads reads = reading ? new PositionalReads(plan.source(), readMode, threads, cachedReads) : null;
         RangeReads ranges = remoteReaders == 0 ? null : new RangeReads(threads, rangeBytes)) {
      Parallel.forEach(chunks, threads, perThread, chunk -> {
        try {
          if (chunk.range() != null) {
            hashOnly(chunk.range(), hashes, ranges);
            plan.noteBytesRead(chunk.range().length());
            return;
          }
          long bytes = switch (chunk.read()) {
            case MAPPED -> copyChunk(chunk, copy, hashes);
            case POSITIONAL -> readChunk(chunk, copy, (tensor, pieces, destinations, use) ->
                reads.read(tensor, pieces, chunk.assignment().slice().isEmpty(), destinations, use), hashes);
            case RANGE -> readChunk(chunk, copy, ranges::read, hashes);
          };
          plan.noteBytesRead(bytes);
          long progress = chunk.assignment().dequantized().isPresent() ? bytes
              : chunk.assignment().tensor().dtype().byteSize(chunk.count());
          options.progress().onProgress(done.addAndGet(progress), total, chunk.assignment().name());
        } catch (RuntimeException | Error e) {
          if (hashes != null) {
            hashes.abort(e);
          }
          throw e;
        }
      });
    } catch (ChunkFailure | OrderedDigests.Aborted e) {
      Throwable real = e;
      if (hashes != null && (e instanceof OrderedDigests.Aborted || e.getCause() instanceof OrderedDigests.Aborted)
          && hashes.failure() != null) {
        real = hashes.failure();
      }
      if (!(real instanceof ChunkFailure failure)) {
        if (real instanceof Error error) {
          throw error;
        }
        throw (RuntimeException) real;
      }
      if (failure.assignment == null) {
        throw new LoadException(failure.file + ": reading bytes to hash them failed: "
            + failure.getCause().getMessage(), plan.report(false), failure.getCause());
      }
      @SuppressWarnings("unchecked")
      Assignment<T> failed = (Assignment<T>) failure.assignment;
      throw plan.failure(failed, failure.getCause());
    }
    if (hashes != null) {
      checkHashes(hashes.finish());
    }
  }

  /** The name a file of the load has in {@link LoadOptions#expectedSha256()}. */
  private String nameOf(Path file) {
    return plan.source() instanceof dev.loadstone.checkpoint.Checkpoint checkpoint
        ? checkpoint.nameOf(file) : String.valueOf(file.getFileName());
  }

  /** Refuses expected hashes for files the load does not have, before anything is read. */
  private void checkExpectedNames() throws LoadException {
    Set<String> names = new java.util.TreeSet<>();
    List<Path> files = plan.source() instanceof dev.loadstone.checkpoint.Checkpoint checkpoint
        ? checkpoint.files() : List.of(plan.source().path());
    files.forEach(file -> names.add(nameOf(file)));
    for (String name : options.expectedSha256().keySet()) {
      if (!names.contains(name)) {
        throw new LoadException(plan.source().path() + ": a SHA-256 is expected of '" + name
            + "', which is no file of the checkpoint (its files: " + String.join(", ", names) + ")",
            plan.report(false), null);
      }
    }
  }

  /** Notes the hashes for the report and fails the load on one that differs from the expected. */
  private void checkHashes(Map<Path, String> hashes) throws LoadException {
    plan.noteSha256(hashes);
    for (Map.Entry<Path, String> entry : hashes.entrySet()) {
      String expected = options.expectedSha256().get(nameOf(entry.getKey()));
      if (expected != null && !expected.equalsIgnoreCase(entry.getValue())) {
        throw new LoadException(entry.getKey() + ": SHA-256 " + entry.getValue() + ", expected "
            + expected.toLowerCase(java.util.Locale.ROOT) + " (LoadOptions.expectedSha256): the file is not"
            + " the one expected, and nothing is loaded", plan.report(false), null);
      }
    }
  }

  /**
   * The chunks with the bytes no copy reads added as hash-only chunks, each file's chunks in
   * file order and the files interleaved (dequantized chunks, which the hash does not take
   * bytes from, first).
   */
  private List<Chunk<T>> inHashOrder(List<Chunk<T>> chunks, OrderedDigests digests) {
    Map<Path, List<long[]>> covered = new HashMap<>();
    Map<Path, List<Chunk<T>>> perFile = new java.util.LinkedHashMap<>();
    List<Chunk<T>> order = new ArrayList<>();
    for (Chunk<T> chunk : chunks) {
      if (chunk.assignment().dequantized().isPresent()) {
        order.add(chunk);
        continue;
      }
      TensorView tensor = chunk.assignment().tensor();
      long start = digests.filePosition(tensor, tensor.dtype().byteSize(chunk.first()));
      covered.computeIfAbsent(tensor.file().orElseThrow(), f -> new ArrayList<>())
          .add(new long[] {start, start + tensor.dtype().byteSize(chunk.count())});
      perFile.computeIfAbsent(tensor.file().orElseThrow(), f -> new ArrayList<>()).add(chunk);
    }
    for (OrderedDigests.Range range : digests.uncovered(covered, CHUNK_BYTES)) {
      perFile.computeIfAbsent(range.file().path(), f -> new ArrayList<>())
          .add(new Chunk<>(null, 0, 0, range.file().isRemote() ? Read.RANGE : Read.MAPPED, null, range));
    }
    for (List<Chunk<T>> file : perFile.values()) {
      file.sort(Comparator.comparingLong(chunk -> position(chunk, digests)));
    }
    order.addAll(OrderedDigests.interleave(new ArrayList<>(perFile.values())));
    return order;
  }

  private static <T> long position(Chunk<T> chunk, OrderedDigests digests) {
    if (chunk.range() != null) {
      return chunk.range().position();
    }
    TensorView tensor = chunk.assignment().tensor();
    return digests.filePosition(tensor, tensor.dtype().byteSize(chunk.first()));
  }

  /** Hands a copied chunk's bytes (as read from the file) to its file's digest, in order. */
  private static <T> void hash(Chunk<T> chunk, OrderedDigests digests, MemorySegment bytes) {
    if (digests != null) {
      TensorView tensor = chunk.assignment().tensor();
      digests.add(tensor.file().orElseThrow(), position(chunk, digests), bytes);
    }
  }

  /** Reads bytes no copy reads (the header, tensors not loaded) and hashes them. */
  private void hashOnly(OrderedDigests.Range range, OrderedDigests digests, RangeReads ranges) {
    Path file = range.file().path();
    try {
      if (range.file().isRemote()) {
        RemoteFile remote = UrlPath.remoteOf(file).orElseThrow();
        ranges.readRaw(remote, range.position(), range.length(), "bytes read to hash them",
            bytes -> digests.add(file, range.position(), bytes));
        return;
      }
      MemorySegment bytes = digests.mapped(range);
      Posix.madvise(bytes, Posix.MADV_POPULATE_READ);
      digests.add(file, range.position(), bytes);
      if (options.releaseMappedPages()) {
        Posix.madvise(bytes, Posix.MADV_DONTNEED);
      }
    } catch (OrderedDigests.Aborted e) {
      throw e;
    } catch (RuntimeException | InternalError e) {
      throw new ChunkFailure(null, file, e);
    }
  }

  /** Cuts an assignment's target into chunks of {@code chunkElements} elements (the last one shorter). */
  private static <T> void addChunks(List<Chunk<T>> chunks, Assignment<T> assignment, Pieces pieces, long chunkElements,
      Read read) {
    long elements = pieces.elementCount();
    for (long first = 0; first < elements; first += chunkElements) {
      chunks.add(new Chunk<>(assignment, first, Math.min(chunkElements, elements - first), read, pieces));
    }
  }

  /** A read of byte ranges of a tensor ({@link PositionalReads#read}, {@link RangeReads#read}); returns the bytes read. */
  @FunctionalInterface
  private interface ChunkRead {
    long read(TensorView tensor, List<Pieces.ByteRange> ranges, IntFunction<Optional<MemorySegment>> destinations,
        Pieces.RangeUse use);
  }

  /**
   * Whether an assignment of a file in the page cache is read from the cache with positional
   * reads ({@code pread}) rather than copied out of the mapping: every one but a dequantized
   * weight's. Bytes that go into the target as they are, into memory the backend names, are
   * read straight into it; the others into a staging buffer the conversion reads while it is
   * in the CPU's cache. The kernel copies out of the page cache without mapping the file:
   * measured on the README's machine (a 2.47 GB checkpoint, 2 threads), same dtype 21 against
   * 9 GB/s out of a mapping that must be faulted in, BF16 to F32 19-22 against 12-13 GB/s
   * written.
   */
  private boolean readsFromCache(Assignment<T> assignment) {
    TensorView tensor = assignment.tensor();
    return assignment.dequantized().isEmpty() && !tensor.isRemote() && tensor.segment().isMapped()
        && tensor.byteSize() > 0 && tensor.segment().scope().isAlive();
  }

  /**
   * The files to read with positional reads rather than through the mapping: none with
   * {@link ReadMode#MAPPED}, all with {@link ReadMode#POSITIONAL} and {@link ReadMode#DIRECT},
   * and with {@link ReadMode#AUTO} those of which less than half of the tensors' pages are in
   * the page cache (sampled: one page in every {@value #RESIDENCY_SAMPLE_STRIDE} bytes, so that
   * asking costs well under a millisecond per gigabyte).
   */
  private Set<Path> filesToReadPositionally() {
    Map<Path, double[]> residency = new HashMap<>();   // file -> {resident bytes, bytes}
    for (Assignment<T> assignment : plan.assignments()) {
      TensorView tensor = assignment.tensor();
      if (tensor.file().isEmpty() || tensor.isRemote() || !tensor.segment().isMapped() || tensor.byteSize() == 0) {
        continue;
      }
      double[] counts = residency.computeIfAbsent(tensor.file().get(), f -> new double[2]);
      if (options.readMode() == ReadMode.AUTO) {
        counts[0] += Posix.sampledResidentFraction(tensor.segment(), RESIDENCY_SAMPLE_STRIDE).orElse(1) * tensor.byteSize();
      }
      counts[1] += tensor.byteSize();
    }
    return switch (options.readMode()) {
      case MAPPED -> Set.of();
      case POSITIONAL, DIRECT -> residency.keySet();
      case AUTO -> residency.entrySet().stream().filter(e -> e.getValue()[0] < 0.5 * e.getValue()[1])
          .map(Map.Entry::getKey).collect(Collectors.toSet());
    };
  }

  /**
   * Reads one chunk from its file (positionally, or by range requests), piece by piece:
   * straight into its destination where the backend names one for bytes copied as they are,
   * else into a staging buffer the backend copies from. Returns the bytes read.
   */
  private long readChunk(Chunk<T> chunk, ChunkCopy<T> copy, ChunkRead reads, OrderedDigests digests) {
    Assignment<T> assignment = chunk.assignment();
    TensorView tensor = assignment.tensor();
    try {
      List<Pieces.Piece> pieces = chunk.pieces().within(chunk.first(), chunk.count());
      List<Pieces.ByteRange> ranges = pieces.stream()
          .map(p -> new Pieces.ByteRange(tensor.dtype().byteSize(p.source()), tensor.dtype().byteSize(p.count()))).toList();
      boolean asStored = tensor.dtype() == assignment.targetDType();
      boolean[] handed = new boolean[pieces.size()];
      long bytes = reads.read(tensor, ranges,
          i -> asStored ? destinations.of(assignment, pieces.get(i).destination(), pieces.get(i).count()) : Optional.empty(),
          (i, source) -> {
            handed[i] = true;
            copy.copy(assignment, pieces.get(i).destination(), pieces.get(i).count(), source);
            hash(chunk, digests, source);
          });
      if (digests != null && asStored && pieces.size() == 1 && !handed[0]) {
        // Read straight into the destination: the file's bytes as they are. (A load that hashes
        // has no partition, so its chunks are one piece each.)
        hash(chunk, digests, destinations.of(assignment, chunk.first(), chunk.count()).orElseThrow());
      }
      return bytes;
    } catch (RuntimeException e) {
      throw new ChunkFailure(assignment, e);
    }
  }

  /**
   * Copies one chunk out of the mapping, piece by piece, with its page advice (for pieces of a
   * page or more); returns the bytes read.
   */
  private long copyChunk(Chunk<T> chunk, ChunkCopy<T> copy, OrderedDigests digests) {
    Assignment<T> assignment = chunk.assignment();
    TensorView tensor = assignment.tensor();
    boolean interruptedBefore = Thread.currentThread().isInterrupted();
    try {
      if (assignment.dequantized().isPresent()) {
        return dequantizeChunk(chunk);
      }
      long bytes = 0;
      List<Pieces.Piece> pieces = chunk.pieces().within(chunk.first(), chunk.count());
      boolean mapped = isFileMapping(tensor.segment());
      for (Pieces.Piece piece : pieces) {
        MemorySegment source = tensor.segment().asSlice(tensor.dtype().byteSize(piece.source()),
            tensor.dtype().byteSize(piece.count()));
        // Page advice for a chunk of one piece, or pieces of a huge page or more: advice on part of a 2 MiB page splits
        // its mapping into 4 KiB ones (measured: a dimension-1 slice with 8 KiB row pieces
        // loaded 2-3x slower with advice per piece); smaller pieces are faulted in.
        boolean advised = mapped && (pieces.size() == 1 || source.byteSize() >= ADVICE_BYTES);
        if (advised) {
          Posix.madvise(source, Posix.MADV_POPULATE_READ);
        }
        copy.copy(assignment, piece.destination(), piece.count(), source);
        hash(chunk, digests, source);
        if (advised && options.releaseMappedPages()) {
          // Whole pages inside the piece only; the page cache keeps the data, and a page read
          // again is read back from it.
          Posix.madvise(source, Posix.MADV_DONTNEED);
        }
        bytes += source.byteSize();
      }
      if (mapped && options.releaseMappedPages() && pieces.size() > 1) {
        // Small row pieces: the pages the chunk's pieces lie in, dropped from the process once.
        long start = tensor.dtype().byteSize(pieces.getFirst().source());
        long end = tensor.dtype().byteSize(pieces.getLast().source() + pieces.getLast().count());
        Posix.madvise(tensor.segment().asSlice(start, end - start), Posix.MADV_DONTNEED);
      }
      return bytes;
    } catch (RuntimeException | InternalError e) {
      // InternalError: the JVM's report of a fault in mapped memory, e.g. a file truncated
      // after it was mapped.
      if (e instanceof IllegalStateException && !interruptedBefore) {
        // The checkpoint was closed by another thread. HotSpot (JDK 25) tells a thread whose
        // read of a mapping is cut short by a close with an asynchronous exception, and sets
        // its interrupt flag while doing so; nobody interrupted this load, and a flag left set
        // would make the caller's next blocking call fail (ClosedByInterruptException).
        Thread.interrupted();
      }
      throw new ChunkFailure(assignment, e);
    }
  }

  /**
   * Computes one chunk of rows of a quantized weight into the backend's destination; returns
   * the chunk's share of the weight's stored bytes.
   */
  private long dequantizeChunk(Chunk<T> chunk) {
    Assignment<T> assignment = chunk.assignment();
    QuantizedWeight weight = assignment.dequantized().orElseThrow();
    MemorySegment destination = destinations.of(assignment, chunk.first(), chunk.count())
        .orElseThrow(() -> new IllegalStateException("the backend names no memory to dequantize into"));
    long columns = weight.shape()[1];
    long rows = weight.shape()[0];
    long firstRow = chunk.first() / columns;
    long rowCount = chunk.count() / columns;
    // Rows stored one range: mapped in with one call rather than fault by fault, and dropped
    // from the process once computed, as a plain copy's pages are.
    Optional<MemorySegment> storedRows = weight.storedRows(firstRow, rowCount).filter(ChunkedCopy::isFileMapping);
    storedRows.ifPresent(stored -> Posix.madvise(stored, Posix.MADV_POPULATE_READ));
    weight.dequantize(firstRow, rowCount, destination, 0, assignment.targetDType());
    if (options.releaseMappedPages()) {
      storedRows.ifPresent(stored -> Posix.madvise(stored, Posix.MADV_DONTNEED));
    }
    long stored = weight.storedByteSize();
    return share(stored, firstRow + rowCount, rows) - share(stored, firstRow, rows);
  }

  /**
   * Whether {@code segment} is a checkpoint's read-only file mapping, whose pages may be mapped
   * in and dropped from the process without changing what it reads.
   */
  private static boolean isFileMapping(MemorySegment segment) {
    return segment.isMapped() && segment.isReadOnly();
  }

  /** About {@code total * part / whole}, exactly {@code total} for the whole. */
  private static long share(long total, long part, long whole) {
    return part == whole ? total : (long) ((double) total * part / whole);
  }

  /** The assignments sorted by file, then by where their bytes lie (their order in the file). */
  private static <T> List<Assignment<T>> inFileOrder(List<Assignment<T>> assignments) {
    return assignments.stream()
        .sorted(Comparator.comparing((Assignment<T> a) -> a.tensor().file().map(Path::toString).orElse(""))
            .thenComparingLong(a -> a.tensor().file().isPresent() ? a.tensor().dataOffsets()[0] : a.tensor().segment().address()))
        .toList();
  }
}
