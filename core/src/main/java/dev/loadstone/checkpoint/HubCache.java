package dev.loadstone.checkpoint;

import dev.loadstone.internal.Sha256;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Hugging Face hub's local cache, as {@code huggingface_hub} (and so {@code transformers})
 * fills it, read offline: a model id such as {@code meta-llama/Llama-3.2-1B} or
 * {@code org/name@v1.0} becomes the checkpoint of one cached snapshot. Nothing here touches the
 * network.
 *
 * <pre>{@code
 * try (Checkpoint model = HubCache.fromEnvironment().open("meta-llama/Llama-3.2-1B")) { ... }
 * // the same: Checkpoint.open("meta-llama/Llama-3.2-1B")
 * }</pre>
 *
 * <p><b>The layout</b> (the hub's documented one). The root is {@code $HF_HUB_CACHE}, else
 * {@code $HUGGINGFACE_HUB_CACHE} (its older name), else {@code $HF_HOME/hub}, else
 * {@code $XDG_CACHE_HOME/huggingface/hub}, else {@code ~/.cache/huggingface/hub}. A model
 * {@code ORG/NAME} lives in {@code models--ORG--NAME}; {@code refs/REV} holds the 40-hex commit
 * a branch or tag names (a revision that is itself 40 hex digits and has no ref is a commit);
 * {@code snapshots/COMMIT/PATH} are the files, symbolic links into {@code blobs/} (or real
 * files, in caches made without links); {@code blobs/*.incomplete} are partial downloads;
 * {@code .no_exist/COMMIT/PATH} records a file the hub said does not exist at that commit.
 *
 * <p><b>Failures</b> are {@link CheckpointException}s whose reason says what is missing and
 * whose file is where it was looked for: {@code MODEL_NOT_CACHED} (no repository folder),
 * {@code REVISION_NOT_CACHED} (no ref, or a ref that holds no commit), {@code SNAPSHOT_MISSING}
 * (a commit without a snapshot folder), {@code DANGLING_LINK} (a snapshot link to a blob that
 * is gone), {@code INCOMPLETE_DOWNLOAD} (a file the checkpoint needs is still a
 * {@code .incomplete} blob), {@code MISSING_SHARD} and {@code NO_WEIGHTS} (files not in the
 * snapshot; the message says when {@code .no_exist} records them as absent upstream).
 */
public final class HubCache {
  /**
   * {@code ORG/NAME[@REVISION]}: the hub's repository names (letters, digits, {@code _ . -},
   * starting and ending with a letter, digit or {@code _}, without {@code --} or {@code ..}).
   */
  private static final Pattern MODEL_ID = Pattern.compile(
      "([A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)/([A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)(?:@(.+))?");
  private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");
  /** The hub's limit on a repository id's length. */
  private static final int MAX_ID_LENGTH = 96;
  /** The revision when none is given. */
  public static final String DEFAULT_REVISION = "main";

  private final Path root;

  private HubCache(Path root) {
    this.root = root;
  }

  /** The cache at {@code root} (the folder that holds {@code models--ORG--NAME} folders). */
  public static HubCache at(Path root) {
    return new HubCache(Objects.requireNonNull(root, "root"));
  }

  /** The cache the environment names, as {@code huggingface_hub} finds it (see the class description). */
  public static HubCache fromEnvironment() {
    return fromEnvironment(System::getenv, System.getProperty("user.home"));
  }

  /** {@link #fromEnvironment()} with the environment and home directory given, for tests. */
  static HubCache fromEnvironment(UnaryOperator<String> env, String home) {
    String hubCache = nonEmpty(env.apply("HF_HUB_CACHE"));
    if (hubCache == null) {
      hubCache = nonEmpty(env.apply("HUGGINGFACE_HUB_CACHE"));
    }
    if (hubCache != null) {
      return at(Path.of(expandHome(hubCache, home)));
    }
    String hfHome = nonEmpty(env.apply("HF_HOME"));
    if (hfHome != null) {
      return at(Path.of(expandHome(hfHome, home), "hub"));
    }
    String xdg = nonEmpty(env.apply("XDG_CACHE_HOME"));
    Path cacheHome = xdg != null ? Path.of(expandHome(xdg, home)) : Path.of(home, ".cache");
    return at(cacheHome.resolve("huggingface").resolve("hub"));
  }

  private static String nonEmpty(String value) {
    return value == null || value.isEmpty() ? null : value;
  }

  /** {@code ~} and {@code ~/...} as Python's {@code os.path.expanduser} reads them. */
  private static String expandHome(String path, String home) {
    return path.equals("~") ? home : path.startsWith("~/") ? home + path.substring(1) : path;
  }

  /** The cache's root folder. */
  public Path root() {
    return root;
  }

  /**
   * Whether {@code location} has the form of a model id, {@code ORG/NAME} or
   * {@code ORG/NAME@REVISION} (whether or not it is cached).
   */
  public static boolean isModelId(String location) {
    Matcher id = MODEL_ID.matcher(location);
    if (!id.matches()) {
      return false;
    }
    String repo = id.group(1) + "/" + id.group(2);
    return repo.length() <= MAX_ID_LENGTH && !repo.contains("--") && !repo.contains("..");
  }

  /**
   * The SHA-256 a cached file must have, from its blob's name: a snapshot file that is a
   * symbolic link into a {@code blobs/} folder, to a blob named by 64 hex digits (the hub names
   * its LFS files' blobs by their SHA-256). Empty for a real file (a cache made without links)
   * and for a blob named by a git blob id (a small file not stored with LFS): no name to check
   * against.
   */
  public static Optional<String> blobSha256(Path file) {
    if (!Files.isSymbolicLink(file)) {
      return Optional.empty();
    }
    try {
      Path target = file.resolveSibling(Files.readSymbolicLink(file)).normalize();
      Path parent = target.getParent();
      if (parent == null || parent.getFileName() == null || !parent.getFileName().toString().equals("blobs")) {
        return Optional.empty();
      }
      String name = target.getFileName().toString();
      return name.length() == 64 ? Sha256.parseHex(name) : Optional.empty();
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /**
   * Opens the cached checkpoint of a model id ({@code ORG/NAME}, revision {@code main}, or
   * {@code ORG/NAME@REVISION}): the snapshot's {@code model.safetensors}, or its index and
   * shards, as {@link Checkpoint#open(Path)} opens a directory.
   *
   * @throws CheckpointException if the id, revision or a file is not in the cache (see the class
   *     description), or the checkpoint breaks a rule
   * @throws IllegalArgumentException if {@code modelId} is not of the form of a model id
   */
  public Checkpoint open(String modelId) throws IOException {
    Snapshot snapshot = snapshot(modelId);
    return Checkpoint.open(snapshot.directory(), snapshot);
  }

  /**
   * The snapshot folder of a model id's revision ({@code snapshots/COMMIT}), for the model's
   * other files ({@code config.json}, the tokenizer).
   *
   * @throws CheckpointException if the id or revision is not in the cache
   * @throws IllegalArgumentException if {@code modelId} is not of the form of a model id
   */
  public Path snapshotDirectory(String modelId) throws CheckpointException {
    return snapshot(modelId).directory();
  }

  Snapshot snapshot(String modelId) throws CheckpointException {
    if (!isModelId(modelId)) {
      throw new IllegalArgumentException("not a model id (ORG/NAME or ORG/NAME@REVISION): '" + modelId + "'");
    }
    Matcher id = MODEL_ID.matcher(modelId);
    id.matches();
    String revision = id.group(3) == null ? DEFAULT_REVISION : id.group(3);
    Path repository = root.resolve("models--" + id.group(1) + "--" + id.group(2));
    if (!Files.isDirectory(repository)) {
      throw new CheckpointException(Reason.MODEL_NOT_CACHED, repository, null,
          "model " + id.group(1) + "/" + id.group(2) + " is not in the Hugging Face cache at " + root
              + " (set HF_HUB_CACHE or HF_HOME to use another cache)");
    }
    String commit = commit(repository, revision);
    Path directory = repository.resolve("snapshots").resolve(commit);
    if (!Files.isDirectory(directory)) {
      throw new CheckpointException(Reason.SNAPSHOT_MISSING, directory, null,
          "revision " + revision + (revision.equals(commit) ? "" : " (commit " + commit + ")")
              + " has no snapshot folder in the cache");
    }
    return new Snapshot(repository, commit, directory);
  }

  /** The commit a revision names: the content of {@code refs/REVISION}, else the revision if it is a commit. */
  private static String commit(Path repository, String revision) throws CheckpointException {
    Path ref;
    try {
      if (revision.indexOf('\0') >= 0 || revision.startsWith("/") || List.of(revision.split("/")).contains("..")) {
        throw new InvalidPathException(revision, "not a revision name");
      }
      ref = repository.resolve("refs").resolve(revision);
    } catch (InvalidPathException e) {
      throw new CheckpointException(Reason.REVISION_NOT_CACHED, repository, null,
          "'" + revision + "' is not a valid revision name");
    }
    if (Files.isRegularFile(ref)) {
      String content;
      try {
        content = Files.readString(ref, StandardCharsets.US_ASCII).strip();
      } catch (IOException e) {
        throw new CheckpointException(Reason.REVISION_NOT_CACHED, ref, null,
            "the ref cannot be read: " + e.getMessage(), e);
      }
      if (!COMMIT.matcher(content).matches()) {
        throw new CheckpointException(Reason.REVISION_NOT_CACHED, ref, null,
            "the ref holds '" + (content.length() > 60 ? content.substring(0, 60) + "..." : content)
                + "', not a 40-hex commit");
      }
      return content;
    }
    if (COMMIT.matcher(revision).matches()) {
      return revision;
    }
    throw new CheckpointException(Reason.REVISION_NOT_CACHED, ref, null,
        "revision " + revision + " is not in the cache: no such ref, and it is not a 40-hex commit");
  }

  /**
   * One cached snapshot, and how its files are checked before they are opened: a link that
   * leads nowhere, a partial download, a file the hub recorded as absent.
   */
  record Snapshot(Path repository, String commit, Path directory) implements CheckpointFiles {

    @Override
    public boolean exists(Path file) {
      return Files.exists(file, LinkOption.NOFOLLOW_LINKS);
    }

    @Override
    public void check(Path file, Path index, String tensor) throws CheckpointException {
      String name = directory.relativize(file).toString();
      if (Files.isSymbolicLink(file)) {
        Path target;
        try {
          target = file.resolveSibling(Files.readSymbolicLink(file)).normalize();
        } catch (IOException e) {
          throw new CheckpointException(Reason.DANGLING_LINK, file, tensor, "the link cannot be read: " + e.getMessage(), e);
        }
        if (target.getFileName() != null && target.getFileName().toString().endsWith(".incomplete")) {
          throw new CheckpointException(Reason.INCOMPLETE_DOWNLOAD, file, tensor,
              "the snapshot's " + name + " links to the partial download " + target);
        }
        if (!Files.exists(file)) {
          Path partial = target.resolveSibling(target.getFileName() + ".incomplete");
          if (Files.exists(partial)) {
            throw new CheckpointException(Reason.INCOMPLETE_DOWNLOAD, file, tensor,
                "the snapshot's " + name + " links to " + target + ", which is still the partial download " + partial);
          }
          throw new CheckpointException(Reason.DANGLING_LINK, file, tensor,
              "the snapshot's " + name + " links to " + target + ", which does not exist (the blob was deleted)");
        }
        return;
      }
      if (!Files.exists(file)) {
        throw missing(file, index, tensor, name);
      }
    }

    private CheckpointException missing(Path file, Path index, String tensor, String name) {
      Path noExist = repository.resolve(".no_exist").resolve(commit).resolve(name);
      if (Files.exists(noExist)) {
        return new CheckpointException(Reason.MISSING_SHARD, file, tensor,
            (index == null ? "" : "the index " + index + " names " + name + ", but ")
                + "the hub recorded that the repository has no " + name + " at commit " + commit + " (" + noExist + ")");
      }
      List<Path> partial = partialDownloads();
      if (!partial.isEmpty()) {
        return new CheckpointException(Reason.INCOMPLETE_DOWNLOAD, file, tensor,
            name + " is not in the snapshot, and " + repository.resolve("blobs") + " holds " + partial.size()
                + " partial download(s) (" + partial.getFirst().getFileName() + (partial.size() > 1 ? ", ..." : "")
                + "): a download was interrupted or is under way");
      }
      return new CheckpointException(Reason.MISSING_SHARD, file, tensor,
          (index == null ? "" : "the index " + index + " names " + name + ", but ")
              + "the file is not in the cache's snapshot (not downloaded)");
    }

    @Override
    public String noWeights(Path directory) {
      StringBuilder detail = new StringBuilder("the snapshot has neither " + Checkpoint.SINGLE_FILE_NAME + " nor "
          + Checkpoint.INDEX_FILE_NAME);
      Path noExist = repository.resolve(".no_exist").resolve(commit);
      for (String name : List.of(Checkpoint.SINGLE_FILE_NAME, Checkpoint.INDEX_FILE_NAME)) {
        if (Files.exists(noExist.resolve(name))) {
          detail.append("; the hub recorded that the repository has no ").append(name).append(" at commit ").append(commit);
        }
      }
      List<Path> partial = partialDownloads();
      if (!partial.isEmpty()) {
        detail.append("; ").append(repository.resolve("blobs")).append(" holds ").append(partial.size())
            .append(" partial download(s): a download was interrupted or is under way");
      }
      return detail.toString();
    }

    /** The {@code .incomplete} blobs of the repository, if any. */
    private List<Path> partialDownloads() {
      List<Path> partial = new ArrayList<>();
      try (DirectoryStream<Path> blobs = Files.newDirectoryStream(repository.resolve("blobs"), "*.incomplete")) {
        blobs.forEach(partial::add);
      } catch (IOException e) {
        // no blobs folder: nothing partial
      }
      partial.sort(null);
      return partial;
    }
  }
}
