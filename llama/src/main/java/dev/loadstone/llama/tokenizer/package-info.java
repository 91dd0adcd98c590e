/** Tokenizers for Llama models: Hugging Face {@code tokenizer.json}, byte-level BPE. */
package dev.loadstone.llama.tokenizer;
