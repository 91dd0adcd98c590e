package dev.loadstone.llama.tokenizer;

import dev.loadstone.llama.internal.JsonDocument;
import dev.loadstone.llama.internal.JsonException;
import dev.loadstone.llama.internal.JsonObject;
import dev.loadstone.llama.tokenizer.AddedVocabulary.AddedToken;
import dev.loadstone.llama.tokenizer.PreTokenizer.Behavior;
import dev.loadstone.llama.tokenizer.PreTokenizer.Metaspace.PrependScheme;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Reads the Hugging Face {@code tokenizers} serialization ({@code tokenizer.json}) and the
 * {@code tokenizer_config.json} of {@code transformers} beside it into a {@link Tokenizer}.
 */
final class TokenizerJson {
  private static final String SUPPORTED_NORMALIZERS =
      "Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip";
  private static final String SUPPORTED_PRE_TOKENIZERS = "Sequence, ByteLevel, Split, Metaspace";
  private static final String SUPPORTED_DECODERS =
      "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace";
  private static final String SUPPORTED_POST_PROCESSORS =
      "TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, Sequence";

  private final Path file;
  private final Map<String, Integer> ids = new HashMap<>(); // vocabulary and added tokens

  private TokenizerJson(Path file) {
    this.file = file;
  }

  /**
   * Reads {@code file} and the {@code tokenizer_config.json} beside it.
   *
   * @throws TokenizerException naming the file and the JSON path, if either breaks the format
   *     or needs what is not implemented
   */
  static Tokenizer read(Path file) throws IOException {
    try {
      return new TokenizerJson(file).tokenizer(JsonDocument.read(file));
    } catch (JsonException e) {
      throw new TokenizerException(e.file(), e.reason(), e);
    }
  }

  private Tokenizer tokenizer(JsonObject root) throws IOException {
    JsonObject modelJson = root.object("model");
    Map<String, Integer> vocab = vocab(modelJson);
    Bpe model = new Bpe(vocab, merges(modelJson, vocab), options(modelJson, vocab));
    ids.putAll(vocab);

    List<AddedToken> added = new ArrayList<>();
    if (root.has("added_tokens")) {
      for (JsonObject token : root.objects("added_tokens")) {
        added.add(new AddedToken(token.integer("id"), token.string("content"),
            token.bool("special", false), token.bool("single_word", false),
            token.bool("lstrip", false), token.bool("rstrip", false),
            token.bool("normalized", !token.bool("special", false))));
      }
    }
    int size = 0;
    for (int id : vocab.values()) {
      size = Math.max(size, id + 1);
    }
    for (AddedToken token : added) {
      size = Math.max(size, token.id() + 1);
    }
    String[] tokens = new String[size];
    boolean[] special = new boolean[size];
    vocab.forEach((token, id) -> tokens[id] = token);
    Normalizer normalizer = root.has("normalizer")
        ? normalizer(root.object("normalizer")) : Normalizer.NONE;
    for (AddedToken token : added) {
      // As in HF, a normalized token's string (for decoding) is its normalized content.
      tokens[token.id()] = token.normalized() ? normalizer.normalize(token.content()) : token.content();
      special[token.id()] = token.special();
      ids.put(token.content(), token.id());
    }
    PreTokenizer preTokenizer = root.has("pre_tokenizer")
        ? preTokenizer(root.object("pre_tokenizer")) : PreTokenizer.NONE;
    Decoder decoder = root.has("decoder") ? decoder(root.object("decoder")) : null;
    int[][] template = root.has("post_processor")
        ? postProcessor(root.object("post_processor")) : new int[][] {{}, {}};
    int[] prefix = template[0];
    int[] suffix = template[1];

    OptionalInt bos = prefix.length == 1 ? OptionalInt.of(prefix[0]) : OptionalInt.empty();
    OptionalInt eos = suffix.length == 1 ? OptionalInt.of(suffix[0]) : OptionalInt.empty();
    Path configFile = file.resolveSibling("tokenizer_config.json");
    if (Files.isRegularFile(configFile)) {
      JsonObject config = JsonDocument.read(configFile);
      OptionalInt configBos = specialToken(config, "bos_token");
      OptionalInt configEos = specialToken(config, "eos_token");
      bos = configBos.isPresent() ? configBos : bos;
      eos = configEos.isPresent() ? configEos : eos;
      // LlamaTokenizer(Fast) rebuilds the post-processor from these two flags where they are set.
      if (config.has("add_bos_token")) {
        prefix = config.bool("add_bos_token", false)
            ? new int[] {required(config, "bos_token", bos)} : new int[0];
      }
      if (config.has("add_eos_token")) {
        suffix = config.bool("add_eos_token", false)
            ? new int[] {required(config, "eos_token", eos)} : new int[0];
      }
    }
    return new Tokenizer(normalizer, preTokenizer, model, new AddedVocabulary(added, normalizer),
        decoder, prefix, suffix, tokens, special, ids, bos, eos);
  }

