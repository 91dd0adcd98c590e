package dev.loadstone.llama.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/**
 * Expectations worked out by hand from the merges of the two tokenizers trained for the tests
 * (ranks are positions in {@code model.merges}); {@link ReferenceTest} checks the same files
 * against the Hugging Face library on many more texts.
 */
class MergeRulesTest {
  private static final Tokenizer LLAMA3 = TestFiles.load("llama3-style");
  private static final Tokenizer LLAMA2 = TestFiles.load("llama2-style");

  private static List<String> tokens(Tokenizer tokenizer, String text) {
    return Arrays.stream(tokenizer.encode(text)).mapToObj(tokenizer::token).toList();
  }

  @Test
  void byteLevel() {
    // "Hello world": the Split regex gives "Hello" and " world". In "H e l l o" the only merges
    // are "l l" (rank 153) and "e l" (rank 298): the lower rank wins although "e l" is further
    // left, and no merge takes "ll" further. In "Ġ w o r l d": "o r" (4), then "Ġ w" (17), then
    // "l d" (243); no merge joins "Ġw", "or" and "ld".
    assertEquals(List.of("H", "e", "ll", "o", "Ġw", "or", "ld"), tokens(LLAMA3, "Hello world"));
    // " the" is one piece: "Ġ t" (1), "Ġt h" (5), "Ġth e" (11) make "Ġthe"; "the" without the
    // space only gets "t h" (79), as no merge "th e" exists: words differ by their space.
    assertEquals(List.of("Ġthe"), tokens(LLAMA3, " the"));
    assertEquals(List.of("th", "e"), tokens(LLAMA3, "the"));
    // Three spaces before a letter: "\s+(?!\S)" takes two, the letter takes the third
    // ("[^\r\n\p{L}\p{N}]?\p{L}+"); "Ġ Ġ" is rank 0 and no merge "Ġ x" exists.
    assertEquals(List.of("ĠĠ", "Ġ", "x"), tokens(LLAMA3, "   x"));
    // "の" is the bytes E3 81 AE, the characters "ã ģ ®"; merge 53 is "ã ģ", none takes "®".
    assertEquals(List.of("ãģ", "®"), tokens(LLAMA3, "の"));
    // ...so the token "ãģ" alone is an incomplete character: one U+FFFD.
    assertEquals("\uFFFD", LLAMA3.decode(new int[] {LLAMA3.encode("の")[0]}));
    // Added tokens are found before splitting; <tool> is not special, so skipping keeps it.
    int bos = LLAMA3.bosId().orElseThrow();
    assertEquals(List.of("<|begin_of_text|>", "H", "i", "<tool>"), tokens(LLAMA3, "<|begin_of_text|>Hi<tool>"));
    assertEquals("Hi<tool>", LLAMA3.decode(LLAMA3.encode("<|begin_of_text|>Hi<tool>"), true));
    assertEquals(bos, LLAMA3.encode("x", true)[0]);
  }

  @Test
  void sentencePiece() {
    // The normalizer makes "the" into "▁the"; "▁ t" (1), "▁t h" (5), "▁th e" (12) merge it whole.
    assertEquals(List.of("▁the"), tokens(LLAMA2, "the"));
    // "  x" becomes "▁▁▁x", one word. "▁ ▁" (rank 0) matches at positions 0 and 1: the leftmost
    // merges first, giving "▁▁ ▁ x" (rightmost first would give "▁ ▁▁ x"); no merge follows.
    assertEquals(List.of("▁▁", "▁", "x"), tokens(LLAMA2, "  x"));
    // "中" is not in the vocabulary: byte fallback gives its UTF-8 bytes E4 B8 AD as tokens
    // <0xE4> <0xB8> <0xAD> (ids 3 + byte, after <unk> <s> </s>); "▁" stays alone.
    assertArrayEquals(new int[] {LLAMA2.tokenId("▁").orElseThrow(), 3 + 0xE4, 3 + 0xB8, 3 + 0xAD},
        LLAMA2.encode("中"));
    assertEquals(List.of("▁", "<0xE4>", "<0xB8>", "<0xAD>"), tokens(LLAMA2, "中"));
    // The normalizer runs on each stretch between added tokens, so "the" after <s> gets its "▁".
    assertEquals(List.of("<s>", "▁the"), tokens(LLAMA2, "<s>the"));
    // "zz" is a normalized added token: the normalizer rewrote it to "▁zz", which is found in
    // the normalized text "▁a▁zz▁b" as a unit, and is the token's string (as in HF).
    assertEquals(List.of("▁zz"), tokens(LLAMA2, "zz"));
    assertEquals(List.of("▁a", "▁zz", "▁b"), tokens(LLAMA2, "a zz b"));
    assertEquals(LLAMA2.tokenId("zz"), OptionalInt.of(LLAMA2.encode("zz")[0]));
  }

  @Test
  void sentencePieceDecoding() {
    int the = LLAMA2.encode("the")[0];
    // Replace "▁" by " ", fuse, strip one leading space: the space of the first word goes...
    assertEquals("the the", LLAMA2.decode(new int[] {the, the}));
    // ...but not when a special token comes first, since the text then starts with "<s>".
    assertEquals("<s> the", LLAMA2.decode(new int[] {1, the}));
    assertEquals("the", LLAMA2.decode(new int[] {1, the}, true));
    // The normalized added token decodes through its string "▁zz" (Hugging Face: "the zz").
    assertEquals("the zz", LLAMA2.decode(new int[] {the, LLAMA2.tokenId("zz").orElseThrow()}));
    // Byte-fallback tokens become bytes, then UTF-8; an invalid run is one U+FFFD per byte.
    assertEquals("中", LLAMA2.decode(new int[] {3 + 0xE4, 3 + 0xB8, 3 + 0xAD}));
    assertEquals("\uFFFD\uFFFDx", LLAMA2.decode(new int[] {3 + 0xE4, 3 + 0xB8, LLAMA2.encode("x")[1]}));
  }
}
