/**
 * Loadstone Llama: a Llama ({@code LlamaForCausalLM}) forward pass and generator in pure Java,
 * over weights that {@link dev.loadstone.store.VarStore} binds zero-copy.
 *
 * <p>{@link dev.loadstone.llama.LlamaModel} loads a Hugging Face model directory;
 * {@link dev.loadstone.llama.Session} runs the model with a KV cache;
 * {@link dev.loadstone.llama.Generator} and {@link dev.loadstone.llama.Sampler} turn logits into
 * tokens. The matrix kernels use the Vector API: run with
 * {@code --add-modules jdk.incubator.vector}.
 */
module dev.loadstone.llama {
  requires dev.loadstone.core;
  requires com.fasterxml.jackson.core;
  // Static, as in core: the JDK announces an incubator module on stderr whenever it is
  // resolved, so programs that never run a model (the CLI's verify) need not resolve it.
  // LlamaModel.load checks that it is there.
  requires static jdk.incubator.vector;

  exports dev.loadstone.llama;
  exports dev.loadstone.llama.tokenizer;
}
