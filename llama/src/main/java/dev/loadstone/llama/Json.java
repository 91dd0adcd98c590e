package dev.loadstone.llama;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON reader for configuration files: the document as maps, lists, strings, numbers,
 * booleans and {@code null}, read by jackson-core's streaming tokenizer under fixed limits and
 * without recursion.
 */
final class Json {
  /** The value JSON {@code null} reads as, so that maps can hold it. */
  static final Object NULL = new Object() {
    @Override
    public String toString() {
      return "null";
    }
  };

  private static final JsonFactory FACTORY = JsonFactory.builder()
      .streamReadConstraints(StreamReadConstraints.builder()
          .maxNestingDepth(64)
          .maxNumberLength(64)
          .maxStringLength(1 << 20)
          .maxDocumentLength(16L << 20)
          .build())
      .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
      .build();

  private Json() {}

  /** Parses a document; duplicate keys keep the last value, as Python's {@code json} does. */
  static Object parse(byte[] bytes) throws IOException {
    try (JsonParser parser = FACTORY.createParser(bytes)) {
      Deque<Object> open = new ArrayDeque<>();
      Deque<String> keys = new ArrayDeque<>();
      Object result = null;
      String key = null;
      JsonToken token;
      while ((token = parser.nextToken()) != null) {
        Object value;
        switch (token) {
          case FIELD_NAME -> {
            key = parser.currentName();
            continue;
          }
          case START_OBJECT, START_ARRAY -> {
            Object container = token == JsonToken.START_OBJECT ? new LinkedHashMap<String, Object>() : new ArrayList<>();
            add(open.peek(), key, container);
            open.push(container);
            keys.push(key == null ? "" : key);
            key = null;
            continue;
          }
          case END_OBJECT, END_ARRAY -> {
            Object done = open.pop();
            keys.pop();
            if (open.isEmpty()) {
              result = done;
            }
            continue;
          }
          case VALUE_STRING -> value = parser.getText();
          case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> value = parser.getNumberValue();
          case VALUE_TRUE -> value = Boolean.TRUE;
          case VALUE_FALSE -> value = Boolean.FALSE;
          case VALUE_NULL -> value = NULL;
          default -> throw new IOException("unexpected JSON token " + token);
        }
        if (open.isEmpty()) {
          result = value;
        } else {
          add(open.peek(), key, value);
          key = null;
        }
      }
      return result;
    }
  }

  @SuppressWarnings("unchecked")
  private static void add(Object container, String key, Object value) {
    if (container instanceof Map<?, ?> map) {
      ((Map<String, Object>) map).put(key, value);
    } else if (container instanceof List<?> list) {
      ((List<Object>) list).add(value);
    }
  }
}
