/**
 * Loadstone's libtorch backend: fills the parameters and buffers of a JavaCPP PyTorch
 * {@code Module} from a safetensors checkpoint, by wrapping the mapped bytes with
 * {@code from_blob} (no copy) and copying them into each tensor with {@code copy_}.
 *
 * <p>{@link dev.loadstone.torch.TorchLoader} loads, {@link dev.loadstone.torch.TorchModules}
 * creates modules from checkpoints and saves them, {@link dev.loadstone.torch.TorchTensors}
 * maps dtypes and makes zero-copy views. On the module path the native jars are modules that
 * nothing requires: add them with {@code --add-modules} (for instance
 * {@code org.bytedeco.pytorch.linux.x86_64,org.bytedeco.openblas.linux.x86_64,org.bytedeco.javacpp.linux.x86_64},
 * or {@code ALL-MODULE-PATH}), and enable native access for {@code org.bytedeco.javacpp} and
 * this module.
 */
module dev.loadstone.torch {
  requires transitive dev.loadstone.core;
  requires transitive org.bytedeco.pytorch;

  exports dev.loadstone.torch;
}
