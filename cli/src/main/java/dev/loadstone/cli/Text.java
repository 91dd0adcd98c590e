package dev.loadstone.cli;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/** Formatting helpers for the CLI's human-readable output. */
final class Text {
  private Text() {}

  /** {@code 8974720} as {@code "8,974,720"}. */
  static String grouped(long value) {
    return String.format(Locale.ROOT, "%,d", value);
  }

  /** A count with its noun: {@code "1 tensor"}, {@code "1,024 tensors"}. */
  static String count(long count, String noun) {
    return grouped(count) + " " + noun + (count == 1 ? "" : "s");
  }

  /** A byte count in binary units: {@code "512 B"}, {@code "8.6 MiB"}. */
  static String size(long bytes) {
    if (bytes < 1024) {
      return bytes + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = bytes;
    int unit = -1;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return String.format(Locale.ROOT, "%.1f %s", value, units[unit]);
  }

  /** Nanoseconds as milliseconds: {@code "3.2 ms"}. */
  static String millis(long nanos) {
    return String.format(Locale.ROOT, "%.1f ms", nanos / 1e6);
  }

  /** A shape as {@code "[512, 256]"}; {@code "[]"} for a scalar. */
  static String shape(long[] shape) {
    return Arrays.stream(shape).mapToObj(Long::toString).collect(Collectors.joining(", ", "[", "]"));
  }

  /** A float, compactly: four significant digits. */
  static String number(double value) {
    if (value == 0 || Double.isNaN(value) || Double.isInfinite(value)) {
      return Double.toString(value);
    }
    return String.format(Locale.ROOT, "%.4g", value);
  }

  /**
   * The text with control characters escaped ({@code \n}, {@code \t}, {@code \}{@code u0007}),
   * so that names and messages from a file always print on one line.
   */
  static String oneLine(String text) {
    if (text == null) {
      return "null";
    }
    StringBuilder out = null;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      String escape = switch (c) {
        case '\n' -> "\\n";
        case '\r' -> "\\r";
        case '\t' -> "\\t";
        default -> Character.isISOControl(c) || c == '\u2028' || c == '\u2029'
            ? String.format(Locale.ROOT, "\\u%04x", (int) c) : null;
      };
      if (escape != null && out == null) {
        out = new StringBuilder(text.length() + 8).append(text, 0, i);
      }
      if (out != null) {
        if (escape != null) {
          out.append(escape);
        } else {
          out.append(c);
        }
      }
    }
    return out == null ? text : out.toString();
  }

  /** Seconds, for durations shown to people: {@code "3.25 s"}. */
  static String seconds(long nanos) {
    return String.format(Locale.ROOT, "%.2f s", nanos / 1e9);
  }

  /**
   * Lays rows out in columns separated by two spaces, each line indented by {@code indent}.
   * Columns whose index is in {@code rightAligned} are aligned right (numbers), the others left;
   * the last column is not padded.
   */
  static List<String> table(List<String[]> rows, String indent, int... rightAligned) {
    int columns = rows.stream().mapToInt(row -> row.length).max().orElse(0);
    int[] widths = new int[columns];
    for (String[] row : rows) {
      for (int c = 0; c < row.length; c++) {
        widths[c] = Math.max(widths[c], row[c].length());
      }
    }
    boolean[] right = new boolean[columns];
    for (int column : rightAligned) {
      right[column] = true;
    }
    List<String> lines = new ArrayList<>(rows.size());
    for (String[] row : rows) {
      StringBuilder line = new StringBuilder(indent);
      for (int c = 0; c < row.length; c++) {
        String cell = row[c];
        String pad = " ".repeat(widths[c] - cell.length());
        if (c > 0) {
          line.append("  ");
        }
        if (right[c]) {
          line.append(pad).append(cell);
        } else {
          line.append(cell);
          if (c < row.length - 1) {
            line.append(pad);
          }
        }
      }
      lines.add(line.toString());
    }
    return lines;
  }
}
