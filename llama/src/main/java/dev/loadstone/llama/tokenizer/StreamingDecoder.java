package dev.loadstone.llama.tokenizer;

/**
 * Decodes ids that arrive one at a time (as a model generates them) into text, giving out each
 * piece of text once it is final: nothing while the newest tokens end in an incomplete UTF-8
 * character (a byte-level or byte-fallback token can hold part of one), and the text exactly as
 * {@link Tokenizer#decode} gives it for the whole sequence, so SentencePiece's leading space is
 * dropped only at the start.
 *
 * <pre>{@code
 * StreamingDecoder out = tokenizer.streamingDecoder();
 * for (int id : ids) {
 *   System.out.print(out.next(id));
 * }
 * System.out.print(out.finish());
 * }</pre>
 *
 * <p>It re-decodes a short window: the tokens of the last piece given out, as context, and those
 * since (the algorithm of {@code DecodeStream} in Hugging Face {@code tokenizers}). Text that
 * really ends in U+FFFD is held back until a later token or {@link #finish()}. Not thread-safe.
 */
public final class StreamingDecoder {
  private final Tokenizer tokenizer;
  private final boolean skipSpecialTokens;
  private final IntList window = new IntList();
  /** The text of the window's first {@code prefixLength} tokens, already given out. */
  private String prefix = "";
  private int prefixLength;

  StreamingDecoder(Tokenizer tokenizer, boolean skipSpecialTokens) {
    this.tokenizer = tokenizer;
    this.skipSpecialTokens = skipSpecialTokens;
  }

  /**
   * Takes the next id and returns the text it completes: empty while a character is incomplete,
   * possibly several characters at once.
   *
   * @throws IllegalArgumentException if {@code id} is not one of the tokenizer's
   */
  public String next(int id) {
    tokenizer.token(id);
    window.add(id);
    String text = tokenizer.decode(window.toArray(), skipSpecialTokens);
    if (text.length() <= prefix.length() || text.endsWith("\uFFFD")) {
      return "";
    }
    String fresh = text.substring(commonPrefix(text, prefix));
    int emitted = window.size() - prefixLength;
    window.removeFirst(prefixLength);
    prefix = tokenizer.decode(window.toArray(), skipSpecialTokens);
    prefixLength = emitted;
    return fresh;
  }

  /**
   * Ends the sequence: returns the text still held back (an incomplete character as U+FFFD) and
   * starts over, so that the decoder can take a new sequence.
   */
  public String finish() {
    String text = tokenizer.decode(window.toArray(), skipSpecialTokens);
    String rest = text.substring(commonPrefix(text, prefix));
    window.clear();
    prefix = "";
    prefixLength = 0;
    return rest;
  }

  /**
   * The length of the common start of both strings: all of {@code given} unless decoding the
   * window changed text already given out (invalid bytes merging with later ones in a
   * byte-fallback run), where Hugging Face fails and this gives out the changed rest instead.
   */
  private static int commonPrefix(String text, String given) {
    if (text.startsWith(given)) {
      return given.length();
    }
    int n = 0;
    while (n < Math.min(text.length(), given.length()) && text.charAt(n) == given.charAt(n)) {
      n++;
    }
    return n;
  }
}
