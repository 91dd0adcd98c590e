package dev.loadstone.llama.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code added_tokens} of {@code tokenizer.json} (special tokens such as
 * {@code <|begin_of_text|>}, and any others): found in the input as whole units before
 * normalization and BPE, as Hugging Face {@code tokenizers} does, leftmost first and the longest
 * at a position. Tokens with {@code normalized: false} are found in the raw input; those with
 * {@code normalized: true} in the normalized text, as the normalizer rewrites them.
 */
final class AddedVocabulary {
  /** One entry of {@code added_tokens}. */
  record AddedToken(int id, String content, boolean special, boolean singleWord, boolean lstrip,
      boolean rstrip, boolean normalized) {}

  /** A span {@code [start, end)} of the text: added token {@code id}, or plain text if -1. */
  record Segment(int start, int end, int id) {
    boolean isToken() {
      return id >= 0;
    }
  }

  private final Matcher raw;
  private final Matcher normalized;

  AddedVocabulary(List<AddedToken> tokens, Normalizer normalizer) {
    List<AddedToken> rawTokens = new ArrayList<>();
    List<AddedToken> normalizedTokens = new ArrayList<>();
    for (AddedToken token : tokens) {
      if (token.normalized()) {
        String content = normalizer.normalize(token.content());
        normalizedTokens.add(new AddedToken(token.id(), content, token.special(),
            token.singleWord(), token.lstrip(), token.rstrip(), true));
      } else {
        rawTokens.add(token);
      }
    }
    raw = new Matcher(rawTokens);
    normalized = new Matcher(normalizedTokens);
  }

  /** Splits raw input text at the added tokens that are not normalized. */
  List<Segment> splitRaw(String text) {
    return raw.split(text);
  }

  /** Splits normalized text at the added tokens that are. */
  List<Segment> splitNormalized(String text) {
    return normalized.split(text);
  }

  /** Finds one set of tokens in text. */
  private static final class Matcher {
    /** Candidates by first character, longest first. */
    private final Map<Character, List<AddedToken>> byFirstChar = new HashMap<>();

    Matcher(List<AddedToken> tokens) {
      for (AddedToken token : tokens) {
        if (!token.content().isEmpty()) {
          byFirstChar.computeIfAbsent(token.content().charAt(0), c -> new ArrayList<>()).add(token);
        }
      }
      for (List<AddedToken> list : byFirstChar.values()) {
        list.sort(Comparator.comparingInt((AddedToken t) -> t.content().length()).reversed());
      }
    }

    List<Segment> split(String text) {
      List<Segment> out = new ArrayList<>();
      int done = 0; // end of the last token's segment
      int pos = 0;
      while (pos < text.length()) {
        AddedToken token = longestAt(text, pos);
        if (token == null) {
          pos++;
          continue;
        }
        int start = pos;
        int stop = pos + token.content().length();
        pos = stop;
        if (token.singleWord() && (wordCharBefore(text, start) || wordCharAt(text, stop))) {
          continue;
        }
        if (token.lstrip()) {
          while (start > done && Normalizer.isWhiteSpace(text.codePointBefore(start))) {
            start -= Character.charCount(text.codePointBefore(start));
          }
        }
        if (token.rstrip()) {
          while (stop < text.length() && Normalizer.isWhiteSpace(text.codePointAt(stop))) {
            stop += Character.charCount(text.codePointAt(stop));
          }
          pos = stop;
        }
        if (done < start) {
          out.add(new Segment(done, start, -1));
        }
        out.add(new Segment(start, stop, token.id()));
        done = stop;
      }
      if (done < text.length() || out.isEmpty()) {
        out.add(new Segment(done, text.length(), -1));
      }
      return out;
    }

    private AddedToken longestAt(String text, int pos) {
      List<AddedToken> candidates = byFirstChar.get(text.charAt(pos));
      if (candidates != null) {
        for (AddedToken token : candidates) {
          if (text.startsWith(token.content(), pos)) {
            return token;
          }
        }
      }
      return null;
    }

    private static boolean wordCharBefore(String text, int index) {
      return index > 0 && Character.isLetterOrDigit(text.codePointBefore(index));
    }

    private static boolean wordCharAt(String text, int index) {
      return index < text.length() && Character.isLetterOrDigit(text.codePointAt(index));
    }
  }
}
