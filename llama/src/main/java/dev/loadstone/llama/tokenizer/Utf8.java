package dev.loadstone.llama.tokenizer;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;

/** UTF-8 decoding with the replacement rules of Hugging Face {@code tokenizers} (Rust). */
final class Utf8 {
  private Utf8() {}

  /**
   * The bytes as text, each maximal invalid subpart becoming one U+FFFD (Unicode's recommended
   * practice, as Rust's {@code String::from_utf8_lossy}; Java's own decoder sometimes replaces
   * two such subparts by one, for example {@code ED BC}).
   */
  static String lossy(byte[] bytes) {
    StringBuilder out = new StringBuilder(bytes.length);
    int i = 0;
    while (i < bytes.length) {
      int lead = bytes[i] & 0xFF;
      if (lead < 0x80) {
        out.append((char) lead);
        i++;
        continue;
      }
      int length;
      int low = 0x80; // the range of the second byte; later ones are 80..BF
      int high = 0xBF;
      if (lead >= 0xC2 && lead <= 0xDF) {
        length = 1;
      } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 2;
        low = lead == 0xE0 ? 0xA0 : 0x80; // no overlong forms
        high = lead == 0xED ? 0x9F : 0xBF; // no surrogates
      } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 3;
        low = lead == 0xF0 ? 0x90 : 0x80; // no overlong forms
        high = lead == 0xF4 ? 0x8F : 0xBF; // nothing above U+10FFFF
      } else {
        out.append('\uFFFD');
        i++;
        continue;
      }
      int cp = lead & (0x3F >> length);
      int j = i + 1;
      boolean complete = true;
      for (int k = 0; k < length; k++, j++) {
        int b = j < bytes.length ? bytes[j] & 0xFF : -1;
        if (b < low || b > high) {
          complete = false;
          break;
        }
        cp = (cp << 6) | (b & 0x3F);
        low = 0x80;
        high = 0xBF;
      }
      if (complete) {
        out.appendCodePoint(cp);
      } else {
        out.append('\uFFFD');
      }
      i = j; // past the character, or at the byte that broke it
    }
    return out.toString();
  }

  /** The bytes as text, or null if they are not valid UTF-8. */
  static String strict(byte[] bytes) {
    try {
      return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString();
    } catch (CharacterCodingException e) {
      return null;
    }
  }
}
