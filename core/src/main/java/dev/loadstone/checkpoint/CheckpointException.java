package dev.loadstone.checkpoint;

import dev.loadstone.safetensors.SafeTensorsException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A model directory breaks a rule: its index is malformed, names a shard that is missing or
 * lies outside the directory, or disagrees with the shards. The {@link #reason()} is one of the
 * directory rules of {@link SafeTensorsException.Reason} ({@code NO_WEIGHTS},
 * {@code INVALID_INDEX}, {@code MISSING_SHARD}, ...), and {@link #file()} is always present:
 * the index, a shard, or the directory.
 *
 * <pre>{@code
 * try (Checkpoint model = Checkpoint.open(dir)) {
 *   ...
 * } catch (CheckpointException e) {          // the directory; SafeTensorsException catches a broken shard too
 *   System.err.println(e.getMessage());      // names the file, the tensor and the rule
 * }
 * }</pre>
 *
 * <p>A shard that breaks a rule of the file format raises a plain {@link SafeTensorsException}.
 */
public final class CheckpointException extends SafeTensorsException {
  private static final long serialVersionUID = 1L;

  /**
   * Creates an exception for a broken rule.
   *
   * @param reason the rule that failed
   * @param file the file concerned (the index, a shard, or the directory)
   * @param tensor the tensor concerned, or {@code null}
   * @param detail what was found, for the message
   */
  public CheckpointException(Reason reason, Path file, String tensor, String detail) {
    super(reason, Objects.requireNonNull(file, "file"), tensor, detail);
  }

  CheckpointException(Reason reason, Path file, String tensor, String detail, Throwable cause) {
    super(reason, Objects.requireNonNull(file, "file"), tensor, detail, cause);
  }
}
