package dev.loadstone.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SamplerTest {
  @Test
  void greedyTakesTheFirstLargest() {
    assertEquals(1, Sampler.greedy().sample(new float[] {1, 3, 3, 2}));
    assertEquals(2, Sampler.of(0, 0.5, 1).sample(new float[] {1, Float.NaN, 4}));
  }

  @Test
  void temperatureSamplesTheSoftmax() {
    // Logits 0 and ln 3: probabilities 1/4 and 3/4 at temperature 1.
    float[] logits = {0, (float) Math.log(3)};
    Sampler sampler = Sampler.of(1, 1, 42);
    int ones = 0;
    int draws = 20_000;
    for (int i = 0; i < draws; i++) {
      ones += sampler.sample(logits);
    }
    assertEquals(0.75, ones / (double) draws, 0.02);
  }

  @Test
  void topPKeepsTheNucleus() {
    // Probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.7 keeps the first two.
    float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
    Sampler sampler = Sampler.of(1, 0.7, 3);
    int[] counts = new int[4];
    for (int i = 0; i < 20_000; i++) {
      counts[sampler.sample(logits)]++;
    }
    assertEquals(0, counts[2] + counts[3]);
    assertEquals(0.5 / 0.8, counts[0] / 20_000.0, 0.02);
  }

  @Test
  void aSeedRepeatsTheChoices() {
    float[] logits = new float[1000];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) Math.sin(i);
    }
    Sampler a = Sampler.of(0.9, 0.95, 7);
    Sampler b = Sampler.of(0.9, 0.95, 7);
    boolean varied = false;
    int first = a.sample(logits);
    assertEquals(first, b.sample(logits));
    for (int i = 0; i < 100; i++) {
      int next = a.sample(logits);
      assertEquals(next, b.sample(logits));
      varied |= next != first;
    }
    assertTrue(varied);
  }

  @Test
  void rejectsBadSettings() {
    assertThrows(IllegalArgumentException.class, () -> Sampler.of(-1, 1, 0));
    assertThrows(IllegalArgumentException.class, () -> Sampler.of(Double.NaN, 1, 0));
    assertThrows(IllegalArgumentException.class, () -> Sampler.of(1, 0, 0));
    assertThrows(IllegalArgumentException.class, () -> Sampler.of(1, 1.5, 0));
  }
}
