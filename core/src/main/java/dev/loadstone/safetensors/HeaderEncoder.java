package dev.loadstone.safetensors;

import dev.loadstone.internal.JsonStrings;
import dev.loadstone.internal.JsonStrings.Escaping;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Lays tensors out in a file and encodes the header exactly as the reference implementation's
 * {@code serialize} does ({@code safetensors/src/tensor.rs}, {@code prepare}): tensors in
 * {@link TensorSpec#canonicalOrder()}, packed with no gaps; compact JSON as {@code serde_json}
 * writes it, {@code __metadata__} first, each entry's fields as {@code dtype}, {@code shape},
 * {@code data_offsets}; spaces to a multiple of 8 bytes; the 8-byte little-endian length first.
 *
 * <p>The only difference: the reference keeps {@code __metadata__} in a hash map, so its key
 * order varies from run to run; here the keys are in code point order. A map with one key, the
 * usual case ({@code {"format": "pt"}}), is encoded identically either way.
 *
 * <p>Every writer goes through {@link #layout}, so one piece of code decides every header byte.
 */
final class HeaderEncoder {

  private HeaderEncoder() {}

  /**
   * A file's layout: the tensors in file order, where each one's data starts in the data
   * section, and the bytes before the data.
   *
   * @param tensors the tensors in file order
   * @param begins {@code begins[i]} is where tensor {@code i}'s data starts in the data section;
   *     {@code begins[tensors.size()]} is the data section's length
   * @param header the 8-byte little-endian length, the JSON and its padding
   */
  record Layout(List<TensorSpec> tensors, long[] begins, byte[] header) {}

  /**
   * Validates the tensors and metadata and lays them out.
   *
   * @param metadata the {@code __metadata__} map, or {@code null} to write none
   * @throws IllegalArgumentException if two tensors share a name, a tensor is named
   *     {@code __metadata__}, a string holds an unpaired surrogate (it has no UTF-8 form), the
   *     data would exceed 2^63 - 1 bytes or the header the 100,000,000 bytes readers accept
   */
  static Layout layout(Map<String, String> metadata, Collection<TensorSpec> specs) {
    Objects.requireNonNull(specs, "tensors");
    List<TensorSpec> tensors = new ArrayList<>(specs.size());
    Set<String> names = HashSet.newHashSet(specs.size());
    for (TensorSpec spec : specs) {
      Objects.requireNonNull(spec, "a tensor spec is null");
      if (spec.name().equals(HeaderParser.METADATA_KEY)) {
        throw new IllegalArgumentException(
            "a tensor cannot be named __metadata__: the header reserves that key");
      }
      requireWellFormed(spec.name(), "tensor name");
      if (!names.add(spec.name())) {
        throw new IllegalArgumentException("tensor '" + spec.name() + "' appears more than once");
      }
      tensors.add(spec);
    }
    tensors.sort(TensorSpec.canonicalOrder());

    long[] begins = new long[tensors.size() + 1];
    long offset = 0;
    for (int i = 0; i < tensors.size(); i++) {
      begins[i] = offset;
      try {
        offset = Math.addExact(offset, tensors.get(i).byteSize());
      } catch (ArithmeticException e) {
        throw new IllegalArgumentException("the tensors' data would exceed 2^63 - 1 bytes", e);
      }
    }
    begins[tensors.size()] = offset;

    StringBuilder json = new StringBuilder(64 + 96 * tensors.size());
    json.append('{');
    boolean first = true;
    if (metadata != null) {
      json.append("\"__metadata__\":{");
      List<Map.Entry<String, String>> entries = new ArrayList<>(metadata.entrySet());
      for (Map.Entry<String, String> entry : entries) {
        Objects.requireNonNull(entry.getKey(), "a metadata key is null");
        Objects.requireNonNull(entry.getValue(), () -> "metadata '" + entry.getKey() + "' is null");
        requireWellFormed(entry.getKey(), "metadata key");
        requireWellFormed(entry.getValue(), "metadata value of '" + entry.getKey() + "'");
      }
      entries.sort(Map.Entry.comparingByKey(TensorSpec::compareCodePoints));
      boolean firstEntry = true;
      for (Map.Entry<String, String> entry : entries) {
        if (!firstEntry) {
          json.append(',');
        }
        firstEntry = false;
        JsonStrings.append(json, entry.getKey(), Escaping.SERDE_JSON);
        json.append(':');
        JsonStrings.append(json, entry.getValue(), Escaping.SERDE_JSON);
      }
      json.append('}');
      first = false;
    }
    for (int i = 0; i < tensors.size(); i++) {
      TensorSpec spec = tensors.get(i);
      if (!first) {
        json.append(',');
      }
      first = false;
      JsonStrings.append(json, spec.name(), Escaping.SERDE_JSON);
      json.append(":{\"dtype\":\"").append(spec.dtype().name()).append("\",\"shape\":[");
      long[] shape = spec.shape();
      for (int d = 0; d < shape.length; d++) {
        if (d > 0) {
          json.append(',');
        }
        json.append(shape[d]);
      }
      json.append("],\"data_offsets\":[").append(begins[i]).append(',').append(begins[i + 1])
          .append("]}");
    }
    json.append('}');

    byte[] text = json.toString().getBytes(StandardCharsets.UTF_8);
    long padded = (text.length + 7L) & ~7L;
    if (padded > HeaderParser.MAX_HEADER_LENGTH) {
      throw new IllegalArgumentException("the header would be " + padded
          + " bytes, over the " + HeaderParser.MAX_HEADER_LENGTH + " bytes readers accept");
    }
    ByteArrayOutputStream header = new ByteArrayOutputStream(Long.BYTES + (int) padded);
    for (int shift = 0; shift < 64; shift += 8) {
      header.write((int) (padded >>> shift) & 0xFF);
    }
    header.write(text, 0, text.length);
    for (int i = text.length; i < padded; i++) {
      header.write(' ');
    }
    return new Layout(List.copyOf(tensors), begins, header.toByteArray());
  }

  private static void requireWellFormed(String text, String what) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < text.length()
          && Character.isLowSurrogate(text.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        throw new IllegalArgumentException(what + " '" + text.replace(c, '\uFFFD')
            + "' holds an unpaired surrogate U+" + Integer.toHexString(c).toUpperCase(Locale.ROOT)
            + " at index " + i + ", which UTF-8 cannot encode");
      }
    }
  }
}
