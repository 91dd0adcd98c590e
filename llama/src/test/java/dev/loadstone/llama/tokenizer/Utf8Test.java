package dev.loadstone.llama.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Lossy UTF-8 decoding replaces each maximal invalid subpart by one U+FFFD, as Rust's
 * {@code from_utf8_lossy} does (cases from the Unicode Standard, section 3.9, and from a
 * mismatch with Hugging Face that Java's own decoder caused: {@code ED BC}).
 */
class Utf8Test {
  private static byte[] bytes(String hex) {
    String[] parts = hex.isBlank() ? new String[0] : hex.trim().split(" ");
    byte[] out = new byte[parts.length];
    for (int i = 0; i < parts.length; i++) {
      out[i] = (byte) Integer.parseInt(parts[i], 16);
    }
    return out;
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', textBlock = """
      61 C3 A9                         | aé
      F0 9F 98 80                      | 😀
      ED BC                            | ��
      ED A0 80                         | ���
      F0 9F 98                         | �
      F0 9F 98 61                      | �a
      E0 80 AF                         | ���
      C0 AF                            | ��
      F4 90 80 80                      | ����
      61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 | a���b�c��d
      """)
  void maximalSubparts(String hex, String expected) {
    assertEquals(expected, Utf8.lossy(bytes(hex)));
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', textBlock = """
      61 C3 A9    | aé
      ED BC       |
      F0 9F 98    |
      """)
  void strict(String hex, String expected) {
    if (expected == null) {
      assertNull(Utf8.strict(bytes(hex)));
    } else {
      assertEquals(expected, Utf8.strict(bytes(hex)));
    }
  }
}
