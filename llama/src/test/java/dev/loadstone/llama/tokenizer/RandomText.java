package dev.loadstone.llama.tokenizer;

import java.util.Random;

/** Random test strings. */
final class RandomText {
  private static final String[] POOLS = {
    "abcdefghijklmnopqrstuvwxyABCDEFGHIJKLMNOPQRSTUVWXY",
    "0123456789",
    " ",
    "  \t\n\r",
    ".,;:!?'\"()-_/\\@#$%^&*+=>{}|~`",
    "éèêëàâäôöûüçñÉÀÇßøåæœ",
    "\u0301\u0308\u0327\u0303", // combining marks
    "日本語中文测试東京你好世界のテキスト",
    "한국어텍스트",
    "привет мир Ελληνικά",
    "😀🎉👍🏽🚀❤️\u200d🇫🇷", // emoji: surrogate pairs, modifiers, joiner, flags
    "\u00a0\u3000\u2028\u0085\u2009",
  };

  private RandomText() {}

  /** Up to {@code maxParts} runs of characters, each from one pool. */
  static String mixed(Random random, int maxParts) {
    StringBuilder out = new StringBuilder();
    int parts = random.nextInt(maxParts + 1);
    for (int i = 0; i < parts; i++) {
      String pool = POOLS[random.nextInt(POOLS.length)];
      int[] cps = pool.codePoints().toArray();
      for (int j = random.nextInt(6) + 1; j > 0; j--) {
        out.appendCodePoint(cps[random.nextInt(cps.length)]);
      }
    }
    return out.toString();
  }

  /** Printable ASCII and newlines. */
  static String ascii(Random random, int maxLength) {
    StringBuilder out = new StringBuilder();
    for (int i = random.nextInt(maxLength + 1); i > 0; i--) {
      int c = random.nextInt(100);
      out.append(c < 95 ? (char) (' ' + c) : c < 98 ? '\n' : ' ');
    }
    return out.toString();
  }
}
