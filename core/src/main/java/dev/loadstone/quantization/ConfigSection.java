package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One JSON object of {@code config.json} (as plain maps, lists, strings, {@link BigDecimal}s
 * and booleans), read with typed accessors whose errors name the file and the JSON path. A
 * {@code null} member counts as absent.
 */
record ConfigSection(Map<String, Object> values, String path, Path file) {

  boolean has(String key) {
    return values.get(key) != null;
  }

  /** Whether the key is present with an explicit {@code null}. */
  boolean isNull(String key) {
    return values.containsKey(key) && values.get(key) == null;
  }

  String string(String key) throws CheckpointException {
    return optionalString(key).orElseThrow(() -> invalid(key, "is missing"));
  }

  Optional<String> optionalString(String key) throws CheckpointException {
    Object value = values.get(key);
    if (value == null) {
      return Optional.empty();
    }
    if (!(value instanceof String text)) {
      throw invalid(key, "is not a string");
    }
    return Optional.of(text);
  }

  boolean bool(String key, boolean absent) throws CheckpointException {
    Object value = values.get(key);
    if (value == null) {
      return absent;
    }
    if (!(value instanceof Boolean flag)) {
      throw invalid(key, "is not true or false");
    }
    return flag;
  }

  Optional<Integer> optionalInt(String key) throws CheckpointException {
    Object value = values.get(key);
    if (value == null) {
      return Optional.empty();
    }
    if (!(value instanceof BigDecimal number)) {
      throw invalid(key, "is not a number");
    }
    try {
      return Optional.of(number.intValueExact());
    } catch (ArithmeticException e) {
      throw invalid(key, "is " + number + ", not an integer of 32 bits");
    }
  }

  int integer(String key) throws CheckpointException {
    return optionalInt(key).orElseThrow(() -> invalid(key, "is missing"));
  }

  Optional<ConfigSection> optionalObject(String key) throws CheckpointException {
    Object value = values.get(key);
    if (value == null) {
      return Optional.empty();
    }
    return Optional.of(asObject(value, path + "." + key));
  }

  Optional<List<Object>> optionalList(String key) throws CheckpointException {
    Object value = values.get(key);
    if (value == null) {
      return Optional.empty();
    }
    if (!(value instanceof List<?> list)) {
      throw invalid(key, "is not an array");
    }
    @SuppressWarnings("unchecked")
    List<Object> items = (List<Object>) list;
    return Optional.of(items);
  }

  /** A JSON value known to be an object, at {@code where}. */
  ConfigSection asObject(Object value, String where) throws CheckpointException {
    if (!(value instanceof Map<?, ?> map)) {
      throw new CheckpointException(Reason.INVALID_QUANTIZATION_CONFIG, file, null, where + " is not a JSON object");
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> members = (Map<String, Object>) map;
    return new ConfigSection(members, where, file);
  }

  CheckpointException invalid(String key, String what) {
    return new CheckpointException(Reason.INVALID_QUANTIZATION_CONFIG, file, null, path + "." + key + " " + what);
  }

  CheckpointException unsupported(String what) {
    return new CheckpointException(Reason.UNSUPPORTED_QUANTIZATION, file, null, what + " (" + path + ")");
  }
}
