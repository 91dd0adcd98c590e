package dev.loadstone.llama.internal;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.function.Supplier;

/**
 * A JSON object of a {@link JsonDocument}, at {@code path} (dotted, with {@code [i]} for array
 * elements; {@code ""} for the root) of {@code file}, with typed access to its members.
 *
 * <p>Accessors throw a {@link JsonException} naming the file and the member's path when a
 * required member is missing or a member has the wrong kind of value. A {@code null} member is
 * not kept in the tree (see {@link JsonDocument}), so to every accessor it is absent, like a
 * missing one: {@code opt} accessors return {@code null} or empty for it, and accessors with a
 * fallback return the fallback.
 *
 * <p>An integer is a JSON number with no fractional part ({@code 2048}, also {@code 2048.0}), from
 * 0 to {@link Integer#MAX_VALUE}: sizes, ids and counts are never negative.
 */
public final class JsonObject {
  private final Path file;
  private final String path;
  private final Map<String, Object> map;

  JsonObject(Path file, String path, Map<String, Object> map) {
    this.file = file;
    this.path = path;
    this.map = Collections.unmodifiableMap(map);
  }

  /** The file the object was read from. */
  public Path file() {
    return file;
  }

  /** Where the object is in the document: {@code ""} for the root. */
  public String path() {
    return path;
  }

  /** The members, in file order; no value is {@code null}. */
  public Map<String, Object> map() {
    return map;
  }

  /** The path of member {@code key}, for messages. */
  public String pathOf(String key) {
    return path.isEmpty() ? key : path + "." + key;
  }

  /** A failure at member {@code key} ({@code null}: at this object) of the file. */
  public JsonException error(String key, String message) {
    String where = key == null ? path : pathOf(key);
    return new JsonException(file, where.isEmpty() ? message : where + ": " + message);
  }

  /** Whether member {@code key} is present (that is, present and not {@code null}). */
  public boolean has(String key) {
    return map.containsKey(key);
  }

  /** Member {@code key} as it is in the tree, or {@code null} if absent. */
  public Object get(String key) {
    return map.get(key);
  }

  /** The string {@code key}. */
  public String string(String key) throws JsonException {
    String value = optString(key);
    if (value == null) {
      throw error(key, "missing string");
    }
    return value;
  }

  /** The string {@code key}, or {@code null} if absent. */
  public String optString(String key) throws JsonException {
    Object value = map.get(key);
    if (value == null || value instanceof String) {
      return (String) value;
    }
    throw error(key, "expected a string, found " + describe(value));
  }

  /** The boolean {@code key}, or {@code absent}. */
  public boolean bool(String key, boolean absent) throws JsonException {
    Object value = map.get(key);
    if (value == null) {
      return absent;
    }
    if (value instanceof Boolean b) {
      return b;
    }
    throw error(key, "expected true or false, found " + describe(value));
  }

  /** The integer {@code key}. */
  public int integer(String key) throws JsonException {
    OptionalInt value = optInteger(key);
    if (value.isEmpty()) {
      throw error(key, "missing integer");
    }
    return value.getAsInt();
  }

  /** The integer {@code key}, or {@code absent}. */
  public int integer(String key, int absent) throws JsonException {
    return optInteger(key).orElse(absent);
  }

  /** The integer {@code key}, if present. */
  public OptionalInt optInteger(String key) throws JsonException {
    Object value = map.get(key);
    return value == null ? OptionalInt.empty() : OptionalInt.of(toInt(value, pathOf(key)));
  }

  /** {@code value} (from this object's tree) as an integer; {@code where} names it in the error. */
  public int toInt(Object value, String where) throws JsonException {
    return toInt(value, () -> where);
  }

  /**
   * {@code value} (from this object's tree) as an integer; {@code where} names it in the error,
   * and is only called then.
   */
  public int toInt(Object value, Supplier<String> where) throws JsonException {
    if (value instanceof Long l && l >= 0 && l <= Integer.MAX_VALUE) {
      return l.intValue();
    }
    if (value instanceof Double d && d == Math.rint(d) && d >= 0 && d <= Integer.MAX_VALUE) {
      return d.intValue();
    }
    throw new JsonException(file, where.get() + ": expected an integer from 0 to "
        + Integer.MAX_VALUE + ", found " + describe(value));
  }

  /** The finite number {@code key}. */
  public double number(String key) throws JsonException {
    if (!map.containsKey(key)) {
      throw error(key, "missing number");
    }
    return number(key, 0);
  }

  /** The finite number {@code key}, or {@code absent}. */
  public double number(String key, double absent) throws JsonException {
    Object value = map.get(key);
    if (value == null) {
      return absent;
    }
    if (value instanceof Number n && Double.isFinite(n.doubleValue())) {
      return n.doubleValue();
    }
    throw error(key, "expected a finite number, found " + describe(value));
  }

  /** The object {@code key}. */
  public JsonObject object(String key) throws JsonException {
    JsonObject value = optObject(key);
    if (value == null) {
      throw error(key, "missing object");
    }
    return value;
  }

  /** The object {@code key}, or {@code null} if absent. */
  public JsonObject optObject(String key) throws JsonException {
    Object value = map.get(key);
    return value == null ? null : asObject(value, pathOf(key));
  }

  /** {@code value} (from this object's tree) as an object at {@code where}. */
  public JsonObject asObject(Object value, String where) throws JsonException {
    if (value instanceof Map<?, ?> m) {
      @SuppressWarnings("unchecked")
      Map<String, Object> typed = (Map<String, Object>) m;
      return new JsonObject(file, where, typed);
    }
    throw new JsonException(file, where + ": expected an object, found " + describe(value));
  }

  /** The array {@code key}; its elements may be {@code null} (JSON {@code null}). */
  public List<Object> array(String key) throws JsonException {
    Object value = map.get(key);
    if (value instanceof List<?> list) {
      @SuppressWarnings("unchecked")
      List<Object> typed = (List<Object>) list;
      return Collections.unmodifiableList(typed);
    }
    throw error(key, value == null ? "missing array" : "expected an array, found " + describe(value));
  }

  /** The elements of array {@code key} as objects, each with its own path. */
  public List<JsonObject> objects(String key) throws JsonException {
    List<Object> list = array(key);
    List<JsonObject> out = new ArrayList<>(list.size());
    for (int i = 0; i < list.size(); i++) {
      out.add(asObject(list.get(i), pathOf(key) + "[" + i + "]"));
    }
    return out;
  }

  /** A value of the tree as a message names it: {@code a string}, {@code the number 2.5}, {@code null}. */
  public static String describe(Object value) {
    return switch (value) {
      case null -> "null";
      case String _ -> "a string";
      case Boolean b -> b.toString();
      case Number n -> "the number " + n;
      case List<?> _ -> "an array";
      default -> "an object";
    };
  }
}
