package dev.loadstone.llama.tokenizer;

import dev.loadstone.llama.tokenizer.AddedVocabulary.Segment;
import dev.loadstone.llama.tokenizer.PreTokenizer.Piece;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * A BPE tokenizer read from a Hugging Face {@code tokenizer.json}: byte-level BPE as in GPT-2
 * and Llama 3, and SentencePiece-style BPE with byte fallback as in Llama 2. Encoding and
 * decoding follow the Hugging Face {@code tokenizers} library step by step (added tokens,
 * normalizer, pre-tokenizer, BPE model, post-processor; decoder), so ids match its output.
 *
 * <pre>{@code
 * Tokenizer tokenizer = Tokenizer.load(Path.of("model/tokenizer.json"));
 * int[] ids = tokenizer.encode("The meaning of life", true);   // with <|begin_of_text|>
 * String text = tokenizer.decode(ids);                          // "<|begin_of_text|>The meaning of life"
 *
 * StreamingDecoder out = tokenizer.streamingDecoder(true);      // skip special tokens
 * for (int id : generatedIds) {
 *   System.out.print(out.next(id));                             // whole characters only
 * }
 * System.out.print(out.finish());
 * }</pre>
 *
 * <p>Supported: a {@code BPE} model (string or pair merges, {@code byte_fallback},
 * {@code unk_token}/{@code fuse_unk}, {@code continuing_subword_prefix},
 * {@code end_of_word_suffix}, {@code ignore_merges}); the normalizers {@code Sequence},
 * {@code Prepend}, {@code Replace}, {@code NFC}, {@code NFD}, {@code NFKC}, {@code NFKD},
 * {@code Lowercase}, {@code Strip}; the pre-tokenizers {@code Sequence}, {@code ByteLevel},
 * {@code Split}, {@code Metaspace}; the decoders {@code Sequence}, {@code ByteLevel},
 * {@code Replace}, {@code ByteFallback}, {@code Fuse}, {@code Strip}, {@code Metaspace}; the
 * post-processors {@code TemplateProcessing}, {@code ByteLevel}, {@code BertProcessing},
 * {@code RobertaProcessing}, {@code Sequence}. Anything else ({@code WordPiece} or
 * {@code Unigram} models, say) fails to load with a {@link TokenizerException}. Regular
 * expressions (written for Oniguruma) run on {@code java.util.regex} with Unicode character
 * classes.
 *
 * <p>Instances are immutable and safe to share between threads.
 */
public final class Tokenizer {
  private final Normalizer normalizer;
  private final PreTokenizer preTokenizer;
  private final Bpe model;
  private final AddedVocabulary addedVocabulary;
  private final Decoder decoder;
  private final int[] prefix;
  private final int[] suffix;
  /** Token string by id (an added token's content, normalized if the token is); null for gaps. */
  private final String[] tokens;
  private final boolean[] special;
  /** Id by vocabulary string and by added token content (which takes precedence). */
  private final Map<String, Integer> ids;
  private final OptionalInt bos;
  private final OptionalInt eos;

  Tokenizer(Normalizer normalizer, PreTokenizer preTokenizer, Bpe model,
      AddedVocabulary addedVocabulary, Decoder decoder, int[] prefix, int[] suffix,
      String[] tokens, boolean[] special, Map<String, Integer> ids, OptionalInt bos,
      OptionalInt eos) {
    this.normalizer = normalizer;
    this.preTokenizer = preTokenizer;
    this.model = model;
    this.addedVocabulary = addedVocabulary;
    this.decoder = decoder;
    // TokenizerJson hands over the arrays and the map, and never changes them afterwards.
    this.prefix = prefix;
    this.suffix = suffix;
    this.tokens = tokens;
    this.special = special;
    this.ids = ids;
    this.bos = bos;
    this.eos = eos;
  }

  /**
   * Reads a {@code tokenizer.json}, or the one in a model directory, and the
   * {@code tokenizer_config.json} beside it if there is one (for {@code bos_token},
   * {@code eos_token}, {@code add_bos_token} and {@code add_eos_token}).
   *
   * @throws TokenizerException if a file is not valid JSON, breaks the format, or needs a
   *     component this class does not implement; the message names the file and JSON path
   * @throws IOException if a file cannot be read
   */
  public static Tokenizer load(Path path) throws IOException {
    Path file = Files.isDirectory(path) ? path.resolve("tokenizer.json") : path;
    return TokenizerJson.read(file);
  }

  /** The ids of {@code text}, without the special tokens that the post-processor adds. */
  public int[] encode(String text) {
    return encode(text, false);
  }

