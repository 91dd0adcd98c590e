/**
 * Llama models on Loadstone. {@link dev.loadstone.llama.tokenizer.Tokenizer} reads a Hugging Face
 * {@code tokenizer.json} (byte-level BPE as in Llama 3, SentencePiece-style BPE as in Llama 2).
 */
module dev.loadstone.llama {
  requires dev.loadstone.core;
  requires com.fasterxml.jackson.core;

  exports dev.loadstone.llama.tokenizer;
}