  // ---- model ----

  private Map<String, Integer> vocab(JsonObject model) throws JsonException {
    String type = model.optString("type");
    if (type == null && !model.has("merges")) {
      // Old files leave the type out; of the models, only BPE has merges.
      throw model.error("type", "missing, and the model has no merges: only BPE models are supported");
    }
    if (type != null && !type.equals("BPE")) {
      throw model.error("type", type + " models are not supported (only BPE)");
    }
    if (model.get("dropout") instanceof Number dropout && dropout.doubleValue() > 0) {
      throw model.error("dropout", "BPE dropout is not supported (it makes encoding random)");
    }
    JsonObject vocabJson = model.object("vocab");
    Map<String, Integer> vocab = new HashMap<>(vocabJson.map().size() * 2);
    for (Map.Entry<String, Object> entry : vocabJson.map().entrySet()) {
      vocab.put(entry.getKey(),
          vocabJson.toInt(entry.getValue(), () -> vocabJson.pathOf(entry.getKey())));
    }
    return vocab;
  }

  private Bpe.Options options(JsonObject model, Map<String, Integer> vocab) throws JsonException {
    String unk = model.optString("unk_token");
    if (unk != null && !vocab.containsKey(unk)) {
      throw model.error("unk_token", "\"" + unk + "\" is not in the vocabulary");
    }
    return new Bpe.Options(unk, model.bool("fuse_unk", false), model.bool("byte_fallback", false),
        model.optString("continuing_subword_prefix"), model.optString("end_of_word_suffix"),
        model.bool("ignore_merges", false));
  }

  /** The merges as {@code {left, right, merged}} ids, in rank order. */
  private int[][] merges(JsonObject model, Map<String, Integer> vocab) throws JsonException {
    List<Object> list = model.has("merges") ? model.array("merges") : List.of();
    String prefix = model.optString("continuing_subword_prefix");
    int[][] merges = new int[list.size()][];
    for (int r = 0; r < merges.length; r++) {
      Object merge = list.get(r);
      String left;
      String right;
      if (merge instanceof String s && s.indexOf(' ') > 0 && s.indexOf(' ') == s.lastIndexOf(' ')
          && !s.endsWith(" ")) {
        left = s.substring(0, s.indexOf(' '));
        right = s.substring(s.indexOf(' ') + 1);
      } else if (merge instanceof List<?> pair && pair.size() == 2
          && pair.get(0) instanceof String a && pair.get(1) instanceof String b) {
        left = a;
        right = b;
      } else {
        throw new JsonException(file, mergePath(model, r)
            + ": a merge is a string \"left right\" or a pair [\"left\", \"right\"]");
      }
      String merged = left + (prefix != null && right.startsWith(prefix)
          ? right.substring(prefix.length()) : right);
      Integer a = vocab.get(left);
      Integer b = vocab.get(right);
      Integer m = vocab.get(merged);
      if (a == null || b == null || m == null) {
        String missing = a == null ? left : b == null ? right : merged;
        throw new JsonException(file, mergePath(model, r) + ": \"" + missing
            + "\" is not in the vocabulary");
      }
      merges[r] = new int[] {a, b, m};
    }
    return merges;
  }

  private static String mergePath(JsonObject model, int rank) {
    return model.pathOf("merges") + "[" + rank + "]";
  }

  // ---- normalizer, pre-tokenizer, decoder, post-processor ----

