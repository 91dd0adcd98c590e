package dev.loadstone.llama.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.loadstone.llama.tokenizer.PreTokenizer.Behavior;
import dev.loadstone.llama.tokenizer.PreTokenizer.Piece;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * The split behaviors, against what Hugging Face {@code tokenizers} 0.23.2 gives for
 * {@code pre_tokenizers.Split(pattern, behavior, invert).pre_tokenize_str(text)}.
 */
class PreTokenizerTest {
  private static List<String> split(PreTokenizer preTokenizer, String text) {
    List<Piece> out = new ArrayList<>();
    preTokenizer.split(new Piece(text, true), out);
    return out.stream().map(Piece::text).toList();
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', textBlock = """
      REMOVED              | false | a b c         | a b c
      REMOVED              | true  | - - - -       | - -- -
      ISOLATED             | false | a - b - - c - | - a -- b - c
      ISOLATED             | true  | a - b - - c - | - a -- b - c
      MERGED_WITH_PREVIOUS | false | a- b- - c-    | - a-- b- c
      MERGED_WITH_PREVIOUS | true  | a -b - -c -   | -a --b -c
      MERGED_WITH_NEXT     | false | a -b - -c -   | -a --b -c
      MERGED_WITH_NEXT     | true  | a- b- - c-    | - a-- b- c
      CONTIGUOUS           | false | a - b -- c -  | - a -- b - c
      CONTIGUOUS           | true  | a - b -- c -  | - a -- b - c
      """)
  void splitBehaviors(Behavior behavior, boolean invert, String literal, String regex) {
    // "a-b--c-" split at the literal "-"; "-a--b-c" split at the regex "-+".
    assertEquals(List.of(literal.split(" ")),
        split(new PreTokenizer.Split(Pattern.compile(Pattern.quote("-")), behavior, invert), "a-b--c-"));
    assertEquals(List.of(regex.split(" ")),
        split(new PreTokenizer.Split(Pattern.compile("-+"), behavior, invert), "-a--b-c"));
  }

  @Test
  void metaspaceAndByteLevel() {
    PreTokenizer metaspace = new PreTokenizer.Metaspace('▁',
        PreTokenizer.Metaspace.PrependScheme.ALWAYS, true);
    assertEquals(List.of("▁hello", "▁", "▁my", "▁friend", "▁"), split(metaspace, "hello  my friend "));
    PreTokenizer byteLevel = new PreTokenizer.ByteLevel(true, true);
    assertEquals(List.of("ĠHello", "Ġ", "Ġworld", "!", "Ċ", "Ċ", "It", "'s", "Ġ2024", "."),
        split(byteLevel, "Hello  world!\n\nIt's 2024."));
  }
}
