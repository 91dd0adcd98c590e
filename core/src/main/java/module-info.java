/**
 * Loadstone core: the safetensors format on {@code java.lang.foreign}.
 *
 * <p>{@link dev.loadstone.safetensors.SafeTensors} maps a file and hands out zero-copy
 * {@link dev.loadstone.safetensors.TensorView}s of its tensors.
 */
module dev.loadstone.core {
  requires com.fasterxml.jackson.core;

  exports dev.loadstone.safetensors;
}
