package dev.loadstone.cli;

import java.math.BigDecimal;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte sizes written on the command line, as Hugging Face writes them: a number and a unit,
 * {@code 5GB}, {@code 500MB}, {@code 2GiB}, {@code 1.5GB}, {@code 1000000}. Decimal units are
 * powers of 1000 ({@code KB}, {@code MB}, {@code GB}, {@code TB}), binary units powers of 1024
 * ({@code KiB}, {@code MiB}, {@code GiB}, {@code TiB}); a bare number or {@code B} is bytes.
 * Units are case-insensitive; a space may separate number and unit.
 */
final class ByteSize {
  private static final Pattern SIZE = Pattern.compile("\\s*(\\d+(?:\\.\\d+)?)\\s*([A-Za-z]*)\\s*");
  private static final Map<String, Long> UNITS = Map.ofEntries(
      Map.entry("", 1L),
      Map.entry("b", 1L),
      Map.entry("kb", 1_000L),
      Map.entry("mb", 1_000_000L),
      Map.entry("gb", 1_000_000_000L),
      Map.entry("tb", 1_000_000_000_000L),
      Map.entry("kib", 1L << 10),
      Map.entry("mib", 1L << 20),
      Map.entry("gib", 1L << 30),
      Map.entry("tib", 1L << 40));

  private ByteSize() {}

  /**
   * The number of bytes {@code text} states.
   *
   * @param what the option or argument, for messages, e.g. {@code "--max-shard-size"}
   * @throws UsageException if the text is not a size, has an unknown unit, or is not a positive
   *     whole number of bytes that fits a {@code long}
   */
  static long parse(String what, String text) throws UsageException {
    Matcher matcher = SIZE.matcher(text);
    if (!matcher.matches()) {
      throw new UsageException(what + " '" + Text.oneLine(text)
          + "' is not a size: write e.g. 5GB, 500MB, 2GiB or a number of bytes");
    }
    Long unit = UNITS.get(matcher.group(2).toLowerCase(Locale.ROOT));
    if (unit == null) {
      throw new UsageException(what + " '" + Text.oneLine(text) + "' has an unknown unit '"
          + Text.oneLine(matcher.group(2)) + "': use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB");
    }
    BigDecimal bytes = new BigDecimal(matcher.group(1)).multiply(BigDecimal.valueOf(unit));
    if (bytes.signum() <= 0) {
      throw new UsageException(what + " must be positive, not '" + Text.oneLine(text) + "'");
    }
    if (bytes.stripTrailingZeros().scale() > 0) {
      throw new UsageException(what + " '" + Text.oneLine(text) + "' is not a whole number of bytes");
    }
    if (bytes.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
      throw new UsageException(what + " '" + Text.oneLine(text) + "' is too large");
    }
    return bytes.longValueExact();
  }
}
