package dev.loadstone.engine;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.quantization.Quantization;
import dev.loadstone.quantization.QuantizedWeight;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One target a backend creates for a checkpoint before loading it ({@code VarStore.declaredFor},
 * the libtorch backend's {@code fromCheckpoint}): its name (mapped by the options), dtype and
 * shape.
 *
 * @param name the target's name
 * @param dtype its dtype
 * @param shape its shape
 */
public record Declaration(String name, DType dtype, long[] shape) {

  /**
   * The targets for {@code checkpoint}, in its tensors' order: one per tensor whose name the
   * options map, float tensors in {@link LoadOptions#createDType()} when set; in COPY mode one
   * per quantized weight ({@link Quantization}) instead of its stored tensors, of its logical
   * name and shape, in {@link LoadOptions#createDType()} or else the weight's dtype; with a
   * partition, each tensor's slice shape (the tensor's own where the partition's rule cannot
   * cut it, so that the load refuses it, naming the file and the rule).
   *
   * @throws dev.loadstone.checkpoint.CheckpointException if the checkpoint's quantization
   *     configuration cannot be read
   * @throws IOException if {@code config.json} cannot be read
   */
  public static List<Declaration> of(Checkpoint checkpoint, LoadOptions options) throws IOException {
    Quantization quantization = options.mode() == LoadMode.COPY ? Quantization.of(checkpoint) : null;
    List<Declaration> declarations = new ArrayList<>();
    for (TensorView tensor : checkpoint.tensors()) {
      Optional<QuantizedWeight> weight = quantization == null ? Optional.empty()
          : quantization.holding(tensor.name()).filter(w -> w.problem().isEmpty());
      if (weight.isPresent()) {
        Optional<String> name = options.names().apply(weight.get().name());
        if (weight.get().tensors().getFirst() == tensor && name.isPresent()) {
          declarations.add(new Declaration(name.get(), options.createDType().orElse(weight.get().dtype()),
              weight.get().shape()));
        }
        continue;
      }
      Optional<String> name = options.names().apply(tensor.name());
      if (name.isPresent()) {
        declarations.add(new Declaration(name.get(), tensor.dtype().convertingFloatsTo(options.createDType()),
            shapeOf(tensor, options)));
      }
    }
    return declarations;
  }

  private static long[] shapeOf(TensorView tensor, LoadOptions options) {
    try {
      return options.partition().map(p -> p.shapeOf(tensor.name(), tensor.shape())).orElse(tensor.shape());
    } catch (IllegalArgumentException e) {
      return tensor.shape();
    }
  }
}
