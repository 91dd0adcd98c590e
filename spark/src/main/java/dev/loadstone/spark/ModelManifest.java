package dev.loadstone.spark;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.checkpoint.FileHashes;
import dev.loadstone.checkpoint.HubCache;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.Partition;
import dev.loadstone.store.PartitionRules;
import java.io.IOException;
import java.io.Serial;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * What an executor needs to load a model, and nothing more: where the checkpoint is, which
 * revision, the SHA-256 each file must have, and the load options as plain data. The driver
 * broadcasts this (a few hundred bytes), never the weights; each executor JVM loads the model
 * once through {@link ModelRegistry}, keyed by the whole manifest.
 *
 * <pre>{@code
 * ModelManifest manifest = ModelManifest.of("/models/fortune-llama")   // ALIAS, all cores
 *     .withRevision("2026-12-01")
 *     .withExpectedSha256(Map.of("model.safetensors", "6f1c..."));
 * Broadcast<ModelManifest> shared = jsc.broadcast(manifest);
 * }</pre>
 *
 * @param location a path every executor can read (a file, a model directory, a sharded
 *     directory), a Hugging Face model id ({@code ORG/NAME}) read from each host's cache, or an
 *     {@code http(s)} URL (COPY loads only)
 * @param revision for a model id, the revision to read ({@code main} when empty); for a path or
 *     URL, a label of the files' version (a commit, a date) that is only part of the registry's
 *     key, so that a new version at the same location loads afresh; empty for none
 * @param expectedSha256 the SHA-256 (64 hex digits) each named file must have, by file name
 *     relative to the checkpoint's folder; checked once per executor JVM before its load, which
 *     fails naming the file, the expected and the actual hash. Empty: not checked
 * @param mode {@link LoadMode#ALIAS} (the default): the weights are the read-only file mapping,
 *     shared through the page cache by every executor JVM on a host; {@link LoadMode#COPY}: each
 *     JVM copies them into its own memory
 * @param threads the loading (and, for a model, running) threads; 0 for every core the JVM sees
 * @param prefetch in ALIAS mode, whether the load reads the weights in before it returns
 * @param partitionRules the tensor-parallel rules ({@link PartitionRules#toString()}, the rules
 *     file's text), or empty to load whole tensors
 * @param rank this rank, in {@code [0, world)}; 0 without a partition
 * @param world the number of ranks; 1 without a partition
 */
public record ModelManifest(String location, String revision, Map<String, String> expectedSha256, LoadMode mode,
    int threads, boolean prefetch, String partitionRules, int rank, int world) implements Serializable {
  @Serial
  private static final long serialVersionUID = 1L;

  /** Checks the values; the hashes are kept sorted by file name, so equal manifests are equal. */
  public ModelManifest {
    Objects.requireNonNull(location, "location");
    Objects.requireNonNull(revision, "revision");
    Objects.requireNonNull(mode, "mode");
    Objects.requireNonNull(partitionRules, "partitionRules");
    if (location.isBlank()) {
      throw new IllegalArgumentException("the manifest's location is empty");
    }
    TreeMap<String, String> hashes = new TreeMap<>();
    for (Map.Entry<String, String> entry : expectedSha256.entrySet()) {
      if (!entry.getValue().matches("[0-9a-fA-F]{64}")) {
        throw new IllegalArgumentException("the SHA-256 expected of '" + entry.getKey() + "' in " + location
            + " is not 64 hex digits: '" + entry.getValue() + "'");
      }
      hashes.put(entry.getKey(), entry.getValue().toLowerCase(java.util.Locale.ROOT));
    }
    // Map.copyOf keeps no order; a TreeMap does, and both serialize. Wrapped so it stays read-only.
    expectedSha256 = java.util.Collections.unmodifiableSortedMap(hashes);
    if (threads < 0) {
      throw new IllegalArgumentException("threads must be 0 (every core) or more, not " + threads);
    }
    if (world < 1 || rank < 0 || rank >= world) {
      throw new IllegalArgumentException("rank " + rank + " of world " + world + ": the world must be at least 1"
          + " and the rank in [0, world)");
    }
    if (world > 1 && partitionRules.isEmpty()) {
      throw new IllegalArgumentException("a world of " + world + " ranks needs partition rules (withPartition)");
    }
    if (!partitionRules.isEmpty()) {
      PartitionRules.parse(partitionRules, "the manifest of " + location);   // fails early, on the driver
    }
  }

  /** A manifest for {@code location}: no revision, no hashes, ALIAS, every core, no partition. */
  public static ModelManifest of(String location) {
    return new ModelManifest(location, "", Map.of(), LoadMode.ALIAS, 0, false, "", 0, 1);
  }

  /** With a revision (see the record description). */
  public ModelManifest withRevision(String newRevision) {
    return new ModelManifest(location, newRevision, expectedSha256, mode, threads, prefetch, partitionRules, rank, world);
  }

  /** With the SHA-256 each named file must have. */
  public ModelManifest withExpectedSha256(Map<String, String> hashes) {
    return new ModelManifest(location, revision, hashes, mode, threads, prefetch, partitionRules, rank, world);
  }

  /** With another load mode. */
  public ModelManifest withMode(LoadMode newMode) {
    return new ModelManifest(location, revision, expectedSha256, newMode, threads, prefetch, partitionRules, rank, world);
  }

  /** With another number of threads (0: every core). */
  public ModelManifest withThreads(int newThreads) {
    return new ModelManifest(location, revision, expectedSha256, mode, newThreads, prefetch, partitionRules, rank, world);
  }

  /** Whether an ALIAS load reads the weights in before it returns. */
  public ModelManifest withPrefetch(boolean newPrefetch) {
    return new ModelManifest(location, revision, expectedSha256, mode, threads, newPrefetch, partitionRules, rank, world);
  }

  /**
   * With tensor-parallel rules, kept as their text; each task picks its rank with
   * {@link #forRank}. A partition's dimension-1 slices are copies, so partitioned manifests are
   * usually COPY ({@link #withMode}); an ALIAS load binds only dimension-0 slices and refuses
   * the others.
   */
  public ModelManifest withPartition(PartitionRules rules) {
    return new ModelManifest(location, revision, expectedSha256, mode, threads, prefetch, rules.toString(), rank, world);
  }

  /** This manifest for one rank of {@code newWorld} (a barrier task's partition id and task count). */
  public ModelManifest forRank(int newRank, int newWorld) {
    return new ModelManifest(location, revision, expectedSha256, mode, threads, prefetch, partitionRules, newRank, newWorld);
  }

  /** The rank's partition, or null when the manifest has no rules. */
  public Partition partition() {
    return partitionRules.isEmpty() ? null
        : new Partition(rank, world, PartitionRules.parse(partitionRules, "the manifest of " + location));
  }

  /** The threads to use here: {@link #threads()}, or every core of this JVM when it is 0. */
  public int effectiveThreads() {
    return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
  }

  /** The load options the manifest describes, for {@code VarStore.fromCheckpoint} or {@code load}. */
  public LoadOptions loadOptions() {
    LoadOptions options = LoadOptions.defaults().withMode(mode).withThreads(effectiveThreads())
        .withPrefetch(mode == LoadMode.ALIAS && prefetch);
    Partition partition = partition();
    return partition == null ? options : options.withPartition(partition);
  }

  /**
   * What {@code Checkpoint.open(String)} is given: the location, with {@code @REVISION} added
   * for a model id that names none itself.
   */
  public String checkpointLocation() {
    boolean modelId = HubCache.isModelId(location) && !Files.exists(Path.of(location));
    return modelId && !revision.isEmpty() && location.indexOf('@') < 0 ? location + "@" + revision : location;
  }

  /**
   * The model directory for loaders that read a whole directory ({@code config.json}, the
   * tokenizer): the path itself, or the cached snapshot of a model id's revision.
   *
   * @throws CheckpointException if a model id is not in this host's cache
   * @throws NoSuchFileException if the path does not exist
   * @throws IllegalArgumentException if the location is a URL
   */
  public Path directory() throws IOException {
    if (Checkpoint.isUrl(location)) {
      throw new IllegalArgumentException(location + ": a model directory is read locally; a URL can only be"
          + " loaded as a checkpoint (COPY)");
    }
    Path path = Path.of(location);
    if (Files.exists(path)) {
      return path;
    }
    if (HubCache.isModelId(location)) {
      return HubCache.fromEnvironment().snapshotDirectory(checkpointLocation());
    }
    throw new NoSuchFileException(location, null, "the manifest's location does not exist on this host");
  }

  /**
   * Opens the checkpoint and checks the expected hashes (reading every file once; nothing when
   * there are none).
   *
   * @throws CheckpointException if a file's SHA-256 differs from the expected one (naming the
   *     file and both hashes), or the checkpoint breaks a rule
   * @throws IllegalArgumentException if an expected hash names no file of the checkpoint
   */
  public Checkpoint openVerified() throws IOException {
    Checkpoint checkpoint = Checkpoint.open(checkpointLocation());
    try {
      verify(checkpoint);
      return checkpoint;
    } catch (IOException | RuntimeException e) {
      checkpoint.close();
      throw e;
    }
  }

  /** Checks the expected hashes against {@code checkpoint}'s files (see {@link #openVerified()}). */
  public void verify(Checkpoint checkpoint) throws IOException {
    if (expectedSha256.isEmpty()) {
      return;
    }
    for (FileHashes.FileHash hash : FileHashes.sha256(checkpoint, expectedSha256, effectiveThreads())) {
      if (hash.mismatched()) {
        throw hash.mismatch();
      }
    }
  }

  /** One line: location, revision, mode, rank. */
  @Override
  public String toString() {
    return location + (revision.isEmpty() ? "" : "@" + revision) + " (" + mode
        + (world > 1 ? ", rank " + rank + " of " + world : "")
        + (expectedSha256.isEmpty() ? "" : ", " + expectedSha256.size() + " SHA-256") + ")";
  }
}
