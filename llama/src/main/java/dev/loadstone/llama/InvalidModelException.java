package dev.loadstone.llama;

import dev.loadstone.store.LoadReport;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A model directory that does not describe a model this code can run: {@code config.json}
 * missing, unreadable as JSON, lacking a field or holding an unsupported setting, or weights that
 * are missing or do not fit the configuration ({@link #report()} then says which).
 */
public final class InvalidModelException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;
  private final transient LoadReport report;

  InvalidModelException(Path file, String message) {
    this(file, message, null, null);
  }

  InvalidModelException(Path file, String message, LoadReport report, Throwable cause) {
    super(file + ": " + message, cause);
    this.file = file;
    this.report = report;
  }

  /** The file or directory at fault. */
  public Path file() {
    return file;
  }

  /** The load's account of missing and mismatched tensors, when the weights are at fault. */
  public Optional<LoadReport> report() {
    return Optional.ofNullable(report);
  }
}
