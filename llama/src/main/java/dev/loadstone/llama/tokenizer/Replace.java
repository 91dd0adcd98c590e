package dev.loadstone.llama.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Replaces every match of {@code pattern} (a literal string or a regular expression in the
 * file) with {@code content}: as a normalizer on the input text (Llama 2: space to
 * {@code "▁"}), and as a decoder on each token (Llama 2: {@code "▁"} back to a space).
 */
record Replace(Pattern pattern, String content) implements Normalizer, Decoder {
  @Override
  public String normalize(String text) {
    return pattern.matcher(text).replaceAll(Matcher.quoteReplacement(content));
  }

  @Override
  public List<String> decodeChain(List<String> tokens) {
    List<String> out = new ArrayList<>(tokens.size());
    for (String token : tokens) {
      out.add(normalize(token));
    }
    return out;
  }
}
