package dev.loadstone.llama.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.loadstone.llama.internal.JsonDocument;
import dev.loadstone.llama.internal.JsonObject;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Encoding, decoding and streaming agree with the Hugging Face {@code tokenizers} library
 * (0.23.2, the Python wheel) on four real tokenizer files: fortune-llama's, and three small ones
 * trained for these tests: {@code llama3-style} (byte-level BPE, Llama 3's regex Split
 * pre-tokenizer, special and non-special added tokens), {@code llama2-style} (SentencePiece BPE
 * with byte fallback, the Prepend/Replace normalizer and Llama 2's decoder sequence, a
 * normalized added token) and {@code llama2-metaspace} (the same model as newer converters write
 * it: a Metaspace pre-tokenizer with prepend scheme "first", and added tokens with lstrip,
 * rstrip, single_word and normalized set).
 *
 * <p>{@code <name>-reference.json} holds what the library gave: for each text (hand-picked ones
 * for every rule, 80 random mixes of ASCII, accents, combining marks, CJK, Hangul, Cyrillic,
 * emoji, unusual white space and added-token strings, and 4,000 characters of the GPL) the ids
 * without and with special tokens; for random id sequences the decoded text with and without
 * special tokens; and, for encoded texts and random ids, what its {@code DecodeStream} gave at
 * each step (sequences where it fails are left out).
 */
class ReferenceTest {
  private static JsonObject reference(String name) throws IOException {
    return JsonDocument.read(TestFiles.resource(name + "-reference.json"));
  }

  private static int[] ints(JsonObject obj, String key) throws IOException {
    List<Object> list = obj.array(key);
    int[] out = new int[list.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = obj.toInt(list.get(i), key);
    }
    return out;
  }

  private static void check(List<String> failures) {
    if (!failures.isEmpty()) {
      fail(failures.size() + " mismatches, first ones:\n"
          + String.join("\n", failures.subList(0, Math.min(8, failures.size()))));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"fortune-llama", "llama3-style", "llama2-style", "llama2-metaspace"})
  void encodeAsReference(String name) throws IOException {
    Tokenizer tokenizer = TestFiles.load(name);
    JsonObject reference = reference(name);
    assertEquals(reference.integer("vocab_size"), tokenizer.vocabSize());
    List<String> failures = new ArrayList<>();
    List<JsonObject> cases = reference.objects("encode");
    for (JsonObject c : cases) {
      String text = c.string("text");
      int[] ids = tokenizer.encode(text);
      if (!Arrays.equals(ints(c, "ids"), ids)) {
        failures.add("encode " + quote(text) + ": expected " + Arrays.toString(ints(c, "ids"))
            + " got " + Arrays.toString(ids));
      }
      int[] withSpecial = tokenizer.encode(text, true);
      if (!Arrays.equals(ints(c, "with_special"), withSpecial)) {
        failures.add("encode with special tokens " + quote(text) + ": expected "
            + Arrays.toString(ints(c, "with_special")) + " got " + Arrays.toString(withSpecial));
      }
    }
    check(failures);
    assertEquals(157, cases.size());
  }

  @ParameterizedTest
  @ValueSource(strings = {"fortune-llama", "llama3-style", "llama2-style", "llama2-metaspace"})
  void decodeAsReference(String name) throws IOException {
    Tokenizer tokenizer = TestFiles.load(name);
    List<String> failures = new ArrayList<>();
    for (JsonObject c : reference(name).objects("decode")) {
      int[] ids = ints(c, "ids");
      String text = tokenizer.decode(ids);
      String skipped = tokenizer.decode(ids, true);
      if (!text.equals(c.string("text")) || !skipped.equals(c.string("skip_special"))) {
        failures.add("decode " + Arrays.toString(ids) + ": expected " + quote(c.string("text"))
            + " / " + quote(c.string("skip_special")) + " got " + quote(text) + " / " + quote(skipped));
      }
    }
    check(failures);
  }

  @ParameterizedTest
  @ValueSource(strings = {"fortune-llama", "llama3-style", "llama2-style", "llama2-metaspace"})
  void streamAsReference(String name) throws IOException {
    Tokenizer tokenizer = TestFiles.load(name);
    List<String> failures = new ArrayList<>();
    for (JsonObject c : reference(name).objects("stream")) {
      int[] ids = ints(c, "ids");
      StreamingDecoder decoder = tokenizer.streamingDecoder(c.bool("skip_special", false));
      List<String> steps = new ArrayList<>();
      for (int id : ids) {
        steps.add(decoder.next(id));
      }
      List<Object> expected = c.array("steps");
      if (!expected.equals(steps)) {
        failures.add("stream " + Arrays.toString(ids) + " skip " + c.bool("skip_special", false)
            + ": expected " + quoteAll(expected) + " got " + quoteAll(steps));
      }
    }
    check(failures);
  }

  static String quote(String s) {
    StringBuilder out = new StringBuilder("\"");
    s.codePoints().forEach(cp -> {
      if (cp < 0x20 || cp == 0x7F || cp == '"' || cp == '\\' || (cp >= 0x80 && cp < 0xA0)) {
        out.append(String.format("\\u%04X", cp));
      } else {
        out.appendCodePoint(cp);
      }
    });
    return out.append('"').toString();
  }

  private static String quoteAll(List<?> strings) {
    return strings.stream().map(s -> quote((String) s)).toList().toString();
  }
}
