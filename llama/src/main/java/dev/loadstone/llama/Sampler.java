package dev.loadstone.llama;

import java.util.SplittableRandom;

/**
 * Picks the next token from logits: greedily (the largest logit, the first of equals, as
 * {@code argmax} does), or at random from {@code softmax(logits / temperature)} restricted to the
 * smallest set of most likely tokens whose probability reaches {@code topP} (nucleus sampling).
 * A seeded sampler repeats its choices.
 *
 * <pre>{@code
 * Sampler.greedy();
 * Sampler.of(0.7, 0.9, 42);     // temperature 0.7, top-p 0.9, seed 42
 * }</pre>
 *
 * <p>Not thread-safe: one sampler per generation.
 */
public final class Sampler {
  private final float temperature;
  private final float topP;
  private final SplittableRandom random;
  private float[] probabilities = new float[0];
  private int[] order = new int[0];

  private Sampler(float temperature, float topP, long seed) {
    this.temperature = temperature;
    this.topP = topP;
    this.random = new SplittableRandom(seed);
  }

  /** The largest logit every time. */
  public static Sampler greedy() {
    return new Sampler(0, 1, 0);
  }

  /**
   * Temperature and nucleus sampling; temperature 0 is greedy.
   *
   * @param temperature at least 0; 0 picks the largest logit
   * @param topP in (0, 1]; 1 samples from the whole distribution
   * @param seed the random seed
   */
  public static Sampler of(double temperature, double topP, long seed) {
    if (!(temperature >= 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature must be a finite number >= 0, not " + temperature);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top-p must be in (0, 1], not " + topP);
    }
    return new Sampler((float) temperature, (float) topP, seed);
  }

  /** Whether this sampler always picks the largest logit. */
  public boolean isGreedy() {
    return temperature == 0;
  }

  /** The chosen token. {@code logits} is left unchanged. */
  public int sample(float[] logits) {
    if (temperature == 0) {
      return argmax(logits);
    }
    int n = logits.length;
    if (probabilities.length != n) {
      probabilities = new float[n];
      order = new int[n];
    }
    float max = logits[argmax(logits)];
    double sum = 0;
    for (int i = 0; i < n; i++) {
      float p = (float) Math.exp((logits[i] - max) / temperature);
      probabilities[i] = p;
      sum += p;
    }
    float inverse = (float) (1 / sum);
    for (int i = 0; i < n; i++) {
      probabilities[i] *= inverse;
    }
    if (topP >= 1) {
      return pick(n, null, 1);
    }
    // Only tokens that could belong to the nucleus need sorting: one whose probability is below
    // (1 - topP) / (n - 1) cannot, as the others would already add up to topP.
    float cutoff = (1 - topP) / Math.max(1, n - 1);
    int candidates = 0;
    for (int i = 0; i < n; i++) {
      if (probabilities[i] >= cutoff) {
        order[candidates++] = i;
      }
    }
    sortByProbability(candidates);
    double cumulative = 0;
    int last = candidates - 1;
    for (int i = 0; i < candidates; i++) {
      cumulative += probabilities[order[i]];
      if (cumulative >= topP) {
        last = i;
        break;
      }
    }
    return pick(last + 1, order, (float) Math.min(cumulative, 1));
  }

  /** Draws from the first {@code count} tokens (of {@code among}, or all in index order). */
  private int pick(int count, int[] among, float total) {
    double r = random.nextDouble() * total;
    double cumulative = 0;
    for (int i = 0; i < count; i++) {
      int token = among == null ? i : among[i];
      cumulative += probabilities[token];
      if (r < cumulative) {
        return token;
      }
    }
    return among == null ? count - 1 : among[count - 1];
  }

  private void sortByProbability(int count) {
    Integer[] boxed = new Integer[count];
    for (int i = 0; i < count; i++) {
      boxed[i] = order[i];
    }
    java.util.Arrays.sort(boxed, (a, b) -> {
      int byProbability = Float.compare(probabilities[b], probabilities[a]);
      return byProbability != 0 ? byProbability : Integer.compare(a, b);
    });
    for (int i = 0; i < count; i++) {
      order[i] = boxed[i];
    }
  }

  /** The index of the largest value, the first of equals; NaN never wins. */
  public static int argmax(float[] values) {
    int best = 0;
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < values.length; i++) {
      if (values[i] > max) {
        max = values[i];
        best = i;
      }
    }
    return best;
  }

  @Override
  public String toString() {
    return temperature == 0 ? "greedy" : "temperature " + temperature + ", top-p " + topP;
  }
}
