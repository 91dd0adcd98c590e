package dev.loadstone.llama.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A {@code pre_tokenizer} of {@code tokenizer.json}: splits normalized text into the words that
 * BPE merges within (merges never cross words). Implements the Hugging Face pre-tokenizers
 * that Llama tokenizers use.
 */
sealed interface PreTokenizer permits PreTokenizer.Sequence, PreTokenizer.ByteLevel,
    PreTokenizer.Split, PreTokenizer.Metaspace {

  /**
   * A word. {@code atStart}: it begins at offset 0 of the original input, which
   * {@link Metaspace} with {@code prepend_scheme "first"} asks.
   */
  record Piece(String text, boolean atStart) {}

  /** Adds the pieces of {@code piece} to {@code out}, leaving out empty ones. */
  void split(Piece piece, List<Piece> out);

  /** No pre-tokenizer: the text is one word. */
  PreTokenizer NONE = new Sequence(List.of());

  /** How a {@link Split} treats the matches of its pattern. */
  enum Behavior {
    REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS
  }

  /** Applies each pre-tokenizer to every piece of the one before. */
  record Sequence(List<PreTokenizer> preTokenizers) implements PreTokenizer {
    @Override
    public void split(Piece piece, List<Piece> out) {
      List<Piece> pieces = List.of(piece);
      for (PreTokenizer preTokenizer : preTokenizers) {
        List<Piece> next = new ArrayList<>();
        for (Piece p : pieces) {
          preTokenizer.split(p, next);
        }
        pieces = next;
      }
      for (Piece p : pieces) {
        if (!p.text().isEmpty()) {
          out.add(p);
        }
      }
    }
  }

  /**
   * Splits at the matches of {@code pattern}, treating them as {@code behavior} says;
   * {@code invert} swaps matches and the text between them. Llama 3 isolates the matches of a
   * word/number/punctuation/space pattern.
   */
  record Split(Pattern pattern, Behavior behavior, boolean invert) implements PreTokenizer {
    @Override
    public void split(Piece piece, List<Piece> out) {
      String text = piece.text();
      // The text as consecutive spans [start, end) with whether each is a match.
      List<int[]> spans = new ArrayList<>();
      Matcher m = pattern.matcher(text);
      int previous = 0;
      while (m.find()) {
        if (m.start() == m.end()) {
          continue;
        }
        if (previous < m.start()) {
          spans.add(new int[] {previous, m.start(), invert ? 1 : 0});
        }
        spans.add(new int[] {m.start(), m.end(), invert ? 0 : 1});
        previous = m.end();
      }
      if (previous < text.length()) {
        spans.add(new int[] {previous, text.length(), invert ? 1 : 0});
      }
      for (int[] span : merge(spans)) {
        if (span[0] < span[1]) {
          out.add(new Piece(text.substring(span[0], span[1]), piece.atStart() && span[0] == 0));
        }
      }
    }

    /** The spans to keep, merged as {@link #behavior} says (the rules of HF's NormalizedString.split). */
    private List<int[]> merge(List<int[]> spans) {
      List<int[]> out = new ArrayList<>();
      boolean previousMatch = false;
      switch (behavior) {
        case ISOLATED -> out.addAll(spans);
        case REMOVED -> spans.stream().filter(s -> s[2] == 0).forEach(out::add);
        case CONTIGUOUS -> {
          for (int[] span : spans) {
            boolean match = span[2] == 1;
            if (match == previousMatch && !out.isEmpty()) {
              out.getLast()[1] = span[1];
            } else {
              out.add(span);
            }
            previousMatch = match;
          }
        }
        case MERGED_WITH_PREVIOUS -> {
          for (int[] span : spans) {
            boolean match = span[2] == 1;
            if (match && !previousMatch && !out.isEmpty()) {
              out.getLast()[1] = span[1];
            } else {
              out.add(span);
            }
            previousMatch = match;
          }
        }
        case MERGED_WITH_NEXT -> {
          for (int[] span : spans.reversed()) {
            boolean match = span[2] == 1;
            if (match && !previousMatch && !out.isEmpty()) {
              out.getLast()[0] = span[0];
            } else {
              out.add(span);
            }
            previousMatch = match;
          }
          return out.reversed();
        }
      }
      return out;
    }
  }

  /**
   * Byte-level pre-tokenization (GPT-2, Llama 3): optionally a space before each piece that does
   * not start with one, optionally the GPT-2 word split, then each piece's UTF-8 bytes as
   * {@link Gpt2Bytes} characters.
   */
  record ByteLevel(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {
    /** GPT-2's word pattern, which {@code use_regex} applies. */
    static final Pattern GPT2_WORDS = Pattern.compile(
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
        Pattern.UNICODE_CHARACTER_CLASS);
    private static final Split GPT2_SPLIT = new Split(GPT2_WORDS, Behavior.ISOLATED, false);

    @Override
    public void split(Piece piece, List<Piece> out) {
      String text = piece.text();
      if (addPrefixSpace && !text.isEmpty() && !text.startsWith(" ")) {
        piece = new Piece(" " + text, piece.atStart());
      }
      List<Piece> words = new ArrayList<>();
      if (useRegex) {
        GPT2_SPLIT.split(piece, words);
      } else {
        words.add(piece);
      }
      for (Piece word : words) {
        out.add(new Piece(Gpt2Bytes.encode(word.text()), word.atStart()));
      }
    }
  }

  /**
   * SentencePiece's space handling (Llama 2 as newer converters write it): spaces become
   * {@code replacement}; {@code replacement} is put before the text always, never, or only
   * before the start of the input ({@code prepend_scheme} {@code "first"}); {@code split} makes
   * each replacement start a new piece.
   */
  record Metaspace(char replacement, PrependScheme prependScheme, boolean split)
      implements PreTokenizer {
    /** When {@link Metaspace} puts a replacement character before the text. */
    enum PrependScheme {
      ALWAYS, FIRST, NEVER
    }

    @Override
    public void split(Piece piece, List<Piece> out) {
      String text = piece.text().replace(' ', replacement);
      boolean prepend = switch (prependScheme) {
        case ALWAYS -> true;
        case FIRST -> piece.atStart();
        case NEVER -> false;
      };
      if (prepend && !text.isEmpty() && text.charAt(0) != replacement) {
        text = replacement + text;
      }
      if (!split) {
        out.add(new Piece(text, piece.atStart()));
        return;
      }
      int start = 0;
      for (int i = 1; i <= text.length(); i++) {
        if (i == text.length() || text.charAt(i) == replacement) {
          out.add(new Piece(text.substring(start, i), piece.atStart() && start == 0));
          start = i;
        }
      }
    }
  }
}
