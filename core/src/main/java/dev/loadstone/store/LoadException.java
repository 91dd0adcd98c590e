package dev.loadstone.store;

import java.io.IOException;
import java.util.Objects;

/**
 * A load failed: strict mode found missing or mismatched tensors (before writing any variable),
 * or reading a tensor failed midway (a shard truncated after it was opened, a closed
 * checkpoint). {@link #report()} says what the load found; no variable it touched claims to be
 * loaded afterwards.
 */
public final class LoadException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient LoadReport report;

  /**
   * A failed load and its report. Loads are planned and copied outside this package (by the
   * load engine, which every backend shares), hence public.
   */
  public LoadException(String message, LoadReport report, Throwable cause) {
    super(message, cause);
    this.report = Objects.requireNonNull(report, "report");
  }

  /** What the load found before it failed. */
  public LoadReport report() {
    return report;
  }
}
