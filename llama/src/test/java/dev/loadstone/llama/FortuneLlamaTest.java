package dev.loadstone.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The trained fortune-llama example (BF16, tied embeddings, 8 heads over 4 key/value heads):
 * first-step logits and greedy continuations recorded with a float32 forward pass in PyTorch.
 */
class FortuneLlamaTest {
  static final Path MODEL = Path.of("../examples/fortune-llama");
  static final Path SAMPLES = Path.of("src/test/resources/fortune-llama/samples.json");
  /** Below this top-2 gap two tokens are a tie within float32 rounding of different sums. */
  static final float TIE = 0.005f;

  static LlamaModel model;

  @BeforeAll
  static void load() throws Exception {
    model = LlamaModel.load(MODEL, LlamaModel.Options.defaults().withThreads(2));
  }

  @AfterAll
  static void close() {
    model.close();
  }

  @Test
  void firstStepLogitsMatch() throws Exception {
    for (Expected sample : Expected.read(SAMPLES).list("samples")) {
      int[] prompt = sample.ints("prompt_ids");
      float[] logits = model.newSession(prompt.length).forward(prompt, 0);
      Expected.TopK top = sample.topK("first_step_top5");
      for (int i = 0; i < top.ids().length; i++) {
        float want = top.logits()[i];
        assertEquals(want, logits[top.ids()[i]], 1e-3 * Math.abs(want), sample.string("prompt") + ": logit of " + top.ids()[i]);
      }
    }
  }

  /**
   * Greedy tokens match until the continuation reaches a step whose two best logits are closer
   * than float32 rounding can separate; there the recorded token must be one of our two best.
   */
  @Test
  void greedyContinuationsMatch() throws Exception {
    int exactSteps = 0;
    for (Expected sample : Expected.read(SAMPLES).list("samples")) {
      int[] prompt = sample.ints("prompt_ids");
      int[] expected = sample.ints("generated_ids");
      Session session = model.newSession(prompt.length + expected.length);
      float[] logits = session.forward(prompt, 0);
      for (int step = 0; step < expected.length; step++) {
        int best = Sampler.argmax(logits);
        if (best != expected[step]) {
          int second = secondBest(logits, best);
          float gap = logits[best] - logits[second];
          assertTrue(gap < TIE && second == expected[step], sample.string("prompt") + ": step " + step
              + " chose " + best + " over the recorded " + expected[step] + " with a gap of " + gap);
          break;
        }
        exactSteps++;
        logits = session.forward(new int[] {best}, session.length());
      }
    }
    assertTrue(exactSteps >= 60, "only " + exactSteps + " steps compared");
  }

  private static int secondBest(float[] logits, int best) {
    int second = best == 0 ? 1 : 0;
    for (int i = 0; i < logits.length; i++) {
      if (i != best && logits[i] > logits[second]) {
        second = i;
      }
    }
    return second;
  }
}