  /**
   * The ids of {@code text}. Added tokens written in the text (special ones such as
   * {@code <|eot_id|>} included) become their ids, as in Hugging Face {@code tokenizers}.
   *
   * @param addSpecialTokens whether to add what the post-processor adds around the text (the
   *     bos token for Llama), or what {@code add_bos_token} and {@code add_eos_token} of
   *     {@code tokenizer_config.json} ask where it sets them
   */
  public int[] encode(String text, boolean addSpecialTokens) {
    String input = wellFormed(text);
    IntList ids = new IntList(input.length() / 2 + 4);
    if (addSpecialTokens) {
      ids.addAll(prefix);
    }
    List<Piece> pieces = new ArrayList<>();
    for (Segment outer : addedVocabulary.splitRaw(input)) {
      if (outer.isToken()) {
        ids.add(outer.id());
        continue;
      }
      String normalized = normalizer.normalize(input.substring(outer.start(), outer.end()));
      for (Segment inner : addedVocabulary.splitNormalized(normalized)) {
        if (inner.isToken()) {
          ids.add(inner.id());
          continue;
        }
        pieces.clear();
        boolean atStart = outer.start() == 0 && inner.start() == 0;
        preTokenizer.split(new Piece(normalized.substring(inner.start(), inner.end()), atStart), pieces);
        for (Piece piece : pieces) {
          model.tokenize(piece.text(), ids);
        }
      }
    }
    if (addSpecialTokens) {
      ids.addAll(suffix);
    }
    return ids.toArray();
  }

  /** The text of {@code ids}, special tokens included. */
  public String decode(int[] ids) {
    return decode(ids, false);
  }

  /**
   * The text of {@code ids}, through the tokenizer's decoder (tokens joined by spaces if it has
   * none).
   *
   * @param skipSpecialTokens whether to leave out added tokens marked special
   * @throws IllegalArgumentException if an id is not one of the tokenizer's
   */
  public String decode(int[] ids, boolean skipSpecialTokens) {
    List<String> strings = new ArrayList<>(ids.length);
    for (int id : ids) {
      String token = token(id);
      if (!(skipSpecialTokens && special[id])) {
        strings.add(token);
      }
    }
    return decoder == null ? String.join(" ", strings) : String.join("", decoder.decodeChain(strings));
  }

  /** A decoder for ids that arrive one at a time, special tokens included. */
  public StreamingDecoder streamingDecoder() {
    return new StreamingDecoder(this, false);
  }

  /** A decoder for ids that arrive one at a time. */
  public StreamingDecoder streamingDecoder(boolean skipSpecialTokens) {
    return new StreamingDecoder(this, skipSpecialTokens);
  }

  /**
   * The beginning-of-sequence token: {@code bos_token} of {@code tokenizer_config.json}, else
   * the single token the post-processor puts before the text, if any.
   */
  public OptionalInt bosId() {
    return bos;
  }

  /**
   * The end-of-sequence token: {@code eos_token} of {@code tokenizer_config.json}, else the
   * single token the post-processor puts after the text, if any.
   */
  public OptionalInt eosId() {
    return eos;
  }

  /** One more than the largest id, of the model's vocabulary and of the added tokens. */
  public int vocabSize() {
    return tokens.length;
  }

  /** The string of token {@code id} as the vocabulary writes it ({@code "Ġthe"}, {@code "▁the"}). */
  public String token(int id) {
    if (id < 0 || id >= tokens.length || tokens[id] == null) {
      throw new IllegalArgumentException("no token has id " + id);
    }
    return tokens[id];
  }

  /**
   * The id of a token given as the vocabulary writes it, such as {@code "<|eot_id|>"} (to stop
   * generation on) or {@code "Ġthe"}; empty if there is none. This looks a string up; it does
   * not encode text.
   */
  public OptionalInt tokenId(String token) {
    Integer id = ids.get(token);
    return id == null ? OptionalInt.empty() : OptionalInt.of(id);
  }

  /** Whether {@code id} is an added token marked special. */
  public boolean isSpecial(int id) {
    token(id);
    return special[id];
  }

  /** The text with each unpaired surrogate (not valid Unicode) as U+FFFD. */
  private static String wellFormed(String text) {
    Objects.requireNonNull(text, "text");
    StringBuilder out = null;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      boolean paired = Character.isHighSurrogate(c) && i + 1 < text.length()
          && Character.isLowSurrogate(text.charAt(i + 1));
      if (paired) {
        if (out != null) {
          out.append(c).append(text.charAt(i + 1));
        }
        i++;
      } else if (Character.isSurrogate(c)) {
        if (out == null) {
          out = new StringBuilder(text.length()).append(text, 0, i);
        }
        out.append('\uFFFD');
      } else if (out != null) {
        out.append(c);
      }
    }
    return out == null ? text : out.toString();
  }
}
