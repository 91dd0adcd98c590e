package dev.loadstone.llama.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Loading: tokenizer_config.json, model directories, and clear errors for what is not supported. */
class LoadTest {
  @TempDir
  Path dir;

  private static final String BPE_MODEL = """
      "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<s>": 3}, "merges": ["a b"]}""";

  private Path write(String name, String json) throws IOException {
    Path file = dir.resolve(name);
    Files.writeString(file, json);
    return file;
  }

  private TokenizerException failure(String json) throws IOException {
    Path file = write("tokenizer.json", json);
    TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(file));
    assertEquals(file, e.file().orElseThrow());
    assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
    return e;
  }

  @Test
  void minimalBpe() throws IOException {
    Tokenizer tokenizer = Tokenizer.load(write("tokenizer.json", "{" + BPE_MODEL + "}"));
    assertArrayEquals(new int[] {2, 0}, tokenizer.encode("aba"));
    assertEquals("ab a", tokenizer.decode(new int[] {2, 0})); // no decoder: joined by spaces
    assertEquals(4, tokenizer.vocabSize());
    assertEquals(OptionalInt.empty(), tokenizer.bosId());
    assertArrayEquals(new int[] {2}, Tokenizer.load(dir).encode("ab")); // a model directory
    assertThrows(IllegalArgumentException.class, () -> tokenizer.decode(new int[] {4}));
    assertThrows(IllegalArgumentException.class, () -> tokenizer.token(-1));
  }

  @Test
  void pairMergesAndContinuingPrefix() throws IOException {
    // Merges as pairs, and a continuing-subword prefix that the merged token leaves out.
    Tokenizer tokenizer = Tokenizer.load(write("tokenizer.json", """
        {"model": {"type": "BPE", "continuing_subword_prefix": "##", "end_of_word_suffix": "</w>",
          "unk_token": "[UNK]", "fuse_unk": true,
          "vocab": {"[UNK]": 0, "a": 1, "##b": 2, "##c</w>": 3, "ab": 4, "abc</w>": 5},
          "merges": [["a", "##b"], ["ab", "##c</w>"]]}}"""));
    assertEquals("abc</w>", tokenizer.token(tokenizer.encode("abc")[0]));
    assertArrayEquals(new int[] {5}, tokenizer.encode("abc"));
    // Checked with Hugging Face tokenizers 0.23.2 on the same file:
    assertArrayEquals(new int[] {4, 0}, tokenizer.encode("abxy")); // x, y: one fused unknown
    assertArrayEquals(new int[] {0}, tokenizer.encode("xab")); // "##a", "##b</w>" are unknown too
    assertEquals("##b [UNK]", tokenizer.decode(new int[] {2, 0}));
  }

  @Test
  void configDecidesBosAndEos() throws IOException {
    Path json = TestFiles.resource("llama2-style/tokenizer.json");
    Files.copy(json, dir.resolve("tokenizer.json"));
    int the = 271;
    // Without tokenizer_config.json: bos from the post-processor's template, no eos.
    Tokenizer plain = Tokenizer.load(dir);
    assertEquals(OptionalInt.of(1), plain.bosId());
    assertEquals(OptionalInt.empty(), plain.eosId());
    assertArrayEquals(new int[] {1, the}, plain.encode("the", true));
    // add_bos_token / add_eos_token, where set, decide what encode(text, true) adds.
    write("tokenizer_config.json", """
        {"bos_token": "<s>", "eos_token": {"content": "</s>"}, "add_bos_token": false,
         "add_eos_token": true}""");
    Tokenizer configured = Tokenizer.load(dir);
    assertEquals(OptionalInt.of(2), configured.eosId());
    assertArrayEquals(new int[] {the, 2}, configured.encode("the", true));
    assertArrayEquals(new int[] {the}, configured.encode("the"));
    // The shipped configs: Llama 3 style names <|eot_id|> as eos.
    Tokenizer llama3 = TestFiles.load("llama3-style");
    assertEquals(llama3.tokenId("<|begin_of_text|>"), llama3.bosId());
    assertEquals(llama3.tokenId("<|eot_id|>"), llama3.eosId());
  }

  @Test
  void configNamingAnUnknownToken() throws IOException {
    write("tokenizer.json", "{" + BPE_MODEL + "}");
    write("tokenizer_config.json", "{\"eos_token\": \"</s>\"}");
    TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
    assertEquals(dir.resolve("tokenizer_config.json"), e.file().orElseThrow());
    assertTrue(e.getMessage().contains("eos_token: \"</s>\" is neither an added token nor in the vocabulary"),
        e.getMessage());
  }

  @Test
  void unsupportedModels() throws IOException {
    assertTrue(failure("""
        {"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.5]]}}""")
        .getMessage().endsWith("model.type: Unigram models are not supported (only BPE)"));
    assertTrue(failure("""
        {"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0}}}""")
        .getMessage().endsWith("model.type: WordPiece models are not supported (only BPE)"));
    assertTrue(failure("""
        {"model": {"unk_id": 0, "vocab": [["<unk>", 0.0]]}}""")
        .getMessage().contains("model.type: missing, and the model has no merges"));
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', textBlock = """
      "normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}   | normalizer.type: normalizer type Precompiled is not supported
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "BertNormalizer"}]} | normalizer.normalizers[0].type: normalizer type BertNormalizer
      "pre_tokenizer": {"type": "Whitespace"}                             | pre_tokenizer.type: pre-tokenizer type Whitespace is not supported
      "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(?<x"}, "behavior": "Isolated"} | pre_tokenizer.pattern.Regex: regular expression not supported
      "pre_tokenizer": {"type": "Split", "pattern": {"String": "-"}, "behavior": "Sideways"} | pre_tokenizer.behavior: unknown split behavior Sideways
      "decoder": {"type": "WordPiece", "prefix": "##"}                    | decoder.type: decoder type WordPiece is not supported
      "post_processor": {"type": "Weird"}                                 | post_processor.type: post-processor type Weird is not supported
      "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}]} | post_processor.special_tokens: no entry for "<s>"
      "added_tokens": [{"id": "one", "content": "x"}]                     | added_tokens[0].id: expected an integer
      "decoder": {"type": "Strip", "content": "ab", "start": 1}           | decoder.content: expected one character
      """)
  void unsupportedOrInvalidComponents(String component, String message) throws IOException {
    String json = "{" + component + ", " + BPE_MODEL + "}";
    String got = failure(json).getMessage();
    assertTrue(got.contains(message), got);
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', textBlock = """
      {"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}      | model.merges[0]: "b" is not in the vocabulary
      {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b c"]}} | model.merges[0]: a merge is a string
      {"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}            | model.vocab.a: expected an integer from 0
      {"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}} | model.unk_token: "<unk>" is not in the vocabulary
      {"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}} | model.dropout: BPE dropout is not supported
      {"model": {"type": "BPE", "vocab": [], "merges": []}}                   | model.vocab: expected an object, found an array
      {"normalizer": null}                                                    | model: missing object
      [1, 2]                                                                  | not a JSON object
      {"model": {"type": "BPE", "vocab": {}                                   | invalid JSON
      """)
  void malformedFiles(String json, String message) throws IOException {
    String got = failure(json).getMessage();
    assertTrue(got.contains(message), got);
  }

  /** A null component is no component, as tokenizers reads it; so is a null setting in the config. */
  @Test
  void nullMeansAbsent() throws IOException {
    Tokenizer tokenizer = Tokenizer.load(write("tokenizer.json", "{\"normalizer\": null,"
        + " \"pre_tokenizer\": null, \"decoder\": null, \"post_processor\": null,"
        + " \"added_tokens\": null, " + BPE_MODEL + "}"));
    assertArrayEquals(new int[] {2, 0}, tokenizer.encode("aba", true));
    assertEquals("ab a", tokenizer.decode(new int[] {2, 0}));
    write("tokenizer_config.json", "{\"bos_token\": null, \"eos_token\": \"<s>\", \"add_bos_token\": null}");
    Tokenizer configured = Tokenizer.load(dir);
    assertEquals(OptionalInt.empty(), configured.bosId());
    assertEquals(OptionalInt.of(3), configured.eosId());
    assertArrayEquals(new int[] {2}, configured.encode("ab", true));
  }

  @Test
  void theJsonReadersLimitsHoldAndNameTheFile() throws IOException {
    String deep = "\"extra\": " + "[".repeat(64) + "]".repeat(64);
    String got = failure("{" + deep + ", " + BPE_MODEL + "}").getMessage();
    assertTrue(got.contains(": over a limit of the JSON reader: "), got);
    assertTrue(got.contains("nesting depth"), got);
    write("tokenizer.json", "{" + BPE_MODEL + "}");
    Path config = write("tokenizer_config.json", "{" + deep + "}");
    TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
    assertEquals(config, e.file().orElseThrow());
    assertTrue(e.getMessage().startsWith(config + ": over a limit of the JSON reader: "), e.getMessage());
  }

  @Test
  void missingFile() {
    assertThrows(NoSuchFileException.class, () -> Tokenizer.load(dir.resolve("none.json")));
  }
}
