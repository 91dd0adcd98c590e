package dev.loadstone.llama.tokenizer;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Reads a JSON file with jackson-core's streaming parser into plain maps ({@link LinkedHashMap},
 * in file order), lists, strings, numbers ({@code Long} or {@code Double}), booleans and nulls,
 * and gives typed access to them with errors that name the file and the JSON path.
 */
final class Json {
  private static final JsonFactory FACTORY = JsonFactory.builder()
      // Keys are read once (vocabularies hold 100k+ of them): a symbol table would only cost memory.
      .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
      .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
      .build();

  private Json() {}

  /** Reads a file that holds one JSON object. */
  static Obj readObject(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file);
        JsonParser parser = FACTORY.createParser(in)) {
      JsonToken first = parser.nextToken();
      if (first != JsonToken.START_OBJECT) {
        throw new TokenizerException(file, "not a JSON object");
      }
      Object value = readValue(parser, first);
      if (parser.nextToken() != null) {
        throw new TokenizerException(file, "content after the JSON object");
      }
      @SuppressWarnings("unchecked")
      Map<String, Object> map = (Map<String, Object>) value;
      return new Obj(file, "", map);
    } catch (JsonProcessingException e) {
      throw new TokenizerException(file, "invalid JSON: " + e.getOriginalMessage(), e);
    }
  }

  private static Object readValue(JsonParser parser, JsonToken token) throws IOException {
    return switch (token) {
      case START_OBJECT -> {
        Map<String, Object> map = new LinkedHashMap<>();
        String name;
        while ((name = parser.nextFieldName()) != null) {
          map.put(name, readValue(parser, parser.nextToken()));
        }
        yield map;
      }
      case START_ARRAY -> {
        List<Object> list = new ArrayList<>();
        JsonToken next;
        while ((next = parser.nextToken()) != JsonToken.END_ARRAY) {
          list.add(readValue(parser, next));
        }
        yield list;
      }
      case VALUE_STRING -> parser.getText();
      case VALUE_NUMBER_INT -> parser.getNumberType() == JsonParser.NumberType.BIG_INTEGER
          ? (Object) parser.getDoubleValue() : (Object) parser.getLongValue();
      case VALUE_NUMBER_FLOAT -> parser.getDoubleValue();
      case VALUE_TRUE -> Boolean.TRUE;
      case VALUE_FALSE -> Boolean.FALSE;
      case VALUE_NULL -> null;
      // The loops above consume every END_ token and field name; nothing else can start a value.
      default -> throw new IllegalStateException("unexpected JSON token " + token);
    };
  }

  /**
   * A JSON object at {@code path} (dotted, {@code ""} for the root) of {@code file}. Accessors
   * throw {@link TokenizerException} naming the file and the path when a value is missing or
   * has the wrong type; {@code opt} accessors treat a missing key and {@code null} alike.
   */
  record Obj(Path file, String path, Map<String, Object> map) {
    /** The path of {@code key} within the file, for messages. */
    String pathOf(String key) {
      return path.isEmpty() ? key : path + "." + key;
    }

    TokenizerException error(String key, String message) {
      return new TokenizerException(file, (key == null ? path : pathOf(key)) + ": " + message);
    }

    boolean has(String key) {
      return map.get(key) != null;
    }

    Object get(String key) {
      return map.get(key);
    }

    String string(String key) throws TokenizerException {
      String value = optString(key);
      if (value == null) {
        throw error(key, "missing string");
      }
      return value;
    }

    String optString(String key) throws TokenizerException {
      Object value = map.get(key);
      if (value == null || value instanceof String) {
        return (String) value;
      }
      throw error(key, "expected a string, found " + describe(value));
    }

    boolean bool(String key, boolean absent) throws TokenizerException {
      Object value = map.get(key);
      if (value == null) {
        return absent;
      }
      if (value instanceof Boolean b) {
        return b;
      }
      throw error(key, "expected true or false, found " + describe(value));
    }

    int integer(String key) throws TokenizerException {
      Object value = map.get(key);
      if (value == null) {
        throw error(key, "missing integer");
      }
      return toInt(value, pathOf(key));
    }

    int integer(String key, int absent) throws TokenizerException {
      return map.get(key) == null ? absent : integer(key);
    }

    int toInt(Object value, String where) throws TokenizerException {
      return toInt(value, () -> where);
    }

    /** {@code value} as a non-negative int; {@code where} names it in the error, if any. */
    int toInt(Object value, Supplier<String> where) throws TokenizerException {
      if (value instanceof Long l && l >= 0 && l <= Integer.MAX_VALUE) {
        return l.intValue();
      }
      throw new TokenizerException(file, where.get() + ": expected an integer from 0 to "
          + Integer.MAX_VALUE + ", found " + describe(value));
    }

    Obj object(String key) throws TokenizerException {
      Obj value = optObject(key);
      if (value == null) {
        throw error(key, "missing object");
      }
      return value;
    }

    Obj optObject(String key) throws TokenizerException {
      Object value = map.get(key);
      return value == null ? null : asObject(value, pathOf(key));
    }

    Obj asObject(Object value, String where) throws TokenizerException {
      if (value instanceof Map<?, ?> m) {
        @SuppressWarnings("unchecked")
        Map<String, Object> typed = (Map<String, Object>) m;
        return new Obj(file, where, typed);
      }
      throw new TokenizerException(file, where + ": expected an object, found " + describe(value));
    }

    List<Object> array(String key) throws TokenizerException {
      Object value = map.get(key);
      if (value instanceof List<?> list) {
        @SuppressWarnings("unchecked")
        List<Object> typed = (List<Object>) list;
        return typed;
      }
      throw error(key, value == null ? "missing array" : "expected an array, found " + describe(value));
    }

    /** The elements of array {@code key} as objects, each with its own path. */
    List<Obj> objects(String key) throws TokenizerException {
      List<Object> list = array(key);
      List<Obj> out = new ArrayList<>(list.size());
      for (int i = 0; i < list.size(); i++) {
        out.add(asObject(list.get(i), pathOf(key) + "[" + i + "]"));
      }
      return out;
    }
  }

  static String describe(Object value) {
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
