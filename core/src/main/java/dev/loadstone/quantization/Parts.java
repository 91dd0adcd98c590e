package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.TensorSource;
import dev.loadstone.safetensors.TensorView;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The tensors of a checkpoint as a scheme looks for a quantized weight's parts: lookups by
 * name, and checks of dtypes and shapes whose errors name the file, the tensor and the rule.
 */
final class Parts {
  /** Scale dtypes every scheme accepts. */
  static final List<DType> SCALE_DTYPES = List.of(DType.F32, DType.BF16, DType.F16);

  private final TensorSource source;

  Parts(TensorSource source) {
    this.source = source;
  }

  List<TensorView> tensors() {
    return source.tensors();
  }

  /** The tensors named {@code suffix} or {@code PREFIX.suffix}, in checkpoint order. */
  List<TensorView> named(String suffix) {
    return source.tensors().stream()
        .filter(t -> t.name().equals(suffix) || t.name().endsWith("." + suffix))
        .toList();
  }

  /** The module prefix of a tensor {@link #named} {@code suffix}: {@code "model.x."} or {@code ""}. */
  static String prefix(TensorView tensor, String suffix) {
    return tensor.name().substring(0, tensor.name().length() - suffix.length());
  }

  Optional<TensorView> find(String name) {
    return source.find(name);
  }

  /**
   * The companion {@code name} of {@code of}.
   *
   * @param what what the companion is, for the message ("its scales")
   */
  TensorView require(String name, TensorView of, String scheme, String what) throws CheckpointException {
    Optional<TensorView> found = source.find(name);
    if (found.isEmpty()) {
      throw new CheckpointException(Reason.MISSING_QUANTIZATION_COMPANION, file(of), of.name(),
          "it is quantized (" + scheme + "), but " + what + " '" + name + "' is not in the checkpoint");
    }
    return found.get();
  }

  void requireDType(TensorView tensor, String scheme, List<DType> allowed) throws CheckpointException {
    if (!allowed.contains(tensor.dtype())) {
      throw inconsistent(tensor, "its dtype is " + tensor.dtype() + ", " + scheme + " stores it as "
          + (allowed.size() == 1 ? allowed.getFirst() : "one of " + allowed));
    }
  }

  void requireShape(TensorView tensor, String scheme, String why, long... expected) throws CheckpointException {
    if (!Arrays.equals(tensor.shape(), expected)) {
      throw inconsistent(tensor, "its shape is " + Arrays.toString(tensor.shape()) + ", " + scheme
          + " needs " + Arrays.toString(expected) + " (" + why + ")");
    }
  }

  void requireRank(TensorView tensor, String scheme, int rank) throws CheckpointException {
    if (tensor.rank() != rank) {
      throw inconsistent(tensor, "it has " + tensor.rank() + " dimension(s), " + scheme + " stores it with " + rank);
    }
  }

  CheckpointException inconsistent(TensorView tensor, String detail) {
    return new CheckpointException(Reason.INCONSISTENT_QUANTIZED_TENSORS, file(tensor), tensor.name(), detail);
  }

  /** The tensor's file, or the checkpoint's path for a tensor held in memory. */
  Path file(TensorView tensor) {
    return tensor.file().orElse(source.path());
  }

  /** The logical size of a dimension, checked to fit the {@code int} a row of values is indexed by. */
  int columns(TensorView tensor, long columns) throws CheckpointException {
    if (columns <= 0 || columns > Integer.MAX_VALUE - 8) {
      throw inconsistent(tensor, "it gives the weight " + columns + " input columns");
    }
    return (int) columns;
  }
}
