package dev.loadstone.llama.tokenizer;

import java.util.List;
import java.util.Locale;

/**
 * A {@code normalizer} of {@code tokenizer.json}: rewrites a span of input text (one stretch
 * between added tokens) before pre-tokenization. Implements the Hugging Face normalizers that
 * BPE tokenizers use; {@link Replace} also serves as a decoder.
 */
sealed interface Normalizer permits Normalizer.Sequence, Normalizer.Prepend, Replace,
    Normalizer.UnicodeForm, Normalizer.Lowercase, Normalizer.Strip {

  String normalize(String text);

  /** No normalizer: the text as it is. */
  Normalizer NONE = new Sequence(List.of());

  /** Applies each normalizer in turn. */
  record Sequence(List<Normalizer> normalizers) implements Normalizer {
    @Override
    public String normalize(String text) {
      for (Normalizer normalizer : normalizers) {
        text = normalizer.normalize(text);
      }
      return text;
    }
  }

  /** Puts {@code prefix} before a non-empty text (Llama 2: {@code "▁"}). */
  record Prepend(String prefix) implements Normalizer {
    @Override
    public String normalize(String text) {
      return text.isEmpty() ? text : prefix + text;
    }
  }

  /** Unicode normalization: {@code NFC}, {@code NFD}, {@code NFKC} or {@code NFKD}. */
  record UnicodeForm(java.text.Normalizer.Form form) implements Normalizer {
    @Override
    public String normalize(String text) {
      return java.text.Normalizer.normalize(text, form);
    }
  }

  /** Lower case, as Unicode defines it (no locale rules). */
  record Lowercase() implements Normalizer {
    @Override
    public String normalize(String text) {
      return text.toLowerCase(Locale.ROOT);
    }
  }

  /** Strips white space (the Unicode White_Space property) at either end. */
  record Strip(boolean left, boolean right) implements Normalizer {
    @Override
    public String normalize(String text) {
      int start = 0;
      int end = text.length();
      while (left && start < end && isWhiteSpace(text.codePointAt(start))) {
        start += Character.charCount(text.codePointAt(start));
      }
      while (right && end > start && isWhiteSpace(text.codePointBefore(end))) {
        end -= Character.charCount(text.codePointBefore(end));
      }
      return text.substring(start, end);
    }
  }

  /**
   * Whether {@code cp} has the Unicode White_Space property, as Rust's
   * {@code char::is_whitespace} and the regex class {@code \s} do (unlike
   * {@link Character#isWhitespace}, which leaves out no-break spaces and takes in U+001C..U+001F).
   */
  static boolean isWhiteSpace(int cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
        || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F
        || cp == 0x205F || cp == 0x3000;
  }
}
