package dev.loadstone.llama.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The byte-to-character table of byte-level BPE (GPT-2, Llama 3): each byte is a printable
 * character, so that any UTF-8 byte sequence is a string of vocabulary symbols. Printable
 * Latin-1 bytes stand for themselves; the other 68 bytes map, in order, to U+0100 and up
 * (space is {@code Ġ} U+0120, newline {@code Ċ} U+010A).
 */
final class Gpt2Bytes {
  private static final char[] BYTE_TO_CHAR = new char[256];
  /** Indexed by character; -1 where a character stands for no byte. */
  private static final short[] CHAR_TO_BYTE = new short[0x100 + 68];

  static {
    Arrays.fill(CHAR_TO_BYTE, (short) -1);
    int extra = 0;
    for (int b = 0; b < 256; b++) {
      boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      char c = printable ? (char) b : (char) (0x100 + extra++);
      BYTE_TO_CHAR[b] = c;
      CHAR_TO_BYTE[c] = (short) b;
    }
  }

  private Gpt2Bytes() {}

  /** The text's UTF-8 bytes, one character each. */
  static String encode(String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    char[] chars = new char[bytes.length];
    for (int i = 0; i < bytes.length; i++) {
      chars[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
    }
    return new String(chars);
  }

  /** The byte that {@code c} stands for, or -1. */
  static int toByte(char c) {
    return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
  }
}
