package dev.loadstone.llama.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@code decoder} of {@code tokenizer.json}: turns token strings back into text. Each step
 * maps the list of token strings to a new list ({@code decode_chain} in Hugging Face
 * {@code tokenizers}); the results are concatenated. Implements the decoders of Llama 2 and
 * Llama 3 tokenizers; {@link Replace} is shared with the normalizers.
 */
sealed interface Decoder permits Decoder.Sequence, Decoder.ByteLevel, Decoder.ByteFallback,
    Decoder.Fuse, Decoder.Strip, Decoder.Metaspace, Replace {

  List<String> decodeChain(List<String> tokens);

  /** Applies each decoder to the output of the one before. */
  record Sequence(List<Decoder> decoders) implements Decoder {
    @Override
    public List<String> decodeChain(List<String> tokens) {
      for (Decoder decoder : decoders) {
        tokens = decoder.decodeChain(tokens);
      }
      return tokens;
    }
  }

  /**
   * Byte-level decoding (GPT-2, Llama 3): each character of the tokens back to its byte
   * ({@link Gpt2Bytes}); a token with a character outside the table, such as an added token,
   * counts as its own UTF-8 bytes. The bytes are decoded as UTF-8, each invalid sequence
   * becoming U+FFFD ({@link Utf8#lossy}).
   */
  record ByteLevel() implements Decoder {
    @Override
    public List<String> decodeChain(List<String> tokens) {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      for (String token : tokens) {
        byte[] tokenBytes = new byte[token.length()];
        boolean mapped = true;
        for (int i = 0; i < token.length() && mapped; i++) {
          int b = Gpt2Bytes.toByte(token.charAt(i));
          mapped = b >= 0;
          tokenBytes[i] = (byte) b;
        }
        bytes.writeBytes(mapped ? tokenBytes : token.getBytes(StandardCharsets.UTF_8));
      }
      return List.of(Utf8.lossy(bytes.toByteArray()));
    }
  }

  /**
   * SentencePiece byte fallback: runs of tokens {@code <0x00>}..{@code <0xFF>} become the text
   * their bytes spell in UTF-8, or one U+FFFD per byte if the run is not valid UTF-8.
   */
  record ByteFallback() implements Decoder {
    @Override
    public List<String> decodeChain(List<String> tokens) {
      List<String> out = new ArrayList<>(tokens.size());
      ByteArrayOutputStream run = new ByteArrayOutputStream();
      for (String token : tokens) {
        int b = byteToken(token);
        if (b >= 0) {
          run.write(b);
        } else {
          flush(run, out);
          out.add(token);
        }
      }
      flush(run, out);
      return out;
    }

    /** The byte of a token {@code <0xHH>}, or -1. */
    static int byteToken(String token) {
      if (token.length() != 6 || !token.startsWith("<0x") || token.charAt(5) != '>') {
        return -1;
      }
      int high = Character.digit(token.charAt(3), 16);
      int low = Character.digit(token.charAt(4), 16);
      return high < 0 || low < 0 ? -1 : high * 16 + low;
    }

    private static void flush(ByteArrayOutputStream run, List<String> out) {
      if (run.size() == 0) {
        return;
      }
      String text = Utf8.strict(run.toByteArray());
      out.add(text != null ? text : "\uFFFD".repeat(run.size()));
      run.reset();
    }
  }

  /** Joins all tokens into one. */
  record Fuse() implements Decoder {
    @Override
    public List<String> decodeChain(List<String> tokens) {
      return List.of(String.join("", tokens));
    }
  }

  /**
   * Removes up to {@code start} leading and {@code stop} trailing {@code content} characters
   * from each token (Llama 2, after {@link Fuse}: the space that the encoder's {@code "▁"}
   * prefix became).
   */
  record Strip(char content, int start, int stop) implements Decoder {
    @Override
    public List<String> decodeChain(List<String> tokens) {
      List<String> out = new ArrayList<>(tokens.size());
      for (String token : tokens) {
        int begin = 0;
        while (begin < start && begin < token.length() && token.charAt(begin) == content) {
          begin++;
        }
        int end = token.length();
        while (token.length() - end < stop && end > begin && token.charAt(end - 1) == content) {
          end--;
        }
        out.add(token.substring(begin, end));
      }
      return out;
    }
  }

  /**
   * SentencePiece spaces: {@code replacement} becomes a space, except in the first token, where
   * it is dropped when the encoder prepends one ({@code prependScheme} other than never).
   */
  record Metaspace(char replacement, boolean dropInFirst) implements Decoder {
    @Override
    public List<String> decodeChain(List<String> tokens) {
      List<String> out = new ArrayList<>(tokens.size());
      for (int i = 0; i < tokens.size(); i++) {
        String token = tokens.get(i);
        out.add(i == 0 && dropInFirst
            ? token.replace(String.valueOf(replacement), "")
            : token.replace(replacement, ' '));
      }
      return out;
    }
  }
}
