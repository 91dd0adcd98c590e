package dev.loadstone.llama.tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A tokenizer file cannot be used: it is not valid JSON, breaks the {@code tokenizer.json}
 * format, or asks for a component this library does not implement (a WordPiece or Unigram
 * model, say). The message names the file and the JSON path of the offending value.
 */
public final class TokenizerException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;

  TokenizerException(Path file, String message) {
    this(file, message, null);
  }

  TokenizerException(Path file, String message, Throwable cause) {
    super(file == null ? message : file + ": " + message, cause);
    this.file = file;
  }

  /** The file that could not be used, where known. */
  public Optional<Path> file() {
    return Optional.ofNullable(file);
  }
}
