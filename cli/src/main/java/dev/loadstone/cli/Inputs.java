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
   * directory (model directories are not supported yet).
   *
   * @throws UsageException if the argument is not a valid path
   * @throws NoSuchFileException if nothing is there
   * @throws FileSystemException if it is a directory
   */
  static Path safetensorsFile(String argument) throws UsageException, FileSystemException {
    Path path;
    try {
      path = Path.of(argument);
    } catch (InvalidPathException e) {
      throw new UsageException("not a valid path: '" + Text.oneLine(argument) + "'");
    }
    if (Files.isDirectory(path)) {
      throw new FileSystemException(argument, null,
          "is a directory; model directories are not supported yet, name a .safetensors file");
    }
    if (!Files.exists(path)) {
      throw new NoSuchFileException(argument);
    }
    return path;
  }
}
