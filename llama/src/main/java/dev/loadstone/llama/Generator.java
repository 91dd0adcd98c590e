package dev.loadstone.llama;

import java.util.Arrays;
import java.util.Objects;
import java.util.Set;
import java.util.function.IntConsumer;

/**
 * Generates tokens: one batched pass over the prompt, then one step per token, each choosing the
 * next token with a {@link Sampler} and feeding it back, with the keys and values of earlier
 * tokens kept in the session's cache.
 *
 * <pre>{@code
 * Generator generator = new Generator(model, Sampler.greedy());
 * Generation out = generator.generate(promptIds, 32, Set.of(eos), token -> System.out.println(token));
 * }</pre>
 */
public final class Generator {
  private final LlamaModel model;
  private final Sampler sampler;

  /** A generator for {@code model} that picks tokens with {@code sampler}. */
  public Generator(LlamaModel model, Sampler sampler) {
    this.model = Objects.requireNonNull(model, "model");
    this.sampler = Objects.requireNonNull(sampler, "sampler");
  }

  /**
   * Generates up to {@code maxNewTokens} tokens after {@code prompt}, stopping early after a
   * token of {@code stopTokens} (which is included in the result and passed to the listener).
   *
   * @param prompt the prompt's tokens, at least one (a beginning-of-sequence token if the model
   *     expects one: nothing is added)
   * @param onToken told each generated token as soon as it is chosen
   * @throws IllegalArgumentException if the prompt is empty, a token is out of the vocabulary,
   *     or {@code maxNewTokens} is negative
   */
  public Generation generate(int[] prompt, int maxNewTokens, Set<Integer> stopTokens, IntConsumer onToken) {
    Objects.requireNonNull(prompt, "prompt");
    Objects.requireNonNull(stopTokens, "stopTokens");
    Objects.requireNonNull(onToken, "onToken");
    if (prompt.length == 0) {
      throw new IllegalArgumentException("the prompt has no tokens");
    }
    if (maxNewTokens < 0) {
      throw new IllegalArgumentException("maxNewTokens must be at least 0, not " + maxNewTokens);
    }
    if (maxNewTokens == 0) {
      return new Generation(new int[0], prompt.length, 0, 0, false);
    }
    int[] stops = stopTokens.stream().mapToInt(Integer::intValue).sorted().toArray();
    // The last generated token is never fed back, so the cache needs one place less.
    Session session = model.newSession(prompt.length + maxNewTokens - 1);
    int[] generated = new int[maxNewTokens];
    int count = 0;
    boolean stopped = false;
    long start = System.nanoTime();
    float[] logits = session.forward(prompt, 0);
    int token = sampler.sample(logits);
    long prefill = System.nanoTime() - start;
    long decodeStart = System.nanoTime();
    int[] step = new int[1];
    while (true) {
      generated[count++] = token;
      onToken.accept(token);
      if (Arrays.binarySearch(stops, token) >= 0) {
        stopped = true;
        break;
      }
      if (count == maxNewTokens) {
        break;
      }
      step[0] = token;
      logits = session.forward(step, session.length());
      token = sampler.sample(logits);
    }
    long decode = count > 1 ? System.nanoTime() - decodeStart : 0;
    return new Generation(Arrays.copyOf(generated, count), prompt.length, prefill, decode, stopped);
  }
}
