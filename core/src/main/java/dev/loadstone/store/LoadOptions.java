package dev.loadstone.store;

import dev.loadstone.safetensors.DType;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * How to load a checkpoint into a {@link VarStore}. Immutable; each {@code with} method returns
 * a changed copy.
 *
 * <pre>{@code
 * LoadOptions options = LoadOptions.defaults()          // COPY, strict, all cores
 *     .withMode(LoadMode.ALIAS)
 *     .withNames(NameMapping.identity().stripPrefix("model."))
 *     .partial();                                       // report problems instead of failing
 * }</pre>
 *
 * @param mode copy into owned memory, or alias the mapped bytes
 * @param strict fail (before writing any variable) if a variable is missing from the
 *     checkpoint or a tensor does not fit its variable; otherwise load what fits and report
 * @param threads the number of loading threads, at least 1 (a {@link ReadMode#DIRECT} read
 *     keeps more reads than this in flight)
 * @param names how checkpoint names map to variable names
 * @param progress who hears about progress
 * @param releaseMappedPages whether to drop copied file pages from the process once copied
 *     ({@code madvise(MADV_DONTNEED)}), so resident memory holds about one copy of the weights;
 *     the data stays in the OS page cache
 * @param createDType for {@link VarStore#fromCheckpoint}: the dtype of created float
 *     variables, or empty to keep each tensor's own dtype
 * @param readMode how a COPY load reads the files
 * @param prefetch in ALIAS mode, whether to read the aliased bytes into the page cache before
 *     the load returns, on all threads ({@code MADV_POPULATE_READ}), so that a cold file's
 *     first use does not fault page by page
 * @param partition one rank's share of the checkpoint for tensor parallelism: variables have
 *     the slice shapes and only the slices' bytes are read (see {@link Partition}); empty to
 *     load whole tensors
 * @param sha256 whether to compute the SHA-256 of every file of the checkpoint in the same
 *     pass as the load ({@link LoadReport#sha256()}): the header and every byte of every file,
 *     tensors not loaded included, each file hashed in order as its chunks are copied (a file
 *     is read once); an ALIAS load then reads every byte in, as with {@code prefetch}
 * @param expectedSha256 SHA-256s (64 hex digits) by file name (relative to the checkpoint's
 *     folder, as in an index; for a remote file, the last part of its URL): a file whose hash
 *     differs fails the load with a {@link LoadException} naming the file, the expected and the
 *     actual hash, and no variable claims to be loaded; a name that is no file of the
 *     checkpoint fails it too. Non-empty implies {@code sha256}
 */
public record LoadOptions(LoadMode mode, boolean strict, int threads, NameMapping names,
    LoadProgress progress, boolean releaseMappedPages, Optional<DType> createDType, ReadMode readMode,
    boolean prefetch, Optional<Partition> partition, boolean sha256, Map<String, String> expectedSha256) {

  /** Checks the values. */
  public LoadOptions {
    Objects.requireNonNull(mode, "mode");
    Objects.requireNonNull(names, "names");
    Objects.requireNonNull(progress, "progress");
    Objects.requireNonNull(createDType, "createDType");
    Objects.requireNonNull(readMode, "readMode");
    Objects.requireNonNull(partition, "partition");
    expectedSha256 = Map.copyOf(expectedSha256);
    for (Map.Entry<String, String> entry : expectedSha256.entrySet()) {
      if (!entry.getValue().matches("[0-9a-fA-F]{64}")) {
        throw new IllegalArgumentException("the SHA-256 expected of '" + entry.getKey()
            + "' is not 64 hex digits: '" + entry.getValue() + "'");
      }
    }
    sha256 |= !expectedSha256.isEmpty();
    if (sha256 && partition.isPresent() && partition.get().world() > 1) {
      throw new IllegalArgumentException("a load that hashes its files reads every byte of them, and a partition of "
          + partition.get().world() + " ranks reads only its slices: hash the files apart (FileHashes,"
          + " loadstone verify --sha256), or load without the partition");
    }
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be at least 1, not " + threads);
    }
  }

  /**
   * COPY mode, strict, one thread per available core, names unchanged, no progress, files read
   * as the page cache suggests ({@link ReadMode#AUTO}).
   */
  public static LoadOptions defaults() {
    return new LoadOptions(LoadMode.COPY, true, Runtime.getRuntime().availableProcessors(),
        NameMapping.identity(), LoadProgress.NONE, true, Optional.empty(), ReadMode.AUTO, false, Optional.empty(),
        false, Map.of());
  }

  /** With another load mode. */
  public LoadOptions withMode(LoadMode newMode) {
    return with(o -> o.mode = newMode);
  }

  /** Loads what fits and reports the rest instead of failing. */
  public LoadOptions partial() {
    return with(o -> o.strict = false);
  }

  /** With another number of loading threads. */
  public LoadOptions withThreads(int newThreads) {
    return with(o -> o.threads = newThreads);
  }

  /** With another name mapping. */
  public LoadOptions withNames(NameMapping newNames) {
    return with(o -> o.names = newNames);
  }

  /** With a progress listener. */
  public LoadOptions withProgress(LoadProgress newProgress) {
    return with(o -> o.progress = newProgress);
  }

  /** Whether to release copied file pages from the process (on by default). */
  public LoadOptions withReleaseMappedPages(boolean release) {
    return with(o -> o.releaseMappedPages = release);
  }

  /** For {@link VarStore#fromCheckpoint}: convert float tensors to this dtype. */
  public LoadOptions withCreateDType(DType dtype) {
    return with(o -> o.createDType = Optional.of(dtype));
  }

  /** With another way of reading the files in COPY mode. */
  public LoadOptions withReadMode(ReadMode newReadMode) {
    return with(o -> o.readMode = newReadMode);
  }

  /** In ALIAS mode, whether to read the aliased bytes in before returning (off by default). */
  public LoadOptions withPrefetch(boolean newPrefetch) {
    return with(o -> o.prefetch = newPrefetch);
  }

  /**
   * Loads one rank's share: every tensor as {@code newPartition}'s rules cut it, into variables
   * of the slice shapes ({@link Partition#shapeOf}), reading only the slices' bytes. In ALIAS
   * mode only slices that are one contiguous range of the file (dimension 0) can be bound;
   * others are refused. Quantized weights cannot be cut (refused).
   */
  public LoadOptions withPartition(Partition newPartition) {
    Objects.requireNonNull(newPartition, "partition");
    return with(o -> o.partition = Optional.of(newPartition));
  }

  /** Whether to compute each file's SHA-256 in the same pass as the load (off by default). */
  public LoadOptions withSha256(boolean newSha256) {
    return with(o -> o.sha256 = newSha256);
  }

  /**
   * With the SHA-256 each file must have, by file name (see the class description); hashing on
   * unless {@code newExpected} is empty.
   */
  public LoadOptions withExpectedSha256(Map<String, String> newExpected) {
    return with(o -> {
      o.expectedSha256 = newExpected;
      o.sha256 |= !newExpected.isEmpty();
    });
  }

  /** A copy with one change: each {@code with} method names only what it changes. */
  private LoadOptions with(Consumer<Draft> change) {
    Draft draft = new Draft(this);
    change.accept(draft);
    return new LoadOptions(draft.mode, draft.strict, draft.threads, draft.names, draft.progress,
        draft.releaseMappedPages, draft.createDType, draft.readMode, draft.prefetch, draft.partition, draft.sha256,
        draft.expectedSha256);
  }

  /** The fields of a copy being made. */
  private static final class Draft {
    LoadMode mode;
    boolean strict;
    int threads;
    NameMapping names;
    LoadProgress progress;
    boolean releaseMappedPages;
    Optional<DType> createDType;
    ReadMode readMode;
    boolean prefetch;
    Optional<Partition> partition;
    boolean sha256;
    Map<String, String> expectedSha256;

    Draft(LoadOptions from) {
      mode = from.mode;
      strict = from.strict;
      threads = from.threads;
      names = from.names;
      progress = from.progress;
      releaseMappedPages = from.releaseMappedPages;
      createDType = from.createDType;
      readMode = from.readMode;
      prefetch = from.prefetch;
      partition = from.partition;
      sha256 = from.sha256;
      expectedSha256 = from.expectedSha256;
    }
  }
}
