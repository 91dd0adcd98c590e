package dev.loadstone.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.loadstone.store.LoadMode;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The llama-tiny fixture: greedy generation reproduces the recorded tokens exactly. */
class LlamaTinyTest {
  static final Path DIR = Path.of("src/test/resources/llama-tiny");

  @Test
  void greedyGenerationReproducesTheFixture() throws Exception {
    Expected expected = Expected.read(DIR.resolve("expected.json"));
    int[] prompt = expected.ints("prompt_ids");
    int[] generated = expected.ints("generated_ids");
    for (LlamaModel.Options options : new LlamaModel.Options[] {LlamaModel.Options.defaults().withThreads(1),
        LlamaModel.Options.defaults().withThreads(2), LlamaModel.Options.defaults().withThreads(2).withPrefetch()}) {
      int threads = options.threads();
      try (LlamaModel model = LlamaModel.load(DIR, options)) {
        assertEquals(LoadMode.ALIAS, model.loadMode());
        Generation result = new Generator(model, Sampler.greedy()).generate(prompt, generated.length, Set.of(), t -> { });
        assertArrayEquals(generated, result.tokens(), options.toString());
        float[] logits = model.newSession(prompt.length).forward(prompt, 0);
        Expected.TopK top = expected.topK("last_prompt_logits_top5");
        for (int i = 0; i < top.ids().length; i++) {
          assertEquals(top.logits()[i], logits[top.ids()[i]], 1e-3 * Math.abs(top.logits()[i]) + 1e-4, "logit of " + top.ids()[i]);
        }
      }
    }
  }
}
