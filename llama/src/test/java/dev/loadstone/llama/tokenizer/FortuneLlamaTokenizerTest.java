package dev.loadstone.llama.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.llama.internal.JsonDocument;
import dev.loadstone.llama.internal.JsonObject;
import java.io.IOException;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The tokenizer of the shipped example model, {@code examples/fortune-llama}, against the prompt
 * ids and generated text recorded with it ({@code fortune-llama-samples.json}, a copy of the
 * model's {@code samples.json}) and the facts its README states.
 */
class FortuneLlamaTokenizerTest {
  private static final Tokenizer TOKENIZER = TestFiles.load("fortune-llama");

  private static int[] ints(JsonObject obj, String key) throws IOException {
    return obj.array(key).stream().mapToInt(v -> ((Long) v).intValue()).toArray();
  }

  @Test
  void recordedSamples() throws IOException {
    List<JsonObject> samples = JsonDocument.read(TestFiles.resource("fortune-llama-samples.json"))
        .objects("samples");
    assertEquals(3, samples.size());
    for (JsonObject sample : samples) {
      String prompt = sample.string("prompt");
      int[] promptIds = ints(sample, "prompt_ids");
      assertArrayEquals(promptIds, TOKENIZER.encode(prompt, true), prompt);
      assertArrayEquals(Arrays.copyOfRange(promptIds, 1, promptIds.length),
          TOKENIZER.encode(prompt), prompt);

      int[] generated = ints(sample, "generated_ids");
      String text = sample.string("generated_text");
      assertEquals(text, TOKENIZER.decode(generated));
      assertEquals(sample.string("full_text"), prompt + TOKENIZER.decode(generated));
      assertEquals(sample.string("full_text"),
          TOKENIZER.decode(TOKENIZER.encode(prompt)) + TOKENIZER.decode(generated));

      StreamingDecoder stream = TOKENIZER.streamingDecoder();
      StringBuilder streamed = new StringBuilder();
      for (int id : generated) {
        streamed.append(stream.next(id));
      }
      streamed.append(stream.finish());
      assertEquals(text, streamed.toString());
    }
  }

  @Test
  void readmeFacts() {
    assertEquals(512, TOKENIZER.vocabSize());
    assertEquals(OptionalInt.of(256), TOKENIZER.bosId());
    assertEquals(OptionalInt.of(257), TOKENIZER.eosId());
    assertEquals("<|begin_of_text|>", TOKENIZER.token(256));
    assertTrue(TOKENIZER.isSpecial(257));
    assertFalse(TOKENIZER.isSpecial(258));
    // Byte b has id b; its token is the GPT-2 character of b.
    assertEquals("Ġ", TOKENIZER.token(' '));
    assertEquals("Ċ", TOKENIZER.token('\n'));
    assertEquals("A", TOKENIZER.token('A'));
    assertArrayEquals(new int[] {0xC3, 0xA9}, TOKENIZER.encode("é")); // no merge joins these
    // Merge 0 is "e Ġ" (id 258): merges span spaces, since the whole text is one word.
    assertArrayEquals(new int[] {258}, TOKENIZER.encode("e "));
    // Special tokens written in the text are whole units.
    assertArrayEquals(new int[] {257, 256}, TOKENIZER.encode("<|end_of_text|><|begin_of_text|>"));
    assertEquals("A man", TOKENIZER.decode(TOKENIZER.encode("<|begin_of_text|>A man"), true));
    // Invalid bytes: one U+FFFD per maximal invalid subpart, as Hugging Face gives
    // (ED BC: ED needs 80..9F next, so ED and BC are one each).
    assertEquals("\uFFFD\uFFFD", TOKENIZER.decode(new int[] {0xED, 0xBC}));
  }

  @Test
  void roundTripsRandomText() {
    Random random = new Random(42);
    for (int i = 0; i < 300; i++) {
      String text = RandomText.mixed(random, 40);
      assertEquals(text, TOKENIZER.decode(TOKENIZER.encode(text)), ReferenceTest.quote(text));
    }
    for (int i = 0; i < 100; i++) {
      String text = RandomText.ascii(random, 60);
      assertEquals(text, TOKENIZER.decode(TOKENIZER.encode(text)), ReferenceTest.quote(text));
    }
  }

  /** The whole text is one BPE word here: merging must not take quadratic time. */
  @Test
  void longTextIsOneWordAndFast() {
    Random random = new Random(7);
    StringBuilder text = new StringBuilder();
    while (text.length() < 300_000) {
      text.append(RandomText.ascii(random, 20)).append(' ');
    }
    String s = text.toString();
    int[] ids = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> TOKENIZER.encode(s));
    assertTrue(ids.length < s.length(), "merges happened");
    assertEquals(s, TOKENIZER.decode(ids));
  }
}
