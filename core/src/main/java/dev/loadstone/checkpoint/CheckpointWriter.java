package dev.loadstone.checkpoint;

import dev.loadstone.internal.AtomicFile;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorSpec;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.safetensors.TensorWriter;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Writes a model directory as Hugging Face does: {@code model.safetensors} when everything fits
 * in one shard, otherwise shards named {@code model-00001-of-00003.safetensors} and the index
 * {@code model.safetensors.index.json}. {@link Checkpoint#open} reads the result.
 *
 * <p><b>The split</b> is {@code huggingface_hub}'s ({@code split_state_dict_into_shards}),
 * applied to the tensors in {@link TensorSpec#canonicalOrder()}: tensors fill a shard while its
 * tensor bytes stay within the maximum shard size (default 5,000,000,000 bytes); the next
 * tensor starts a new shard; a tensor larger than the maximum gets a shard of its own, numbered
 * before the shard being filled at the time. Each shard is a file exactly as
 * {@link SafeTensorsWriter} writes it, with the same {@code __metadata__}. The index is written
 * as {@code transformers} writes it: {@code {"metadata": {"total_size": N}, "weight_map":
 * {...}}}, two-space indented, keys sorted, non-ASCII escaped, with a final newline.
 *
 * <p><b>Crash safety.</b> Each file, every shard and the index, is written to a hidden
 * temporary file in the directory, forced to disk and renamed over its name in one atomic step
 * (as {@link SafeTensorsWriter} does), so each file is at every moment its earlier version or
 * the whole new one. Nothing is renamed until every shard is complete and on disk: until then
 * the directory is as it was, and a failure or a {@link #close()} without commit leaves it so,
 * deleting the temporary files. {@link #commit()} then renames the shards in shard order, writes
 * the index last, and afterwards deletes the files of an earlier checkpoint that would mislead
 * a reader: {@code model.safetensors} when writing shards, the index when writing one file, and
 * {@code model-NNNNN-of-NNNNN.safetensors} files not written now.
 *
 * <p>The renames together are not one atomic step. {@link Checkpoint#open} reads
 * {@code model.safetensors} where there is one, else the index, so a reader sees the earlier
 * checkpoint or the whole new one when the directory held none, one file, or shards named
 * otherwise (another shard count); but when new shards replace earlier ones of the same names,
 * a crash or a failed rename or index write inside {@link #commit()} can leave new shards next
 * to earlier ones under the earlier index.
 *
 * <p><b>Streaming</b>, for checkpoints larger than memory: declare the tensors, then stream
 * their bytes in the order of {@link #tensors()}:
 *
 * <pre>{@code
 * try (CheckpointWriter out = CheckpointWriter.create(dir, Map.of("format", "pt"), specs,
 *     CheckpointWriter.DEFAULT_MAX_SHARD_SIZE)) {
 *   for (TensorSpec spec : out.tensors()) {
 *     out.write(spec.name(), bytesOf(spec));            // in chunks of any size
 *   }
 *   out.commit();
 * }
 * }</pre>
 *
 * <p>Instances are not thread-safe.
 */
public final class CheckpointWriter implements TensorWriter {
  /** The default maximum shard size, Hugging Face's: 5 GB of tensor data. */
  public static final long DEFAULT_MAX_SHARD_SIZE = 5_000_000_000L;

  /** A shard file name as Hugging Face names them. */
  private static final Pattern SHARD_NAME = Pattern.compile("model-\\d{5,}-of-\\d{5,}\\.safetensors");

  private final Path directory;
  private final Map<String, String> metadata;
  private final List<TensorSpec> tensors;
  private final List<List<TensorSpec>> shards;
  private final List<String> files;
  private final Map<String, Integer> shardOf;
  private final SafeTensorsWriter[] writers;
  private boolean committed;
  private boolean closed;

  private CheckpointWriter(Path directory, Map<String, String> metadata, List<TensorSpec> tensors,
      List<List<TensorSpec>> shards) {
    this.directory = directory;
    this.metadata = metadata;
    this.tensors = tensors;
    this.shards = shards;
    int count = shards.size();
    List<String> names = new ArrayList<>(count);
    Map<String, Integer> owner = HashMap.newHashMap(tensors.size());
    for (int i = 0; i < count; i++) {
      names.add(count == 1 ? Checkpoint.SINGLE_FILE_NAME
          : String.format("model-%05d-of-%05d.safetensors", i + 1, count));
      for (TensorSpec spec : shards.get(i)) {
        owner.put(spec.name(), i);
      }
    }
    this.files = List.copyOf(names);
    this.shardOf = owner;
    this.writers = new SafeTensorsWriter[count];
  }

  /** Writes a checkpoint of these tensors, in shards of at most 5,000,000,000 bytes. */
  public static void write(Path directory, Map<String, String> metadata,
      Collection<TensorView> tensors) throws IOException {
    write(directory, metadata, tensors, DEFAULT_MAX_SHARD_SIZE);
  }

  /**
   * Writes a checkpoint of these tensors in one call.
   *
   * @param directory the model directory; created if missing
   * @param metadata the {@code __metadata__} of every shard, or {@code null} for none
   * @param tensors the tensors, each with a distinct name, in any order
   * @param maxShardSize the most tensor bytes in a shard, unless one tensor alone is larger
   * @throws IllegalArgumentException as {@link #create}
   * @throws IOException if writing fails; no file is then renamed into place, unless the failure
   *     came while renaming
   */
  public static void write(Path directory, Map<String, String> metadata,
      Collection<TensorView> tensors, long maxShardSize) throws IOException {
    try (TensorWriter out = create(directory, metadata, tensors.stream().map(TensorSpec::of).toList(), maxShardSize)) {
      out.writeAllAndCommit(tensors);
    }
  }

  /** Starts a checkpoint in shards of at most 5,000,000,000 bytes; see the other overload. */
  public static CheckpointWriter create(Path directory, Map<String, String> metadata,
      Collection<TensorSpec> tensors) throws IOException {
    return create(directory, metadata, tensors, DEFAULT_MAX_SHARD_SIZE);
  }

  /**
   * Starts writing a checkpoint: plans the shards and validates every shard's header. Files are
   * created as the first bytes for them arrive.
   *
   * @param directory the model directory; created if missing
   * @param metadata the {@code __metadata__} of every shard, or {@code null} for none
   * @param tensors every tensor of the checkpoint, in any order
   * @param maxShardSize the most tensor bytes in a shard, unless one tensor alone is larger
   * @throws IllegalArgumentException if {@code maxShardSize} is not positive, two tensors share
   *     a name, or a shard could not be written (see {@link SafeTensorsWriter#create})
   * @throws IOException if the directory cannot be created
   */
  public static CheckpointWriter create(Path directory, Map<String, String> metadata,
      Collection<TensorSpec> tensors, long maxShardSize) throws IOException {
    Objects.requireNonNull(directory, "directory");
    Objects.requireNonNull(tensors, "tensors");
    if (maxShardSize <= 0) {
      throw new IllegalArgumentException("the maximum shard size must be positive, not "
          + maxShardSize);
    }
    List<TensorSpec> sorted = new ArrayList<>(tensors);
    Set<String> names = HashSet.newHashSet(sorted.size());
    for (TensorSpec spec : sorted) {
      Objects.requireNonNull(spec, "a tensor spec is null");
      if (!names.add(spec.name())) {
        throw new IllegalArgumentException("tensor '" + spec.name() + "' appears more than once");
      }
    }
    sorted.sort(TensorSpec.canonicalOrder());
    List<List<TensorSpec>> shards = split(sorted, maxShardSize);
    Map<String, String> copy = metadata == null ? null
        : Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    for (List<TensorSpec> shard : shards) {
      SafeTensorsWriter.header(copy, shard); // validates names, metadata and header size
    }
    Path absolute = directory.toAbsolutePath();
    Files.createDirectories(absolute);
    return new CheckpointWriter(absolute, copy, List.copyOf(sorted), shards);
  }

  /** {@code huggingface_hub}'s greedy split, over tensors in canonical order. */
  private static List<List<TensorSpec>> split(List<TensorSpec> sorted, long maxShardSize) {
    List<List<TensorSpec>> shards = new ArrayList<>();
    List<TensorSpec> current = new ArrayList<>();
    long currentSize = 0;
    for (TensorSpec spec : sorted) {
      long size = spec.byteSize();
      if (size > maxShardSize) {
        shards.add(List.of(spec));
        continue;
      }
      if (size > maxShardSize - currentSize) {
        shards.add(List.copyOf(current));
        current = new ArrayList<>();
        currentSize = 0;
      }
      current.add(spec);
      currentSize += size;
    }
    if (!current.isEmpty() || shards.isEmpty()) {
      shards.add(List.copyOf(current));
    }
    return List.copyOf(shards);
  }

  /** Every tensor, in the order in which to stream their bytes ({@link TensorSpec#canonicalOrder()}). */
  @Override
  public List<TensorSpec> tensors() {
    return tensors;
  }

  /** The file names of the shards, in shard order, without the index. */
  @Override
  public List<String> files() {
    return files;
  }

  /** The tensors of each shard, in shard order (the order of {@link #files()}). */
  public List<List<TensorSpec>> shards() {
    return shards;
  }

  /** The model directory. */
  public Path directory() {
    return directory;
  }

  /**
   * Appends {@code chunk} to the bytes of tensor {@code name}, as
   * {@link SafeTensorsWriter#write(String, MemorySegment)} does within its shard.
   *
   * @throws IllegalArgumentException if no tensor has this name, or the chunk overflows it
   * @throws IllegalStateException if the tensor's bytes do not come next in its shard, or the
   *     writer is committed or closed
   * @throws IOException if writing fails
   */
  @Override
  public void write(String name, MemorySegment chunk) throws IOException {
    writerFor(name).write(name, chunk);
  }

  /** Writes a whole tensor, as {@link SafeTensorsWriter#write(TensorView)} does. */
  @Override
  public void write(TensorView tensor) throws IOException {
    writerFor(tensor.name()).write(tensor);
  }

  /**
   * Puts the checkpoint in place once every tensor is complete: renames every shard into
   * place, writes the index (when there are several shards), then deletes the files of an
   * earlier checkpoint that would contradict this one.
   *
   * @throws IllegalStateException if a tensor is incomplete (the message names it), a write
   *     failed, or the writer is committed or closed
   * @throws IOException if a rename or the index fails
   */
  @Override
  public void commit() throws IOException {
    requireOpen();
    for (int i = 0; i < writers.length; i++) {
      shardWriter(i); // shards no byte went to yet: complete now if all their tensors are empty
    }
    for (SafeTensorsWriter writer : writers) {
      if (!writer.isComplete()) {
        writer.commit(); // throws, naming the first incomplete tensor; renames nothing
      }
    }
    for (SafeTensorsWriter writer : writers) {
      writer.commit();
    }
    if (files.size() > 1) {
      Map<String, String> weightMap = HashMap.newHashMap(tensors.size());
      long totalSize = 0;
      for (int i = 0; i < shards.size(); i++) {
        for (TensorSpec spec : shards.get(i)) {
          weightMap.put(spec.name(), files.get(i));
          totalSize += spec.byteSize();
        }
      }
      AtomicFile.write(directory.resolve(Checkpoint.INDEX_FILE_NAME),
          ShardIndex.format(totalSize, weightMap));
    }
    committed = true;
    deleteStaleFiles();
  }

  /** Ends the writer; without a successful {@link #commit()} it deletes every temporary file. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (SafeTensorsWriter writer : writers) {
      if (writer != null) {
        writer.close();
      }
    }
  }

  private SafeTensorsWriter writerFor(String name) throws IOException {
    requireOpen();
    Integer shard = shardOf.get(Objects.requireNonNull(name, "name"));
    if (shard == null) {
      throw new IllegalArgumentException(directory + ": no tensor named '" + name
          + "' was declared");
    }
    return shardWriter(shard);
  }

  /** The writer of shard {@code i}, created (its temporary file and header) on first use. */
  private SafeTensorsWriter shardWriter(int i) throws IOException {
    if (writers[i] == null) {
      writers[i] = SafeTensorsWriter.create(directory.resolve(files.get(i)), metadata,
          shards.get(i));
    }
    return writers[i];
  }

  private void requireOpen() {
    if (committed || closed) {
      throw new IllegalStateException(directory + ": the checkpoint writer is "
          + (committed ? "committed" : "closed"));
    }
  }

  private void deleteStaleFiles() throws IOException {
    Set<String> current = new HashSet<>(files);
    List<Path> stale = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(directory)) {
      for (Path entry : entries) {
        String name = entry.getFileName().toString();
        boolean misleading = files.size() > 1 ? name.equals(Checkpoint.SINGLE_FILE_NAME)
            : name.equals(Checkpoint.INDEX_FILE_NAME);
        if (!current.contains(name) && (misleading || SHARD_NAME.matcher(name).matches())) {
          stale.add(entry);
        }
      }
    }
    for (Path path : stale) {
      Files.deleteIfExists(path);
    }
  }

  @Override
  public String toString() {
    return "CheckpointWriter[" + directory + ", " + tensors.size() + " tensors in " + files.size()
        + " file(s)]";
  }
}
