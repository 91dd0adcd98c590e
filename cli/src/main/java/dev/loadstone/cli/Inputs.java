package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.checkpoint.HubCache;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Checks on the files named on the command line, before they are opened. */
final class Inputs {
  private Inputs() {}

  /**
   * The {@code .safetensors} file named by {@code argument}: it must exist and not be a
   * directory.
   *
   * @throws UsageException if the argument is not a valid path
   * @throws NoSuchFileException if nothing is there
   * @throws FileSystemException if it is a directory
   */
  static Path safetensorsFile(String argument) throws UsageException, FileSystemException {
    Path path = path(argument);
    if (Files.isDirectory(path)) {
      throw new FileSystemException(argument, null, "is a directory; name a .safetensors file");
    }
    if (!Files.exists(path)) {
      throw new NoSuchFileException(argument);
    }
    return path;
  }

  /**
   * The checkpoint named by {@code argument}, for
   * {@link dev.loadstone.checkpoint.Checkpoint#open}: a {@code .safetensors} file, an index file
   * or a model directory. It must exist; what it holds is checked when it is opened.
   *
   * @throws UsageException if the argument is not a valid path
   * @throws NoSuchFileException if nothing is there
   */
  static Path checkpoint(String argument) throws UsageException, NoSuchFileException {
    Path path = path(argument);
    if (!Files.exists(path)) {
      throw new NoSuchFileException(argument);
    }
    return path;
  }

  /**
   * The checkpoint named by {@code argument}, for {@link Checkpoint#open(String)}: a path (as
   * {@link #checkpoint}), a Hugging Face model id {@code ORG/NAME[@REVISION]} (read from the
   * local cache), or a URL ({@code http(s)://}, {@code s3://}). A path must exist; a model id and a URL are
   * checked when opened.
   *
   * @throws UsageException if the argument is empty, or neither a valid path nor a valid URL
   * @throws NoSuchFileException if it is neither an existing path, nor a model id, nor a URL
   */
  static String checkpointLocation(String argument) throws UsageException, NoSuchFileException {
    if (Checkpoint.isUrl(argument)) {
      try {
        if (new java.net.URI(argument).getHost() == null) {
          throw new UsageException("not a valid URL: '" + Text.oneLine(argument) + "' (no host)");
        }
      } catch (java.net.URISyntaxException e) {
        throw new UsageException("not a valid URL: '" + Text.oneLine(argument) + "' (" + e.getReason() + ")");
      }
      return argument;
    }
    if (HubCache.isModelId(argument) && !existsAsPath(argument)) {
      return argument;
    }
    checkpoint(argument);
    return argument;
  }

  /**
   * A checkpoint on this machine named by {@code argument}: a path (as {@link #checkpoint}), or
   * a model id, checked by opening it in the cache and then named by its snapshot folder. For
   * commands that read the files themselves.
   *
   * @param command the command, for the message refusing a URL
   * @throws UsageException if the argument is empty or a URL
   * @throws NoSuchFileException if nothing is there
   * @throws CheckpointException if a model id is not in the cache, or its checkpoint is broken
   */
  static Path localCheckpoint(String argument, String command) throws IOException, UsageException {
    if (Checkpoint.isUrl(argument)) {
      throw new UsageException(command + " reads checkpoints on this machine: a path or a cached model id"
          + " (ORG/NAME[@REVISION]), not a URL (inspect and verify read URLs)");
    }
    if (!argument.isEmpty() && !existsAsPath(argument) && HubCache.isModelId(argument)) {
      HubCache cache = HubCache.fromEnvironment();
      cache.open(argument).close();
      return cache.snapshotDirectory(argument);
    }
    return checkpoint(argument);
  }

  private static boolean existsAsPath(String argument) {
    try {
      return Files.exists(Path.of(argument), LinkOption.NOFOLLOW_LINKS);
    } catch (InvalidPathException e) {
      return false;
    }
  }

  /**
   * The path named by {@code argument}, which need not exist.
   *
   * @throws UsageException if the argument is empty or not a valid path
   */
  static Path path(String argument) throws UsageException {
    if (argument.isEmpty()) {
      throw new UsageException("an empty path");
    }
    try {
      return Path.of(argument);
    } catch (InvalidPathException e) {
      throw new UsageException("not a valid path: '" + Text.oneLine(argument) + "'");
    }
  }
}
