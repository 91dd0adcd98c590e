package dev.loadstone.checkpoint;

import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorSource;
import dev.loadstone.safetensors.TensorSpec;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A model's weights as Hugging Face stores them: one {@code .safetensors} file, or a directory
 * holding {@code model.safetensors}, or {@code model.safetensors.index.json} and the shards it
 * names. Every file is mapped (see {@link SafeTensors}) and its tensors are reachable by name.
 *
 * <pre>{@code
 * try (Checkpoint model = Checkpoint.open(Path.of("Llama-3.2-1B"))) {
 *   TensorView embed = model.tensor("model.embed_tokens.weight");
 *   System.out.println(model.files().size() + " files, " + model.totalSize() + " bytes");
 * }
 * }</pre>
 *
 * <p><b>What {@link #open} accepts.</b> A path to a {@code .safetensors} file opens that file. A
 * path to an index file ({@code *.index.json}) opens the shards it names. A directory opens its
 * {@code model.safetensors} if there is one (as {@code transformers} prefers it), otherwise its
 * {@code model.safetensors.index.json}.
 *
 * <p><b>What an index must satisfy</b> (each a {@link dev.loadstone.safetensors.SafeTensorsException.Reason}): it is a JSON
 * object with a {@code weight_map} object mapping each tensor name to a shard file name; every
 * shard name is a relative path that stays inside the index's directory (not empty, not
 * absolute, no {@code ..} component); every shard exists; every tensor listed is in its shard;
 * and every tensor of every shard is listed, for that shard, so the index describes the
 * shards exactly and no tensor appears twice. Shard files the index does not name are ignored.
 * Symbolic links are followed wherever they point, as in the Hugging Face cache, whose
 * snapshot files link to blobs elsewhere.
 *
 * <p><b>{@code metadata.total_size}</b>, the index's statement of the tensors' total bytes, is
 * not checked by {@link #open} (some tools write it loosely); {@link #checkTotalSize()} checks
 * it, and {@link #declaredTotalSize()} returns it.
 *
 * <p>{@link #close()} unmaps every file; later access to any of the views throws
 * {@link IllegalStateException}.
 */
public final class Checkpoint implements TensorSource, AutoCloseable {
  /** The file name of a single-file checkpoint. */
  public static final String SINGLE_FILE_NAME = "model.safetensors";
  /** The file name of a sharded checkpoint's index. */
  public static final String INDEX_FILE_NAME = "model.safetensors.index.json";

  private final Path index;
  private final List<SafeTensors> shards;
  private final List<Path> files;
  private final List<TensorView> tensors;
  private final Map<String, TensorView> byName;
  private final OptionalLong declaredTotalSize;

  private Checkpoint(Path index, List<SafeTensors> shards, OptionalLong declaredTotalSize) {
    this.index = index;
    this.shards = List.copyOf(shards);
    this.files = shards.stream().map(SafeTensors::path).toList();
    List<TensorView> all = new ArrayList<>();
    Map<String, TensorView> names = new HashMap<>();
    for (SafeTensors shard : shards) {
      for (TensorView tensor : shard.tensors()) {
        all.add(tensor);
        names.put(tensor.name(), tensor);
      }
    }
    this.tensors = Collections.unmodifiableList(all);
    this.byName = names;
    this.declaredTotalSize = declaredTotalSize;
  }

  /**
   * Opens a checkpoint: a {@code .safetensors} file, an index file, or a directory with
   * {@code model.safetensors} or {@code model.safetensors.index.json}. Nothing stays mapped if
   * this fails.
   *
   * @throws CheckpointException if the directory holds no weights, or the index breaks a rule
   *     (see the class description); the message names the file, tensor and rule
   * @throws dev.loadstone.safetensors.SafeTensorsException if a file breaks a rule of the format
   * @throws NoSuchFileException if {@code path} does not exist
   * @throws IOException if a file cannot be read or mapped
   */
  public static Checkpoint open(Path path) throws IOException {
    if (Files.isDirectory(path)) {
      Path single = path.resolve(SINGLE_FILE_NAME);
      if (Files.exists(single)) {
        return single(single);
      }
      Path indexFile = path.resolve(INDEX_FILE_NAME);
      if (Files.exists(indexFile)) {
        return sharded(indexFile);
      }
      throw new CheckpointException(Reason.NO_WEIGHTS, path, null,
          "the directory has neither " + SINGLE_FILE_NAME + " nor " + INDEX_FILE_NAME);
    }
    if (!Files.exists(path)) {
      throw new NoSuchFileException(path.toString());
    }
    Path name = path.getFileName();
    if (name != null && name.toString().endsWith(".index.json")) {
      return sharded(path);
    }
    return single(path);
  }

  private static Checkpoint single(Path file) throws IOException {
    return new Checkpoint(null, List.of(SafeTensors.open(file)), OptionalLong.empty());
  }

  private static Checkpoint sharded(Path indexFile) throws IOException {
    ShardIndex.Parsed parsed = ShardIndex.read(indexFile);
    Path directory = indexFile.toAbsolutePath().normalize().getParent();

    // The shards in name order, each with the tensors the index lists for it.
    Map<String, Path> resolved = new HashMap<>();
    Map<Path, List<String>> listed = new LinkedHashMap<>();
    Map<String, Path> owner = HashMap.newHashMap(parsed.weightMap().size());
    List<Map.Entry<String, String>> entries = new ArrayList<>(parsed.weightMap().entrySet());
    entries.sort(Map.Entry.comparingByValue(TensorSpec.nameOrder()));
    for (Map.Entry<String, String> entry : entries) {
      String shardName = entry.getValue();
      Path shard = resolved.get(shardName);
      if (shard == null) {
        shard = resolveShard(directory, indexFile, entry.getKey(), shardName);
        resolved.put(shardName, shard);
      }
      listed.computeIfAbsent(shard, s -> new ArrayList<>()).add(entry.getKey());
      owner.put(entry.getKey(), shard);
    }

    List<SafeTensors> shards = new ArrayList<>(listed.size());
    try {
      for (Map.Entry<Path, List<String>> entry : listed.entrySet()) {
        Path shardPath = entry.getKey();
        try {
          shards.add(SafeTensors.open(shardPath));
        } catch (NoSuchFileException e) {
          throw new CheckpointException(Reason.MISSING_SHARD, shardPath, entry.getValue().get(0),
              "the index " + indexFile + " lists " + entry.getValue().size()
                  + " tensor(s) in " + directory.relativize(shardPath)
                  + ", but the file does not exist", e);
        }
      }
      // First every listed tensor must be where the index says, so that a tensor found in a
      // shard the index does not name for it is then known to be in two shards.
      int i = 0;
      for (Map.Entry<Path, List<String>> entry : listed.entrySet()) {
        SafeTensors shard = shards.get(i++);
        for (String tensor : entry.getValue()) {
          if (!shard.contains(tensor)) {
            throw new CheckpointException(Reason.TENSOR_MISSING_FROM_SHARD, shard.path(), tensor,
                "the index " + indexFile + " lists it in " + directory.relativize(shard.path())
                    + ", whose " + shard.tensors().size() + " tensor(s) do not include it");
          }
        }
      }
      for (SafeTensors shard : shards) {
        for (TensorView tensor : shard.tensors()) {
          Path listedIn = owner.get(tensor.name());
          if (listedIn == null) {
            throw new CheckpointException(Reason.TENSOR_NOT_IN_INDEX, shard.path(), tensor.name(),
                "the shard holds it, but the index " + indexFile + " does not list it");
          }
          if (!listedIn.equals(shard.path())) {
            throw new CheckpointException(Reason.DUPLICATE_TENSOR, shard.path(), tensor.name(),
                "the shard holds it, and so does " + directory.relativize(listedIn)
                    + ", where the index " + indexFile + " lists it");
          }
        }
      }
      return new Checkpoint(indexFile, shards, parsed.totalSize());
    } catch (Throwable t) {
      for (SafeTensors shard : shards) {
        shard.close();
      }
      throw t;
    }
  }

  /**
   * Resolves a shard name from an index against the index's directory, refusing any name that
   * could reach outside it. Both separators count, so that an index written on Windows is
   * judged the same everywhere.
   */
  static Path resolveShard(Path directory, Path indexFile, String tensor, String shardName)
      throws CheckpointException {
    String why = null;
    if (shardName.isEmpty()) {
      why = "is empty";
    } else if (shardName.indexOf('\0') >= 0) {
      why = "holds a NUL character";
    } else if (shardName.startsWith("/") || shardName.startsWith("\\")
        || (shardName.length() >= 2 && shardName.charAt(1) == ':')) {
      why = "is an absolute path";
    } else {
      for (String part : shardName.split("[/\\\\]")) {
        if (part.equals("..")) {
          why = "has a '..' component";
          break;
        }
      }
    }
    Path shard = null;
    if (why == null) {
      try {
        Path relative = Path.of(shardName);
        if (relative.isAbsolute() || relative.getRoot() != null) {
          why = "is an absolute path";
        } else {
          shard = directory.resolve(relative).normalize();
          if (shard.equals(directory)) {
            why = "names the directory itself";
          } else if (!shard.startsWith(directory)) {
            why = "resolves outside the directory";
          }
        }
      } catch (InvalidPathException e) {
        why = "is not a valid path here (" + e.getReason() + ")";
      }
    }
    if (why != null) {
      throw new CheckpointException(Reason.INVALID_SHARD_NAME, indexFile, tensor,
          "its shard name \"" + shardName + "\" " + why);
    }
    return shard;
  }

  /**
   * The file that describes this checkpoint: the index of a sharded checkpoint, else the single
   * {@code .safetensors} file. For messages and reports.
   */
  @Override
  public Path path() {
    return index != null ? index : files.getFirst();
  }

  /** The index file, for a sharded checkpoint. */
  public Optional<Path> index() {
    return Optional.ofNullable(index);
  }

  /** The {@code .safetensors} files, in shard name order (one for a single-file checkpoint). */
  public List<Path> files() {
    return files;
  }

  /** The opened files, in the order of {@link #files()}. */
  public List<SafeTensors> shards() {
    return shards;
  }

  /** Every tensor: the files in the order of {@link #files()}, each in its data order. */
  @Override
  public List<TensorView> tensors() {
    return tensors;
  }

  /** The tensor of this name, if any. */
  @Override
  public Optional<TensorView> find(String name) {
    return Optional.ofNullable(byName.get(name));
  }

  /**
   * The {@code __metadata__} of the first file (of {@link #files()}). Writers put the same map
   * in every shard ({@code transformers} writes {@code {"format": "pt"}}), so this is the
   * checkpoint's. Empty when that file has none, or the index lists no tensors.
   */
  public Optional<Map<String, String>> metadata() {
    return shards.isEmpty() ? Optional.empty() : shards.get(0).metadata();
  }

  /** The total bytes of the tensors' data, summed over every file. */
  public long totalSize() {
    long total = 0;
    for (TensorView tensor : tensors) {
      total += tensor.byteSize();
    }
    return total;
  }

  /** The index's {@code metadata.total_size}, when the checkpoint is sharded and states one. */
  public OptionalLong declaredTotalSize() {
    return declaredTotalSize;
  }

  /**
   * Checks the index's {@code metadata.total_size}, where present, against {@link #totalSize()}.
   *
   * @throws CheckpointException with {@link Reason#TOTAL_SIZE_MISMATCH} if they differ
   */
  public void checkTotalSize() throws CheckpointException {
    if (declaredTotalSize.isPresent() && declaredTotalSize.getAsLong() != totalSize()) {
      throw new CheckpointException(Reason.TOTAL_SIZE_MISMATCH, index, null,
          "metadata.total_size is " + declaredTotalSize.getAsLong() + ", but the tensors hold "
              + totalSize() + " bytes");
    }
  }

  /** Unmaps every file. Idempotent. */
  @Override
  public void close() {
    for (SafeTensors shard : shards) {
      shard.close();
    }
  }

  @Override
  public String toString() {
    return "Checkpoint[" + (index != null ? index : files.get(0)) + ", " + files.size()
        + " file(s), " + tensors.size() + " tensors]";
  }
}
