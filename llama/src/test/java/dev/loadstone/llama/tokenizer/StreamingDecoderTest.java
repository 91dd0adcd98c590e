package dev.loadstone.llama.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** Streaming decoding: whole characters only, and the same text as decoding all ids at once. */
class StreamingDecoderTest {
  private static List<String> steps(Tokenizer tokenizer, int[] ids) {
    StreamingDecoder decoder = tokenizer.streamingDecoder();
    List<String> out = new ArrayList<>();
    for (int id : ids) {
      out.add(decoder.next(id));
    }
    return out;
  }

  @Test
  void holdsBackSplitCharacters() {
    // In fortune-llama "😀" is its four bytes, one token each: nothing until the last.
    Tokenizer tokenizer = TestFiles.load("fortune-llama");
    int[] ids = tokenizer.encode("a😀");
    assertEquals(List.of("a", "", "", "", "😀"), steps(tokenizer, ids));
    // In the SentencePiece tokenizer the bytes are byte-fallback tokens.
    Tokenizer llama2 = TestFiles.load("llama2-style");
    assertEquals(List.of("", "中", " the"), steps(llama2, llama2.encode("中 the")).subList(2, 5));
  }

  @Test
  void dropsTheSentencePieceSpaceOnlyAtTheStart() {
    Tokenizer llama2 = TestFiles.load("llama2-style");
    int[] ids = llama2.encode("the the the");
    assertEquals(List.of("the", " the", " the"), steps(llama2, ids));
    // After finish() a new sequence starts: its first space goes again.
    StreamingDecoder decoder = llama2.streamingDecoder();
    decoder.next(ids[0]);
    assertEquals("", decoder.finish());
    assertEquals("the", decoder.next(ids[1]));
  }

  @Test
  void finishGivesOutWhatIsHeldBack() {
    Tokenizer tokenizer = TestFiles.load("fortune-llama");
    int[] ids = tokenizer.encode("😀");
    StreamingDecoder decoder = tokenizer.streamingDecoder();
    assertEquals("", decoder.next(ids[0]));
    assertEquals("", decoder.next(ids[1]));
    assertEquals("\uFFFD", decoder.finish());
    assertEquals("x", decoder.next(tokenizer.encode("x")[0]));
  }

  @Test
  void skipsSpecialTokensWhenAsked() {
    Tokenizer tokenizer = TestFiles.load("llama3-style");
    StreamingDecoder decoder = tokenizer.streamingDecoder(true);
    StringBuilder out = new StringBuilder();
    for (int id : tokenizer.encode("<|begin_of_text|>Hi<|eot_id|> you", true)) {
      out.append(decoder.next(id));
    }
    assertEquals("Hi you", out.append(decoder.finish()).toString());
    assertThrows(IllegalArgumentException.class, () -> decoder.next(tokenizer.vocabSize()));
  }

  @ParameterizedTest
  @ValueSource(strings = {"fortune-llama", "llama3-style", "llama2-style", "llama2-metaspace"})
  void concatenatedStepsAreTheDecodedText(String name) {
    Tokenizer tokenizer = TestFiles.load(name);
    Random random = new Random(name.hashCode());
    for (int i = 0; i < 100; i++) {
      int[] ids = tokenizer.encode(RandomText.mixed(random, 20), i % 2 == 0);
      StringBuilder streamed = new StringBuilder();
      StreamingDecoder decoder = tokenizer.streamingDecoder();
      for (int id : ids) {
        streamed.append(decoder.next(id));
      }
      streamed.append(decoder.finish());
      assertEquals(tokenizer.decode(ids), streamed.toString());
    }
  }
}
