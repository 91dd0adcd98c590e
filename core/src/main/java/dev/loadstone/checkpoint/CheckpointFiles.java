package dev.loadstone.checkpoint;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How a checkpoint's files are found and checked before they are opened: in any directory, or
 * in a snapshot of the Hugging Face cache ({@link HubCache.Snapshot}), where a file may be a
 * link to a deleted blob or a partial download and deserves a more precise error.
 */
interface CheckpointFiles {
  /** Files in a plain directory: a file exists when what it names (or links to) exists. */
  CheckpointFiles ANY_DIRECTORY = new CheckpointFiles() {
    @Override
    public boolean exists(Path file) {
      return Files.exists(file);
    }

    @Override
    public void check(Path file, Path index, String tensor) {
      // opening the file says what is wrong with it
    }

    @Override
    public String noWeights(Path directory) {
      return "the directory has neither " + Checkpoint.SINGLE_FILE_NAME + " nor " + Checkpoint.INDEX_FILE_NAME;
    }
  };

  /** Whether the directory holds {@code file}, in the sense that decides which of its files to open. */
  boolean exists(Path file);

  /**
   * Checks a file the checkpoint needs before it is opened.
   *
   * @param index the index that names it, or null
   * @param tensor the first tensor the index lists in it, or null
   * @throws CheckpointException if it cannot be opened, saying why
   */
  void check(Path file, Path index, String tensor) throws CheckpointException;

  /** What to say when the directory has neither file of a checkpoint. */
  String noWeights(Path directory);
}
