/**
 * Loadstone core: the safetensors format on {@code java.lang.foreign}.
 *
 * <p>{@link dev.loadstone.safetensors.SafeTensors} maps a file and hands out zero-copy
 * {@link dev.loadstone.safetensors.TensorView}s of its tensors;
 * {@link dev.loadstone.safetensors.SafeTensorsWriter} writes one.
 * {@link dev.loadstone.checkpoint.Checkpoint} opens a model directory, single-file or sharded;
 * {@link dev.loadstone.checkpoint.CheckpointWriter} writes one.
 * {@link dev.loadstone.quantization.Quantization} finds a checkpoint's quantized weights, which
 * {@link dev.loadstone.store.VarStore} dequantizes on load.
 * {@link dev.loadstone.remote.RemoteStoreProvider} plugs in remote stores beyond HTTP(S).
 */
module dev.loadstone.core {
  requires com.fasterxml.jackson.core;
  // Remote checkpoints: range reads over HTTP(S).
  requires java.net.http;
  // ExtendedOpenOption.DIRECT (O_DIRECT) for loads of files not in the page cache.
  requires jdk.unsupported;
  // Optional: faster conversion kernels when the module is present at run time.
  requires static jdk.incubator.vector;

  exports dev.loadstone.safetensors;
  exports dev.loadstone.checkpoint;
  exports dev.loadstone.store;
  exports dev.loadstone.quantization;
  // Remote stores beyond HTTP (the loadstone-s3 module provides s3://).
  exports dev.loadstone.remote;
  uses dev.loadstone.remote.RemoteStoreProvider;
  // The system calls, for the command line's page-cache probes; not a public API.
  exports dev.loadstone.internal to dev.loadstone.cli, dev.loadstone.s3;
  // The load engine (planning, chunked parallel copy), for backends in this project: the
  // libtorch module loads through it. Not a public API.
  exports dev.loadstone.engine to dev.loadstone.torch;
}
