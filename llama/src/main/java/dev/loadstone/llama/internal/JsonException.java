package dev.loadstone.llama.internal;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A JSON file that cannot be used: not JSON, over a limit of {@link JsonDocument}, or holding a
 * value of the wrong kind. The message is {@code "<file>: <reason>"}, the reason led by the JSON
 * path of the value at fault where there is one. Callers turn it into their own exception with
 * {@link #file()} and {@link #reason()}.
 */
public final class JsonException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;
  private final String reason;

  /** A failure in {@code file}, for {@code reason}. */
  public JsonException(Path file, String reason) {
    this(file, reason, null);
  }

  /** A failure in {@code file}, for {@code reason}, caused by {@code cause}. */
  public JsonException(Path file, String reason, Throwable cause) {
    super(file + ": " + reason, cause);
    this.file = file;
    this.reason = reason;
  }

  /** The file at fault. */
  public Path file() {
    return file;
  }

  /** The message without the file: what is wrong, and where in the document. */
  public String reason() {
    return reason;
  }
}
