package dev.loadstone.internal;

/**
 * JSON strings written byte for byte as the reference implementations write them, so that a
 * file Loadstone writes equals the one they write: a safetensors header as {@code serde_json}
 * writes it ({@link Escaping#SERDE_JSON}), a model index as Python's {@code json} module does
 * ({@link Escaping#PYTHON_ASCII}).
 */
public final class JsonStrings {
  /** Which characters besides {@code "}, {@code \} and the controls are written as escapes. */
  public enum Escaping {
    /**
     * {@code serde_json}: control characters below U+0020 other than
     * {@code \b \t \n \f \r} as <code>&#92;u00xx</code> (lowercase hex); every other character,
     * DEL and {@code /} included, as itself (in UTF-8, once encoded).
     */
    SERDE_JSON,
    /**
     * Python's {@code json.dumps} with {@code ensure_ascii=True}: everything outside printable
     * ASCII (U+0020..U+007E) as <code>&#92;uxxxx</code> (lowercase hex, surrogates one by one).
     */
    PYTHON_ASCII
  }

  private static final char[] HEX = "0123456789abcdef".toCharArray();

  private JsonStrings() {}

  /** Appends {@code text} as a quoted JSON string, escaped as {@code escaping} says. */
  public static void append(StringBuilder out, String text, Escaping escaping) {
    out.append('"');
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\b' -> out.append("\\b");
        case '\t' -> out.append("\\t");
        case '\n' -> out.append("\\n");
        case '\f' -> out.append("\\f");
        case '\r' -> out.append("\\r");
        default -> {
          boolean escaped = escaping == Escaping.PYTHON_ASCII ? c < 0x20 || c > 0x7E : c < 0x20;
          if (escaped) {
            out.append("\\u").append(HEX[c >> 12]).append(HEX[(c >> 8) & 0xF])
                .append(HEX[(c >> 4) & 0xF]).append(HEX[c & 0xF]);
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }
}