  private Normalizer normalizer(JsonObject json) throws JsonException {
    String type = json.string("type");
    return switch (type) {
      case "Sequence" -> {
        List<Normalizer> list = new ArrayList<>();
        for (JsonObject item : json.objects("normalizers")) {
          list.add(normalizer(item));
        }
        yield new Normalizer.Sequence(List.copyOf(list));
      }
      case "Prepend" -> new Normalizer.Prepend(json.string("prepend"));
      case "Replace" -> replace(json);
      case "NFC", "NFD", "NFKC", "NFKD" ->
          new Normalizer.UnicodeForm(java.text.Normalizer.Form.valueOf(type));
      case "Lowercase" -> new Normalizer.Lowercase();
      case "Strip" -> new Normalizer.Strip(json.bool("strip_left", true), json.bool("strip_right", true));
      default -> throw unsupported(json, "normalizer", type, SUPPORTED_NORMALIZERS);
    };
  }

  private PreTokenizer preTokenizer(JsonObject json) throws JsonException {
    String type = json.string("type");
    return switch (type) {
      case "Sequence" -> {
        List<PreTokenizer> list = new ArrayList<>();
        for (JsonObject item : json.objects("pretokenizers")) {
          list.add(preTokenizer(item));
        }
        yield new PreTokenizer.Sequence(List.copyOf(list));
      }
      case "ByteLevel" -> new PreTokenizer.ByteLevel(json.bool("add_prefix_space", true),
          json.bool("use_regex", true));
      case "Split" -> {
        String behavior = json.string("behavior");
        Behavior b = switch (behavior) {
          case "Removed" -> Behavior.REMOVED;
          case "Isolated" -> Behavior.ISOLATED;
          case "MergedWithPrevious" -> Behavior.MERGED_WITH_PREVIOUS;
          case "MergedWithNext" -> Behavior.MERGED_WITH_NEXT;
          case "Contiguous" -> Behavior.CONTIGUOUS;
          default -> throw json.error("behavior", "unknown split behavior " + behavior);
        };
        yield new PreTokenizer.Split(pattern(json), b, json.bool("invert", false));
      }
      case "Metaspace" -> new PreTokenizer.Metaspace(replacement(json), prependScheme(json),
          json.bool("split", true));
      default -> throw unsupported(json, "pre-tokenizer", type, SUPPORTED_PRE_TOKENIZERS);
    };
  }

  private Decoder decoder(JsonObject json) throws JsonException {
    String type = json.string("type");
    return switch (type) {
      case "Sequence" -> {
        List<Decoder> list = new ArrayList<>();
        for (JsonObject item : json.objects("decoders")) {
          list.add(decoder(item));
        }
        yield new Decoder.Sequence(List.copyOf(list));
      }
      case "ByteLevel" -> new Decoder.ByteLevel();
      case "Replace" -> replace(json);
      case "ByteFallback" -> new Decoder.ByteFallback();
      case "Fuse" -> new Decoder.Fuse();
      case "Strip" -> new Decoder.Strip(oneChar(json, "content"), json.integer("start", 0),
          json.integer("stop", 0));
      case "Metaspace" -> new Decoder.Metaspace(replacement(json),
          prependScheme(json) != PrependScheme.NEVER);
      default -> throw unsupported(json, "decoder", type, SUPPORTED_DECODERS);
    };
  }

  /** The ids the post-processor puts before and after a single text: {@code {prefix, suffix}}. */
  private int[][] postProcessor(JsonObject json) throws JsonException {
    String type = json.string("type");
    return switch (type) {
      case "ByteLevel" -> new int[][] {{}, {}}; // adjusts offsets only
      case "Sequence" -> {
        int[] prefix = {};
        int[] suffix = {};
        for (JsonObject item : json.objects("processors")) {
          int[][] inner = postProcessor(item); // each wraps the result of the ones before
          prefix = concat(inner[0], prefix);
          suffix = concat(suffix, inner[1]);
        }
        yield new int[][] {prefix, suffix};
      }
      case "BertProcessing", "RobertaProcessing" ->
          new int[][] {{pairId(json, "cls")}, {pairId(json, "sep")}};
      case "TemplateProcessing" -> template(json);
      default -> throw unsupported(json, "post-processor", type, SUPPORTED_POST_PROCESSORS);
    };
  }

