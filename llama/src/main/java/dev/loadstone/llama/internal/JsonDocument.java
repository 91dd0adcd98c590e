package dev.loadstone.llama.internal;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a JSON file that holds one object ({@code config.json}, {@code tokenizer.json},
 * {@code tokenizer_config.json}) into a tree of plain values, with jackson-core's streaming
 * tokenizer, under fixed limits and without recursion; {@link JsonObject} gives typed access.
 *
 * <p><b>The tree.</b> Objects are {@link LinkedHashMap}s in file order, arrays {@link ArrayList}s,
 * strings {@link String}s, booleans {@link Boolean}s; an integer is a {@link Long} when it fits
 * one, every other number a {@link Double}. A key written twice keeps its last value, as Python's
 * {@code json} does.
 *
 * <p><b>Null.</b> A {@code null} member of an object is the same as no member: it is not kept
 * (Hugging Face files write {@code "rope_scaling": null} for "not set"), so every accessor treats
 * it as absent, and a key whose last value is {@code null} is absent. A {@code null} element of
 * an array is kept, as Java {@code null}, and is an error wherever a value is expected.
 *
 * <p><b>Limits.</b> A document holds at most {@link #MAX_DOCUMENT_BYTES} bytes, nests at most
 * {@link #MAX_DEPTH} objects and arrays, and holds no string longer than
 * {@link #MAX_STRING_LENGTH} characters, no key longer than {@link #MAX_NAME_LENGTH} and no number
 * longer than {@link #MAX_NUMBER_LENGTH}; beyond a limit the read fails with a
 * {@link JsonException} that names the file and the limit. The document limit is sized for the
 * largest tokenizers (tens of MB, for vocabularies of a quarter of a million tokens); the others
 * are far beyond what these files hold, and bound what a hostile file can make the reader do.
 *
 * <p>Not part of the module's API: the package is not exported.
 */
public final class JsonDocument {
  /** The most bytes a document may have: 64 MiB. */
  public static final long MAX_DOCUMENT_BYTES = 64L << 20;
  /** The deepest nesting of objects and arrays, the root object counting as 1. */
  public static final int MAX_DEPTH = 64;
  /** The longest string value, in characters: 16 Mi. */
  public static final int MAX_STRING_LENGTH = 16 << 20;
  /** The longest key, in characters: 64 Ki. */
  public static final int MAX_NAME_LENGTH = 64 << 10;
  /** The longest number, in characters. */
  public static final int MAX_NUMBER_LENGTH = 64;

  private static final JsonFactory FACTORY = JsonFactory.builder()
      .streamReadConstraints(StreamReadConstraints.builder()
          .maxDocumentLength(MAX_DOCUMENT_BYTES)
          .maxNestingDepth(MAX_DEPTH)
          .maxStringLength(MAX_STRING_LENGTH)
          .maxNameLength(MAX_NAME_LENGTH)
          .maxNumberLength(MAX_NUMBER_LENGTH)
          .build())
      // Keys are read once (vocabularies hold 100k+ of them): a symbol table would only cost memory.
      .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
      .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
      .build();

  private JsonDocument() {}

  /**
   * Reads {@code file}, which holds one JSON object.
   *
   * @throws JsonException if the file is larger than {@link #MAX_DOCUMENT_BYTES}, is not JSON,
   *     breaks a limit, or holds something other than one object
   * @throws IOException if the file cannot be read
   */
  public static JsonObject read(Path file) throws IOException {
    requireSize(file, Files.size(file));   // before reading it in
    return parse(file, Files.readAllBytes(file));
  }

  private static void requireSize(Path file, long size) throws JsonException {
    if (size > MAX_DOCUMENT_BYTES) {
      throw new JsonException(file, size + " bytes, more than the " + (MAX_DOCUMENT_BYTES >> 20)
          + " MiB a JSON document may have");
    }
  }

  /**
   * Parses {@code bytes}, a JSON document that holds one object; {@code file} names it in errors.
   *
   * @throws JsonException if the bytes are not JSON, break a limit, or hold something other
   *     than one object
   */
  public static JsonObject parse(Path file, byte[] bytes) throws JsonException {
    requireSize(file, bytes.length);
    try (JsonParser parser = FACTORY.createParser(bytes)) {
      if (parser.nextToken() != JsonToken.START_OBJECT) {
        throw new JsonException(file, "not a JSON object");
      }
      Map<String, Object> root = new LinkedHashMap<>();
      Deque<Object> open = new ArrayDeque<>();
      open.push(root);
      String key = null;
      while (!open.isEmpty()) {
        JsonToken token = parser.nextToken();
        if (token == null) {
          throw new JsonException(file, "invalid JSON: the document ends inside a value");
        }
        Object value;
        switch (token) {
          case FIELD_NAME -> {
            key = parser.currentName();
            continue;
          }
          case END_OBJECT, END_ARRAY -> {
            open.pop();
            continue;
          }
          case START_OBJECT -> value = new LinkedHashMap<String, Object>();
          case START_ARRAY -> value = new ArrayList<>();
          case VALUE_STRING -> value = parser.getText();
          case VALUE_NUMBER_INT -> value = parser.getNumberType() == JsonParser.NumberType.BIG_INTEGER
              ? (Object) parser.getDoubleValue() : (Object) parser.getLongValue();
          case VALUE_NUMBER_FLOAT -> value = parser.getDoubleValue();
          case VALUE_TRUE -> value = Boolean.TRUE;
          case VALUE_FALSE -> value = Boolean.FALSE;
          case VALUE_NULL -> value = null;
          // A byte parser yields no other tokens (embedded objects come only from object codecs).
          default -> throw new JsonException(file, "invalid JSON: unexpected " + token);
        }
        add(open.peek(), key, value);
        if (token == JsonToken.START_OBJECT || token == JsonToken.START_ARRAY) {
          open.push(value);
        }
      }
      if (parser.nextToken() != null) {
        throw new JsonException(file, "content after the JSON object");
      }
      return new JsonObject(file, "", root);
    } catch (StreamConstraintsException e) {
      throw new JsonException(file, "over a limit of the JSON reader: " + e.getOriginalMessage(), e);
    } catch (JsonProcessingException e) {
      throw new JsonException(file, "invalid JSON: " + e.getOriginalMessage(), e);
    } catch (JsonException e) {
      throw e;
    } catch (IOException e) {
      // Parsing a byte array reads nothing from outside; jackson declares IOException anyway.
      throw new JsonException(file, "invalid JSON: " + e.getMessage(), e);
    }
  }

  @SuppressWarnings("unchecked")
  private static void add(Object container, String key, Object value) {
    if (container instanceof Map<?, ?> map) {
      if (value == null) {
        map.remove(key);
      } else {
        ((Map<String, Object>) map).put(key, value);
      }
    } else {
      ((List<Object>) container).add(value);
    }
  }
}
