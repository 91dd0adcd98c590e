package dev.loadstone.store;

import dev.loadstone.safetensors.DType;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * What a {@link VarStore#load} did, or in strict mode would have refused to do.
 *
 * <pre>{@code
 * LoadReport report = store.load(checkpoint, LoadOptions.defaults().partial());
 * if (!report.isComplete()) {
 *   System.err.println(report.summary());
 * }
 * }</pre>
 *
 * @param mode the load mode
 * @param loaded variables filled from the checkpoint, in the store's order
 * @param missing variables of the store that no checkpoint tensor maps to
 * @param unexpected checkpoint tensors (by their names in the checkpoint) that map to no
 *     variable, or that a name rule dropped
 * @param mismatches tensors that do not fit their variable (shape, or dtype where no conversion
 *     is possible); never broadcast or reinterpreted
 * @param conversions dtype conversions made while copying
 * @param dequantized the quantized weights computed into variables of their logical shape
 *     (their stored tensors are consumed: neither loaded one by one nor unexpected)
 * @param renamed checkpoint name to variable name, for each tensor whose name the mapping changed
 * @param bytesRead bytes of tensor data the load read or copied from the checkpoint's files, as
 *     counted while reading (with {@link ReadMode#DIRECT}, whole aligned blocks; with a
 *     {@link Partition}, only the slices'); in ALIAS mode without a copy, the bytes bound
 * @param bytesWritten bytes written into variables (0 in ALIAS mode)
 * @param seconds wall time of the load, planning included
 * @param readDirectly the files read with positional reads rather than through the mapping
 *     ({@link ReadMode}), in file order
 * @param sha256 with {@link LoadOptions#sha256()}, each file's SHA-256 (64 lower-case hex
 *     digits) computed in the load's pass, by file; else empty
 */
public record LoadReport(LoadMode mode, List<String> loaded, List<String> missing, List<String> unexpected,
    List<Mismatch> mismatches, List<Conversion> conversions, List<Dequantized> dequantized, Map<String, String> renamed,
    long bytesRead, long bytesWritten, double seconds, List<Path> readDirectly, Map<Path, String> sha256) {

  /** Copies the collections. */
  public LoadReport {
    loaded = List.copyOf(loaded);
    missing = List.copyOf(missing);
    unexpected = List.copyOf(unexpected);
    mismatches = List.copyOf(mismatches);
    conversions = List.copyOf(conversions);
    dequantized = List.copyOf(dequantized);
    renamed = Map.copyOf(renamed);
    readDirectly = List.copyOf(readDirectly);
    sha256 = Map.copyOf(sha256);
  }

  /** Whether every variable was filled: nothing missing, nothing mismatched. */
  public boolean isComplete() {
    return missing.isEmpty() && mismatches.isEmpty();
  }

  /** A tensor that does not fit its variable. */
  public record Mismatch(String variable, String tensor, Path file, Kind kind, String expected, String found) {
    /** What does not fit. */
    public enum Kind {
      /** The shapes differ. */
      SHAPE,
      /** The dtypes differ and the load mode cannot convert (ALIAS, or no such conversion). */
      DTYPE,
      /**
       * The tensor is part of a quantized weight that cannot be loaded as asked: its scheme is
       * unknown, a companion (its scales, say) has no variable of its own, or this load cannot
       * dequantize. {@code found} says which.
       */
      QUANTIZATION
    }

    @Override
    public String toString() {
      if (kind == Kind.QUANTIZATION) {
        return variable + ": " + found + " (" + file + ", tensor '" + tensor + "')";
      }
      return variable + ": " + kind.name().toLowerCase(java.util.Locale.ROOT) + " " + expected
          + " in the store, " + found + " in " + file + " (tensor '" + tensor + "')";
    }
  }

  /** A dtype conversion made on the way into a variable. */
  public record Conversion(String variable, DType from, DType to) {}

  /**
   * A quantized weight computed into a variable.
   *
   * @param weight the weight's logical name in the checkpoint
   * @param scheme its scheme and parameters ({@code "gptq 4-bit, groups of 128, sym, gptq (v1)"})
   * @param tensors the stored tensors it was computed from
   * @param to the variable's dtype
   */
  public record Dequantized(String variable, String weight, String scheme, List<String> tensors, DType to) {
    /** Copies the list. */
    public Dequantized {
      tensors = List.copyOf(tensors);
    }

    @Override
    public String toString() {
      return variable + " <- " + String.join(" + ", tensors) + " (" + scheme + ", to " + to + ")";
    }
  }

  /** A multi-line, human-readable account of the load. */
  public String summary() {
    StringBuilder text = new StringBuilder();
    text.append(String.format("%s: %d loaded, %d missing, %d unexpected, %d mismatched, %d converted%s;"
            + " %,d bytes read, %,d written in %.3f s",
        mode, loaded.size(), missing.size(), unexpected.size(), mismatches.size(),
        conversions.size(), dequantized.isEmpty() ? "" : ", " + dequantized.size() + " dequantized",
        bytesRead, bytesWritten, seconds));
    appendList(text, "missing", missing);
    appendList(text, "unexpected", unexpected);
    appendList(text, "mismatched", mismatches.stream().map(Mismatch::toString).toList());
    appendList(text, "dequantized", dequantized.stream().map(Dequantized::toString).toList());
    appendList(text, "read directly", readDirectly.stream().map(Path::toString).toList());
    appendList(text, "sha256", sha256.entrySet().stream().map(e -> e.getValue() + "  " + e.getKey()).sorted().toList());
    return text.toString();
  }

  private static void appendList(StringBuilder text, String title, List<String> items) {
    int shown = Math.min(items.size(), 20);
    for (int i = 0; i < shown; i++) {
      text.append('\n').append("  ").append(title).append(": ").append(items.get(i));
    }
    if (items.size() > shown) {
      text.append('\n').append("  ... and ").append(items.size() - shown).append(" more ").append(title);
    }
  }

  @Override
  public String toString() {
    return summary();
  }
}
