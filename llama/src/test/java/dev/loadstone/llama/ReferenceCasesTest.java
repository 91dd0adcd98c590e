package dev.loadstone.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.DType;
import dev.loadstone.store.LoadMode;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Tiny random checkpoints with outputs of a float32 PyTorch forward pass written from
 * transformers' Llama math (full recompute per step): each covers what the fixtures do not.
 *
 * <ul>
 *   <li>{@code gqa1-f32}: F32 weights, as many key/value heads as query heads, head dim 8;
 *   <li>{@code gqa4-tied-llama3-bf16}: four query heads per key/value head, tied embeddings,
 *       {@code rope_scaling} of type llama3 (all three frequency bands), {@code head_dim} 12
 *       with 8 heads over a hidden size of 64;
 *   <li>{@code rope-parameters-f16-sharded}: F16 weights in two shards with an index, the
 *       llama3 settings and {@code rope_theta} in the newer {@code rope_parameters} form;
 *   <li>{@code odd-sizes-linear-long-prompt-bf16}: widths that are no multiple of a vector
 *       (hidden 72, intermediate 104, head dim 18), one key/value head, the legacy
 *       {@code {"type": "linear"}} scaling, and an 80-token prompt (two batched passes).
 * </ul>
 */
class ReferenceCasesTest {
  static final Path ROOT = Path.of("src/test/resources/reference");

  @ParameterizedTest
  @ValueSource(strings = {"gqa1-f32", "gqa4-tied-llama3-bf16", "rope-parameters-f16-sharded",
      "odd-sizes-linear-long-prompt-bf16"})
  void matchesTheReference(String name) throws Exception {
    Path dir = ROOT.resolve(name);
    Expected expected = Expected.read(dir.resolve("expected.json"));
    int[] prompt = expected.ints("prompt_ids");
    int[] generated = expected.ints("generated_ids");
    for (int threads : new int[] {1, 2}) {
      try (LlamaModel model = LlamaModel.load(dir, LlamaModel.Options.defaults().withThreads(threads))) {
        assertEquals(LoadMode.ALIAS, model.loadMode());
        float[] logits = model.newSession(prompt.length).forward(prompt, 0);
        assertTopK(expected.topK("last_prompt_logits_top5"), logits);
        Generation result = new Generator(model, Sampler.greedy()).generate(prompt, generated.length, Set.of(), t -> { });
        assertArrayEquals(generated, result.tokens(), name + ", threads " + threads);
      }
    }
  }

  /** A copy into F32 (COPY mode) computes what the stored dtype computes. */
  @ParameterizedTest
  @ValueSource(strings = {"gqa4-tied-llama3-bf16", "rope-parameters-f16-sharded"})
  void copiedToF32GivesTheSameTokens(String name) throws Exception {
    Path dir = ROOT.resolve(name);
    Expected expected = Expected.read(dir.resolve("expected.json"));
    int[] prompt = expected.ints("prompt_ids");
    try (LlamaModel model = LlamaModel.load(dir, LlamaModel.Options.defaults().withWeightType(DType.F32))) {
      assertEquals(LoadMode.COPY, model.loadMode());
      assertEquals(Set.of(DType.F32), model.weightTypes());
      assertTopK(expected.topK("last_prompt_logits_top5"), model.newSession(prompt.length).forward(prompt, 0));
      int[] generated = expected.ints("generated_ids");
      Generation result = new Generator(model, Sampler.greedy()).generate(prompt, generated.length, Set.of(), t -> { });
      assertArrayEquals(generated, result.tokens());
    }
  }

  static void assertTopK(Expected.TopK top, float[] logits) {
    for (int i = 0; i < top.ids().length; i++) {
      float want = top.logits()[i];
      assertEquals(want, logits[top.ids()[i]], 1e-3 * Math.abs(want) + 1e-4, "logit of " + top.ids()[i]);
    }
    assertTrue(Sampler.argmax(logits) == top.ids()[0], "argmax");
  }
}
