/**
 * Tokenizers for Llama models, read from Hugging Face {@code tokenizer.json} files, in pure Java.
 *
 * <p>{@link dev.loadstone.llama.tokenizer.Tokenizer} encodes text to ids and decodes ids to text;
 * {@link dev.loadstone.llama.tokenizer.StreamingDecoder} decodes ids as a model generates them.
 * Both follow the Hugging Face {@code tokenizers} library step by step, and the tests check
 * them against it (byte-level BPE as in Llama 3, SentencePiece-style BPE with byte fallback as
 * in Llama 2).
 *
 * <pre>{@code
 * Tokenizer tokenizer = Tokenizer.load(Path.of("examples/fortune-llama"));
 * int[] prompt = tokenizer.encode("The meaning of life", true);  // [256, 334, 511, ...]
 * int eos = tokenizer.eosId().orElseThrow();                      // 257
 * }</pre>
 *
 * <p>The pipeline of encoding: added tokens (such as {@code <|eot_id|>}) are found in the text
 * first; each stretch between them is normalized ({@code Normalizer}), split into words
 * ({@code PreTokenizer}), and each word is merged by the BPE model ({@code Bpe}); the
 * post-processor's tokens (the bos token) are put around the result on request. Decoding maps
 * ids to token strings and runs them through the {@code Decoder}s.
 */
package dev.loadstone.llama.tokenizer;
