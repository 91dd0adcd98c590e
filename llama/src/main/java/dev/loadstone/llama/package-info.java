/**
 * A Llama ({@code LlamaForCausalLM}) forward pass and generator in pure Java.
 *
 * <pre>{@code
 * try (LlamaModel model = LlamaModel.load(Path.of("Llama-3.2-1B"), LlamaModel.Options.defaults())) {
 *   Generation out = new Generator(model, Sampler.greedy())
 *       .generate(promptIds, 64, Set.copyOf(model.config().eosTokenIds()), id -> {});
 * }
 * }</pre>
 *
 * <p>{@link dev.loadstone.llama.LlamaConfig} reads {@code config.json};
 * {@link dev.loadstone.llama.LlamaModel} binds the weights through a
 * {@link dev.loadstone.store.VarStore} (zero-copy for F32, F16 and BF16);
 * {@link dev.loadstone.llama.Session} runs tokens with a KV cache;
 * {@link dev.loadstone.llama.Generator} and {@link dev.loadstone.llama.Sampler} pick tokens;
 * {@link dev.loadstone.llama.ReadBandwidth} measures the memory bandwidth that bounds decoding.
 */
package dev.loadstone.llama;
