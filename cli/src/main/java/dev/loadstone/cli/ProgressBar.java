package dev.loadstone.cli;

import java.io.Console;
import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * A one-line progress bar for long jobs, redrawn in place with {@code \r}:
 *
 * <pre>
 * converting [############------------------]  40%  1.1 GiB / 2.7 GiB  512.3 MiB/s  ETA 3 s
 * </pre>
 *
 * <p>Made by {@link #forTerminal}, it draws only when the JVM has a terminal and the job is
 * large enough to be worth watching; otherwise every call does nothing, so a command can
 * report progress unconditionally and its output stays clean in pipes, files and tests. Redraws
 * are limited to one every 100 ms. {@link #finish()} erases the line, so that a command's
 * summary follows on a clean line.
 *
 * <p>Thread-safe: the loaders of a checkpoint may report from several threads.
 */
final class ProgressBar {
  /** Jobs of at most this many bytes get no bar: they end before one would be read. */
  static final long THRESHOLD = 64L << 20;

  private static final long REDRAW_NANOS = 100_000_000L;
  private static final int WIDTH = 30;

  private final PrintStream stream;
  private final String label;
  private final long total;
  private final boolean enabled;
  private final LongSupplier clock;
  private final long start;
  private long done;
  private long lastDraw;
  private boolean drawn;
  private int lastLength;
  private boolean finished;

  /**
   * A bar that draws when {@code enabled}.
   *
   * @param stream where to draw (standard error, so that standard output stays the result)
   * @param label a word before the bar, e.g. {@code "converting"}
   * @param total the amount of work in bytes
   * @param clock the time in nanoseconds ({@code System::nanoTime}; tests pass their own)
   */
  ProgressBar(PrintStream stream, String label, long total, boolean enabled, LongSupplier clock) {
    this.stream = stream;
    this.label = label;
    this.total = Math.max(0, total);
    this.enabled = enabled;
    this.clock = clock;
    this.start = clock.getAsLong();
  }

  /**
   * A bar on {@code stream} that draws only when the JVM runs on a terminal and {@code total}
   * exceeds {@link #THRESHOLD}.
   */
  static ProgressBar forTerminal(PrintStream stream, String label, long total) {
    return new ProgressBar(stream, label, total, isTerminal() && total > THRESHOLD, System::nanoTime);
  }

  /**
   * Whether the JVM's standard input and output are a terminal. (Since JDK 22
   * {@code System.console()} may return a console that is not a terminal, so it is asked.)
   */
  static boolean isTerminal() {
    Console console = System.console();
    return console != null && console.isTerminal();
  }

  /** Whether this bar draws at all. */
  boolean enabled() {
    return enabled;
  }

  /** Reports {@code bytes} more bytes done. */
  synchronized void add(long bytes) {
    update(done + bytes);
  }

  /** Reports that {@code bytesDone} of the total are done. */
  synchronized void update(long bytesDone) {
    done = Math.max(0, Math.min(bytesDone, total));
    if (!enabled || finished) {
      return;
    }
    long now = clock.getAsLong();
    if (drawn && now - lastDraw < REDRAW_NANOS && done < total) {
      return;
    }
    String line = render(done, now - start);
    int length = line.length();
    // Pad over what is left of a longer line drawn before.
    stream.print("\r" + line + " ".repeat(Math.max(0, lastLength - length)));
    stream.flush();
    lastLength = length;
    lastDraw = now;
    drawn = true;
  }

  /** Ends the bar: erases its line, if one was drawn. Later reports are ignored. */
  synchronized void finish() {
    if (finished) {
      return;
    }
    finished = true;
    if (enabled && drawn) {
      stream.print("\r" + " ".repeat(lastLength) + "\r");
      stream.flush();
    }
  }

  /** The bytes reported done so far. */
  synchronized long done() {
    return done;
  }

  /** The line for {@code done} bytes after {@code elapsedNanos}. */
  String render(long done, long elapsedNanos) {
    double fraction = total == 0 ? 1 : (double) done / total;
    int filled = (int) Math.round(fraction * WIDTH);
    StringBuilder line = new StringBuilder(96);
    line.append(label).append(" [")
        .append("#".repeat(filled)).append("-".repeat(WIDTH - filled)).append("] ")
        .append(String.format(Locale.ROOT, "%3d%%", (int) Math.floor(fraction * 100)))
        .append("  ").append(Text.size(done)).append(" / ").append(Text.size(total));
    double seconds = elapsedNanos / 1e9;
    if (seconds >= 0.05 && done > 0) {
      double rate = done / seconds;
      line.append("  ").append(Text.size((long) rate)).append("/s");
      if (done < total) {
        long eta = (long) Math.ceil((total - done) / rate);
        line.append("  ETA ").append(duration(eta));
      }
    }
    return line.toString();
  }

  /** Whole seconds as {@code "42 s"}, {@code "3 min 05 s"} or {@code "2 h 03 min"}. */
  static String duration(long seconds) {
    if (seconds < 60) {
      return seconds + " s";
    }
    if (seconds < 3600) {
      return String.format(Locale.ROOT, "%d min %02d s", seconds / 60, seconds % 60);
    }
    return String.format(Locale.ROOT, "%d h %02d min", seconds / 3600, seconds % 3600 / 60);
  }
}
