package dev.loadstone.cli;

import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
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
