/**
 * What the module's packages share and its API does not show: the one JSON reader
 * ({@link dev.loadstone.llama.internal.JsonDocument}, {@link dev.loadstone.llama.internal.JsonObject})
 * that {@code LlamaConfig} and the tokenizer read their files with. Not exported.
 */
package dev.loadstone.llama.internal;
