package dev.loadstone.checkpoint;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;

/**
 * A model directory breaks a rule: its index is malformed, names a shard that is missing or
 * lies outside the directory, or disagrees with the shards. Carries the rule that failed as a
 * {@link Reason}, the file concerned and, where there is one, the tensor.
 *
 * <pre>{@code
 * try (Checkpoint model = Checkpoint.open(dir)) {
 *   ...
 * } catch (CheckpointException e) {
 *   System.err.println(e.getMessage());   // names the file, the tensor and the rule
 * }
 * }</pre>
 *
 * <p>A shard that breaks a rule of the file format raises
 * {@link dev.loadstone.safetensors.SafeTensorsException} instead.
 */
public final class CheckpointException extends IOException {
  private static final long serialVersionUID = 1L;

  /** The rules of a model directory, one code each. */
  public enum Reason {
    /** The directory has neither {@code model.safetensors} nor {@code model.safetensors.index.json}. */
    NO_WEIGHTS("a checkpoint directory holds model.safetensors or model.safetensors.index.json"),
    /** The index is not well-formed JSON, or not of the expected shape. */
    INVALID_INDEX("the index is a JSON object whose weight_map maps tensor names to shard file"
        + " names, and whose metadata.total_size, if present, is a non-negative integer"),
    /** A shard name is empty, absolute, contains {@code ..} or otherwise leaves the directory. */
    INVALID_SHARD_NAME("a shard name is a relative path that stays inside the index's directory"),
    /** A shard named by the index does not exist. */
    MISSING_SHARD("every shard the index names exists"),
    /** A tensor listed in the index is not in the shard the index names. */
    TENSOR_MISSING_FROM_SHARD("each tensor the index lists is in the shard it names"),
    /** A shard holds a tensor that the index does not list. */
    TENSOR_NOT_IN_INDEX("the index lists every tensor of every shard"),
    /** A tensor name appears twice: in two shards, or twice in the index. */
    DUPLICATE_TENSOR("each tensor name appears once in the index and in one shard"),
    /** {@code metadata.total_size} differs from the total bytes of the tensors. */
    TOTAL_SIZE_MISMATCH("metadata.total_size equals the total bytes of the tensors' data");

    private final String rule;

    Reason(String rule) {
      this.rule = rule;
    }

    /** The rule, as a sentence fragment: what a valid checkpoint does. */
    public String rule() {
      return rule;
    }
  }

  private final Reason reason;
  private final transient Path file;
  private final String tensor;

  /**
   * Creates an exception for a broken rule.
   *
   * @param reason the rule that failed
   * @param file the file concerned (the index, a shard, or the directory)
   * @param tensor the tensor concerned, or {@code null}
   * @param detail what was found, for the message
   */
  public CheckpointException(Reason reason, Path file, String tensor, String detail) {
    super(message(reason, file, tensor, detail));
    this.reason = Objects.requireNonNull(reason, "reason");
    this.file = Objects.requireNonNull(file, "file");
    this.tensor = tensor;
  }

  CheckpointException(Reason reason, Path file, String tensor, String detail, Throwable cause) {
    this(reason, file, tensor, detail);
    initCause(cause);
  }

  /** The rule that failed. */
  public Reason reason() {
    return reason;
  }

  /** The file concerned: the index, a shard, or the directory. */
  public Path file() {
    return file;
  }

  /** The tensor concerned, when the rule concerns one tensor. */
  public Optional<String> tensor() {
    return Optional.ofNullable(tensor);
  }

  private static String message(Reason reason, Path file, String tensor, String detail) {
    StringBuilder message = new StringBuilder();
    message.append(file).append(": ").append(reason);
    if (tensor != null) {
      message.append(": tensor '").append(tensor).append('\'');
    }
    message.append(": ").append(detail).append(" (rule: ").append(reason.rule).append(')');
    return message.toString();
  }
}
