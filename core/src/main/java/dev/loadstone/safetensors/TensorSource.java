package dev.loadstone.safetensors;

import java.nio.file.Path;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Optional;

/**
 * Tensors looked up by name: one file ({@link SafeTensors}) or a model directory
 * ({@code dev.loadstone.checkpoint.Checkpoint}).
 *
 * <pre>{@code
 * TensorView norm = source.tensor("model.norm.weight");
 * source.find("lm_head.weight").ifPresent(head -> ...);
 * }</pre>
 */
public interface TensorSource {

  /** Where the tensors come from, for messages: the file, or a checkpoint's index. */
  Path path();

  /** Every tensor, in the order of their data. */
  List<TensorView> tensors();

  /** The tensor of this name, if any. */
  Optional<TensorView> find(String name);

  /** The tensor names, in the order of {@link #tensors()}. */
  default List<String> names() {
    return tensors().stream().map(TensorView::name).toList();
  }

  /** Whether a tensor of this name exists. */
  default boolean contains(String name) {
    return find(name).isPresent();
  }

  /**
   * The tensor of this name.
   *
   * @throws NoSuchElementException if there is none
   */
  default TensorView tensor(String name) {
    return find(name).orElseThrow(() -> new NoSuchElementException(path() + ": no tensor named '" + name + "'"));
  }
}
