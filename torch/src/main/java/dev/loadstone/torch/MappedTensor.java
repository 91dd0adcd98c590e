package dev.loadstone.torch;

import dev.loadstone.safetensors.TensorView;
import org.bytedeco.pytorch.Tensor;

/**
 * A libtorch tensor over a checkpoint's mapped bytes (see {@link TorchTensors#view}), readable
 * through this handle only while the checkpoint is open.
 *
 * <pre>{@code
 * try (MappedTensor embed = TorchTensors.view(checkpoint.tensor("model.embed_tokens.weight"))) {
 *   Tensor row = embed.tensor().select(0, tokenId).to(ScalarType.Float);   // copies one row
 * }   // detached: the handle's tensor no longer points into the mapping
 * }</pre>
 *
 * <p>Not thread-safe.
 */
public final class MappedTensor implements AutoCloseable {
  private final TensorView source;
  private final Tensor tensor;
  private boolean closed;

  MappedTensor(TensorView source, Tensor tensor) {
    this.source = source;
    this.tensor = tensor;
  }

  /** The checkpoint view this tensor wraps. */
  public TensorView source() {
    return source;
  }

  /** Whether the tensor can be read: this handle is open and so is the checkpoint. */
  public boolean isReadable() {
    return !closed && source.segment().scope().isAlive();
  }

  /**
   * The zero-copy tensor. Read it only while the checkpoint stays open; never write it.
   *
   * @throws IllegalStateException if this handle or the checkpoint is closed
   */
  public Tensor tensor() {
    if (closed) {
      throw new IllegalStateException("tensor '" + source.name() + "': this view is closed");
    }
    if (!source.segment().scope().isAlive()) {
      throw new IllegalStateException(source.file().map(Object::toString).orElse("the memory")
          + ": closed; tensor '" + source.name() + "' can no longer be read");
    }
    return tensor;
  }

  /**
   * Detaches the tensor from the mapping ({@code set_()} to an empty storage), so that this
   * handle's tensor, and every tensor object sharing its implementation, reads nothing rather
   * than unmapped memory. Idempotent.
   */
  @Override
  public void close() {
    if (!closed) {
      closed = true;
      tensor.set_();
      tensor.close();
    }
  }

  @Override
  public String toString() {
    return "MappedTensor[" + source.name() + ", " + source.dtype() + (isReadable() ? "" : ", closed") + "]";
  }
}