  private int[][] template(JsonObject json) throws JsonException {
    JsonObject specialTokens = json.has("special_tokens") ? json.object("special_tokens") : null;
    IntList prefix = new IntList();
    IntList suffix = new IntList();
    boolean sequenceSeen = false;
    for (JsonObject piece : json.objects("single")) {
      if (piece.has("Sequence")) {
        String id = piece.object("Sequence").string("id");
        if (!id.equals("A") || sequenceSeen) {
          throw piece.error("Sequence", "a single-text template holds sequence A once");
        }
        sequenceSeen = true;
      } else if (piece.has("SpecialToken")) {
        String name = piece.object("SpecialToken").string("id");
        JsonObject entry = specialTokens == null ? null : specialTokens.optObject(name);
        if (entry == null) {
          throw json.error("special_tokens", "no entry for \"" + name + "\"");
        }
        for (Object id : entry.array("ids")) {
          (sequenceSeen ? suffix : prefix).add(entry.toInt(id, entry.pathOf("ids")));
        }
      } else {
        throw piece.error(null, "expected a Sequence or a SpecialToken");
      }
    }
    if (!sequenceSeen) {
      throw json.error("single", "the template lacks sequence A");
    }
    return new int[][] {prefix.toArray(), suffix.toArray()};
  }

  // ---- pieces ----

  private Replace replace(JsonObject json) throws JsonException {
    return new Replace(pattern(json), json.string("content"));
  }

  /** A {@code pattern}: {@code {"String": literal}} or {@code {"Regex": expression}}. */
  private Pattern pattern(JsonObject json) throws JsonException {
    JsonObject pattern = json.object("pattern");
    if (pattern.has("String")) {
      return Pattern.compile(Pattern.quote(pattern.string("String")));
    }
    String regex = pattern.string("Regex");
    try {
      // Written for Oniguruma, where \s, \d and \w and case folding follow Unicode.
      return Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
    } catch (PatternSyntaxException e) {
      throw new JsonException(file, pattern.pathOf("Regex")
          + ": regular expression not supported by java.util.regex: " + e.getDescription(), e);
    }
  }

  private char replacement(JsonObject json) throws JsonException {
    return json.has("replacement") ? oneChar(json, "replacement") : '\u2581';
  }

  private char oneChar(JsonObject json, String key) throws JsonException {
    String s = json.string(key);
    if (s.length() != 1) {
      throw json.error(key, "expected one character (of the Basic Multilingual Plane)");
    }
    return s.charAt(0);
  }

  private static PrependScheme prependScheme(JsonObject json) throws JsonException {
    String scheme = json.optString("prepend_scheme");
    if (scheme == null) {
      // Older files: add_prefix_space, true by default.
      return json.bool("add_prefix_space", true) ? PrependScheme.ALWAYS : PrependScheme.NEVER;
    }
    return switch (scheme) {
      case "always" -> PrependScheme.ALWAYS;
      case "first" -> PrependScheme.FIRST;
      case "never" -> PrependScheme.NEVER;
      default -> throw json.error("prepend_scheme", "unknown prepend scheme " + scheme);
    };
  }

  /** A {@code ["token", id]} pair of Bert/Roberta processing. */
  private static int pairId(JsonObject json, String key) throws JsonException {
    List<Object> pair = json.array(key);
    if (pair.size() != 2) {
      throw json.error(key, "expected [token, id]");
    }
    return json.toInt(pair.get(1), json.pathOf(key) + "[1]");
  }

  /** {@code bos_token}/{@code eos_token} of tokenizer_config.json: a string or {@code {content}}. */
  private OptionalInt specialToken(JsonObject config, String key) throws JsonException {
    Object value = config.get(key);
    if (value == null) {
      return OptionalInt.empty();
    }
    String content = value instanceof String s ? s : config.asObject(value, key).string("content");
    Integer id = ids.get(content);
    if (id == null) {
      throw config.error(key, "\"" + content + "\" is neither an added token nor in the vocabulary");
    }
    return OptionalInt.of(id);
  }

  private static int required(JsonObject config, String key, OptionalInt id) throws JsonException {
    if (id.isEmpty()) {
      throw config.error("add_" + key, "asks for " + key + ", which is not known");
    }
    return id.getAsInt();
  }

  private JsonException unsupported(JsonObject json, String what, String type, String supported) {
    return json.error("type", what + " type " + type + " is not supported (supported: "
        + supported + ")");
  }

  private static int[] concat(int[] a, int[] b) {
    int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
