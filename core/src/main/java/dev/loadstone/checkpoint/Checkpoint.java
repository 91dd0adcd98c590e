package dev.loadstone.checkpoint;

import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorSource;
import dev.loadstone.safetensors.TensorSpec;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
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
 * {@code model.safetensors.index.json}. {@link #open(String)} also takes a Hugging Face model id,
 * read offline from the local cache ({@link HubCache}), and an {@code http(s)://} URL, opened by
 * its headers alone: a remote checkpoint maps nothing, and its tensors' bytes are read by a
 * COPY load with range requests ({@link #open(String, RemoteOptions)}, {@link #isRemote()}).
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

  Checkpoint(Path index, List<SafeTensors> shards, OptionalLong declaredTotalSize) {
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
    return open(path, CheckpointFiles.ANY_DIRECTORY);
  }

  /**
   * Opens a checkpoint named by a string: a path (as {@link #open(Path)}), a Hugging Face model
   * id {@code ORG/NAME} or {@code ORG/NAME@REVISION} read offline from the local cache
   * ({@link HubCache#fromEnvironment()}), or a URL: {@code http://}, {@code https://}, or
   * {@code s3://} with the {@code loadstone-s3} module ({@link #open(String, RemoteOptions)} with
   * {@link RemoteOptions#defaults()}).
   *
   * <pre>{@code
   * Checkpoint.open("models/llama");                      // a directory
   * Checkpoint.open("meta-llama/Llama-3.2-1B@main");      // the cache's snapshot of main
   * Checkpoint.open("https://host/org/name/resolve/main/"); // a remote model directory
   * }</pre>
   *
   * <p>A path that exists wins over a model id of the same spelling, as in {@code transformers}.
   *
   * @throws CheckpointException for a model id not in the cache (see {@link HubCache}), or a
   *     directory or index that breaks a rule
   * @throws NoSuchFileException if a path does not exist (and is not of the form of a model id)
   */
  public static Checkpoint open(String location) throws IOException {
    // The environment's remote options only for a URL: a malformed HF_ENDPOINT concerns no path.
    return isUrl(location) ? open(location, RemoteOptions.defaults()) : open(location, (RemoteOptions) null);
  }

  /**
   * {@link #open(String)}, reading a URL with {@code remote}. A remote checkpoint opens by
   * reading only each file's 8-byte length and header (and the index) with range requests, and
   * is validated as a local one is; its tensors' bytes are read by a COPY load
   * ({@code VarStore.load}) with {@link RemoteOptions#concurrency()} parallel range requests
   * of {@link RemoteOptions#rangeBytes()}. A URL ending in {@code .safetensors} is a file, one
   * ending in {@code .index.json} an index; any other is a directory (a Hugging Face
   * {@code resolve/REVISION/} URL, say), where {@code model.safetensors} is looked for first,
   * then {@code model.safetensors.index.json}.
   *
   * @param remote how to read a URL; unused (and may be null) for a path or model id
   * @throws NoSuchFileException naming the URL if a file it needs is not there
   * @throws IOException naming the URL if the server cannot be reached, refuses access or
   *     ignores range requests
   * @throws IllegalArgumentException if {@code location} starts as a URL but is not a valid one
   */
  public static Checkpoint open(String location, RemoteOptions remote) throws IOException {
    if (isUrl(location)) {
      Objects.requireNonNull(remote, "remote");
      URI url;
      try {
        url = new URI(location);
      } catch (URISyntaxException e) {
        throw new IllegalArgumentException("not a valid URL: '" + location + "' (" + e.getReason() + ")", e);
      }
      if (url.getHost() == null) {
        throw new IllegalArgumentException("not a valid URL: '" + location + "' (no host)");
      }
      return RemoteCheckpoints.open(url, remote);
    }
    Path path = null;
    try {
      path = Path.of(location);
    } catch (InvalidPathException e) {
      // not a path here; perhaps a model id
    }
    if ((path == null || !Files.exists(path, LinkOption.NOFOLLOW_LINKS)) && HubCache.isModelId(location)) {
      return HubCache.fromEnvironment().open(location);
    }
    if (path == null) {
      throw new NoSuchFileException(location, null, "not a valid path, model id or URL");
    }
    return open(path);
  }

  /**
   * Whether {@code location} is a URL: {@code http://}, {@code https://}, or
   * {@code SCHEME://...} of another scheme of at least two letters ({@code s3://}, read where a
   * {@link dev.loadstone.remote.RemoteStoreProvider} claims it, else refused with a message
   * saying which module reads it).
   */
  public static boolean isUrl(String location) {
    int colon = location.indexOf("://");
    if (colon < 2) {
      return false;
    }
    for (int i = 0; i < colon; i++) {
      char c = location.charAt(i);
      boolean letter = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z';
      if (!letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'))) {
        return false;
      }
    }
    return true;
  }

  /** Whether {@code location} is an {@code http://} or {@code https://} URL. */
  static boolean isHttp(String location) {
    String lower = location.toLowerCase(java.util.Locale.ROOT);
    return lower.startsWith("http://") || lower.startsWith("https://");
  }

  /** Opens a checkpoint in a directory whose files {@code lookup} finds and checks. */
  static Checkpoint open(Path path, CheckpointFiles lookup) throws IOException {
    if (Files.isDirectory(path)) {
      Path single = path.resolve(SINGLE_FILE_NAME);
      if (lookup.exists(single)) {
        lookup.check(single, null, null);
        return single(single);
      }
      Path indexFile = path.resolve(INDEX_FILE_NAME);
      if (lookup.exists(indexFile)) {
        lookup.check(indexFile, null, null);
        return sharded(indexFile, lookup);
      }
      throw new CheckpointException(Reason.NO_WEIGHTS, path, null, lookup.noWeights(path));
    }
    if (!Files.exists(path)) {
      throw new NoSuchFileException(path.toString());
    }
    Path name = path.getFileName();
    if (name != null && name.toString().endsWith(".index.json")) {
      return sharded(path, lookup);
    }
    return single(path);
  }

  private static Checkpoint single(Path file) throws IOException {
    return new Checkpoint(null, List.of(SafeTensors.open(file)), OptionalLong.empty());
  }

  /** Finds and opens the shards an index names: in a directory, or at URLs. */
  interface ShardOpener {
    /** Where the shard of this name lies. */
    Path resolve(String tensor, String shardName) throws CheckpointException;

    /**
     * Opens a shard.
     *
     * @param tensors the tensors the index lists in it
     * @throws CheckpointException with {@code MISSING_SHARD} if it does not exist
     */
    SafeTensors open(Path shard, String shardName, List<String> tensors) throws IOException;
  }

  private static Checkpoint sharded(Path indexFile, CheckpointFiles lookup) throws IOException {
    ShardIndex.Parsed parsed = ShardIndex.read(indexFile);
    Path directory = indexFile.toAbsolutePath().normalize().getParent();
    return sharded(indexFile, parsed, new ShardOpener() {
      @Override
      public Path resolve(String tensor, String shardName) throws CheckpointException {
        return resolveShard(directory, indexFile, tensor, shardName);
      }

      @Override
      public SafeTensors open(Path shard, String shardName, List<String> tensors) throws IOException {
        lookup.check(shard, indexFile, tensors.getFirst());
        try {
          return SafeTensors.open(shard);
        } catch (NoSuchFileException e) {
          throw missingShard(indexFile, shard, shardName, tensors, e);
        }
      }
    });
  }

  static CheckpointException missingShard(Path indexFile, Path shard, String shardName, List<String> tensors,
      IOException cause) {
    return new CheckpointException(Reason.MISSING_SHARD, shard, tensors.getFirst(),
        "the index " + indexFile + " lists " + tensors.size() + " tensor(s) in " + shardName
            + ", but the file does not exist", cause);
  }

  /**
   * A sharded checkpoint from its parsed index: the shards opened, then checked against the
   * index (every listed tensor in its shard, every shard's tensor listed there once).
   */
  static Checkpoint sharded(Path indexFile, ShardIndex.Parsed parsed, ShardOpener opener) throws IOException {
    // The shards in name order, each with the tensors the index lists for it.
    Map<String, Path> resolved = new HashMap<>();
    Map<Path, String> shardNames = new HashMap<>();
    Map<Path, List<String>> listed = new LinkedHashMap<>();
    Map<String, Path> owner = HashMap.newHashMap(parsed.weightMap().size());
    List<Map.Entry<String, String>> entries = new ArrayList<>(parsed.weightMap().entrySet());
    entries.sort(Map.Entry.comparingByValue(TensorSpec.nameOrder()));
    for (Map.Entry<String, String> entry : entries) {
      String shardName = entry.getValue();
      Path shard = resolved.get(shardName);
      if (shard == null) {
        shard = opener.resolve(entry.getKey(), shardName);
        resolved.put(shardName, shard);
        shardNames.putIfAbsent(shard, shardName);
      }
      listed.computeIfAbsent(shard, s -> new ArrayList<>()).add(entry.getKey());
      owner.put(entry.getKey(), shard);
    }

    List<SafeTensors> shards = new ArrayList<>(listed.size());
    try {
      for (Map.Entry<Path, List<String>> entry : listed.entrySet()) {
        shards.add(opener.open(entry.getKey(), shardNames.get(entry.getKey()), entry.getValue()));
      }
      // First every listed tensor must be where the index says, so that a tensor found in a
      // shard the index does not name for it is then known to be in two shards.
      int i = 0;
      for (Map.Entry<Path, List<String>> entry : listed.entrySet()) {
        SafeTensors shard = shards.get(i++);
        for (String tensor : entry.getValue()) {
          if (!shard.contains(tensor)) {
            throw new CheckpointException(Reason.TENSOR_MISSING_FROM_SHARD, shard.path(), tensor,
                "the index " + indexFile + " lists it in " + shardNames.get(entry.getKey())
                    + ", whose " + shard.tensors().size() + " tensor(s) do not include it");
          }
        }
      }
      i = 0;
      for (Map.Entry<Path, List<String>> entry : listed.entrySet()) {
        SafeTensors shard = shards.get(i++);
        for (TensorView tensor : shard.tensors()) {
          Path listedIn = owner.get(tensor.name());
          if (listedIn == null) {
            throw new CheckpointException(Reason.TENSOR_NOT_IN_INDEX, shard.path(), tensor.name(),
                "the shard holds it, but the index " + indexFile + " does not list it");
          }
          if (!listedIn.equals(entry.getKey())) {
            throw new CheckpointException(Reason.DUPLICATE_TENSOR, shard.path(), tensor.name(),
                "the shard holds it, and so does " + shardNames.get(listedIn)
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
   * Why a shard name from an index could reach outside the index's directory, or null if it
   * cannot: empty, a NUL, absolute, a {@code ..} component. Both separators count, so that an
   * index written on Windows is judged the same everywhere.
   */
  static String unsafeShardName(String shardName) {
    if (shardName.isEmpty()) {
      return "is empty";
    } else if (shardName.indexOf('\0') >= 0) {
      return "holds a NUL character";
    } else if (shardName.startsWith("/") || shardName.startsWith("\\")
        || (shardName.length() >= 2 && shardName.charAt(1) == ':')) {
      return "is an absolute path";
    }
    for (String part : shardName.split("[/\\\\]")) {
      if (part.equals("..")) {
        return "has a '..' component";
      }
    }
    return null;
  }

  /**
   * Resolves a shard name from an index against the index's directory, refusing any name that
   * could reach outside it. Both separators count, so that an index written on Windows is
   * judged the same everywhere.
   */
  static Path resolveShard(Path directory, Path indexFile, String tensor, String shardName)
      throws CheckpointException {
    String why = unsafeShardName(shardName);
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

  /**
   * The name of one of this checkpoint's files (of {@link #files()}, or the index): its path
   * relative to the folder of the index or single file (a shard name, as an index names it),
   * or, for a remote file, the last part of its URL.
   */
  public String nameOf(Path file) {
    Path folder = path().getParent();
    if (isRemote() || folder == null || file.getParent() == null) {
      return String.valueOf(file.getFileName());
    }
    return folder.toAbsolutePath().relativize(file.toAbsolutePath()).toString();
  }

  /**
   * Whether the checkpoint's files are remote (opened from a URL): nothing is mapped, the
   * tensors' bytes are read by a COPY load, and an ALIAS load is refused.
   */
  public boolean isRemote() {
    return !shards.isEmpty() && shards.getFirst().isRemote();
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
