package dev.loadstone.llama;

/**
 * What {@link Generator#generate} produced, and how fast.
 *
 * @param tokens the generated tokens, the stop token included when one ended the generation
 * @param promptTokens the number of prompt tokens
 * @param prefillNanos the time of the prompt's batched pass, which also yields the first token
 * @param decodeNanos the time of the following steps, one token each
 * @param stopped whether a stop token ended the generation (rather than the token limit)
 */
public record Generation(int[] tokens, int promptTokens, long prefillNanos, long decodeNanos, boolean stopped) {

  /** Prompt tokens per second of the prefill pass. */
  public double prefillTokensPerSecond() {
    return prefillNanos == 0 ? 0 : promptTokens / (prefillNanos / 1e9);
  }

  /** The number of decode steps: every generated token after the first. */
  public int decodeSteps() {
    return Math.max(0, tokens.length - 1);
  }

  /** Decoded tokens per second: decode steps over their time (0 when there were none). */
  public double decodeTokensPerSecond() {
    return decodeNanos == 0 ? 0 : decodeSteps() / (decodeNanos / 1e9);
  }
}
