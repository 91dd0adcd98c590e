package dev.loadstone.llama.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The one JSON reader of the module: the tree it builds, its null handling, and its limits. */
class JsonDocumentTest {
  private static final Path FILE = Path.of("some.json");

  @TempDir Path dir;

  private static JsonObject parse(String json) throws JsonException {
    return JsonDocument.parse(FILE, json.getBytes(StandardCharsets.UTF_8));
  }

  private static JsonException failure(String json) {
    JsonException e = assertThrows(JsonException.class, () -> parse(json));
    assertEquals(FILE, e.file());
    assertEquals(FILE + ": " + e.reason(), e.getMessage());
    return e;
  }

  @Test
  void readsObjectsInFileOrderWithIntegersAsLongsAndTheLastOfARepeatedKey() throws JsonException {
    JsonObject root = parse("""
        {"b": 1, "a": [1.5, "x", true, {"c": 2}], "big": 123456789012345678901234, "b": 7}""");
    assertEquals(List.of("b", "a", "big"), List.copyOf(root.map().keySet()));
    assertEquals(7L, root.get("b"));
    assertEquals(List.of(1.5, "x", true, java.util.Map.of("c", 2L)), root.array("a"));
    assertEquals(1.2345678901234568e23, root.get("big"));
  }

  @Test
  void aNullMemberIsAbsentToEveryAccessorAndANullElementIsKept() throws JsonException {
    JsonObject root = parse("""
        {"s": null, "b": null, "i": null, "n": null, "o": null, "a": null,
         "list": [1, null], "later": 5, "later": null}""");
    for (String key : List.of("s", "b", "i", "n", "o", "a", "later")) {
      assertFalse(root.has(key), key);
      assertNull(root.get(key), key);
    }
    assertEquals(List.of("list"), List.copyOf(root.map().keySet()));
    assertNull(root.optString("s"));
    assertTrue(root.bool("b", true));
    assertEquals(OptionalInt.empty(), root.optInteger("i"));
    assertEquals(3, root.integer("i", 3));
    assertEquals(0.5, root.number("n", 0.5));
    assertNull(root.optObject("o"));
    // Required accessors call it missing, exactly as for a key that is not there.
    assertEquals(FILE + ": s: missing string", assertThrows(JsonException.class, () -> root.string("s")).getMessage());
    assertEquals(FILE + ": i: missing integer", assertThrows(JsonException.class, () -> root.integer("i")).getMessage());
    assertEquals(FILE + ": n: missing number", assertThrows(JsonException.class, () -> root.number("n")).getMessage());
    assertEquals(FILE + ": o: missing object", assertThrows(JsonException.class, () -> root.object("o")).getMessage());
    assertEquals(FILE + ": a: missing array", assertThrows(JsonException.class, () -> root.array("a")).getMessage());
    // In an array, null stays an element, and is refused where a value is wanted.
    assertEquals(Arrays.asList(1L, null), root.array("list"));
    JsonException e = assertThrows(JsonException.class, () -> root.toInt(root.array("list").get(1), "list[1]"));
    assertTrue(e.getMessage().endsWith("list[1]: expected an integer from 0 to 2147483647, found null"), e.getMessage());
    assertTrue(assertThrows(JsonException.class, () -> root.objects("list")).getMessage()
        .endsWith("list[0]: expected an object, found the number 1"));
  }

  @Test
  void typedAccessNamesTheFileAndThePath() throws JsonException {
    JsonObject root = parse("""
        {"model": {"vocab": {"a": -1, "b": 2.0, "c": 2.5}, "name": 3, "flag": "yes", "n": "x"}}""");
    JsonObject model = root.object("model");
    assertEquals("model", model.path());
    assertEquals(2, model.object("vocab").integer("b"));   // a whole number written as 2.0
    assertEquals(FILE + ": model.vocab.a: expected an integer from 0 to 2147483647, found the number -1",
        assertThrows(JsonException.class, () -> model.object("vocab").integer("a")).getMessage());
    assertTrue(assertThrows(JsonException.class, () -> model.object("vocab").integer("c")).getMessage()
        .endsWith("model.vocab.c: expected an integer from 0 to 2147483647, found the number 2.5"));
    assertEquals(FILE + ": model.name: expected a string, found the number 3",
        assertThrows(JsonException.class, () -> model.string("name")).getMessage());
    assertEquals(FILE + ": model.flag: expected true or false, found a string",
        assertThrows(JsonException.class, () -> model.bool("flag", false)).getMessage());
    assertEquals(FILE + ": model.n: expected a finite number, found a string",
        assertThrows(JsonException.class, () -> model.number("n")).getMessage());
    assertEquals(FILE + ": model.vocab: expected an array, found an object",
        assertThrows(JsonException.class, () -> model.array("vocab")).getMessage());
    assertEquals(FILE + ": model: wrong", model.error(null, "wrong").getMessage());
  }

  @Test
  void onlyOneObjectIsADocument() {
    assertEquals("not a JSON object", failure("[1, 2]").reason());
    assertEquals("not a JSON object", failure("").reason());
    assertEquals("content after the JSON object", failure("{} {}").reason());
    assertTrue(failure("{\"a\": ").reason().startsWith("invalid JSON: "));
    assertTrue(failure("{\"a\": 1,}").reason().startsWith("invalid JSON: "));
  }

  @Test
  void nestingBeyondTheDepthLimitIsRefused() throws JsonException {
    // The root object is level 1: MAX_DEPTH levels in all are accepted, one more is not.
    int arrays = JsonDocument.MAX_DEPTH - 1;
    JsonObject deepest = parse("{\"a\": " + "[".repeat(arrays) + "]".repeat(arrays) + "}");
    List<?> level = deepest.array("a");
    for (int i = 1; i < arrays; i++) {
      level = (List<?>) level.get(0);
    }
    assertTrue(level.isEmpty());
    JsonException e = failure("{\"a\": " + "[".repeat(arrays + 1) + "]".repeat(arrays + 1) + "}");
    assertTrue(e.reason().startsWith("over a limit of the JSON reader: "), e.reason());
    assertTrue(e.reason().contains("nesting depth"), e.reason());
    assertTrue(e.reason().contains("(" + JsonDocument.MAX_DEPTH), e.reason());
  }

  @Test
  void numbersAndStringsBeyondTheirLengthLimitsAreRefused() throws JsonException {
    String longest = "1".repeat(JsonDocument.MAX_NUMBER_LENGTH);
    assertEquals(Double.parseDouble(longest), parse("{\"n\": " + longest + "}").get("n"));
    JsonException number = failure("{\"n\": " + longest + "1}");
    assertTrue(number.reason().startsWith("over a limit of the JSON reader: "), number.reason());
    assertTrue(number.reason().contains("Number value length"), number.reason());

    String text = "x".repeat(JsonDocument.MAX_STRING_LENGTH);
    assertEquals(text.length(), parse("{\"s\": \"" + text + "\"}").string("s").length());
    JsonException string = failure("{\"s\": \"" + text + "x\"}");
    assertTrue(string.reason().contains("String value length"), string.reason());

    String name = "k".repeat(JsonDocument.MAX_NAME_LENGTH + 1);
    JsonException key = failure("{\"" + name + "\": 1}");
    assertTrue(key.reason().contains("Name length"), key.reason());
  }

  @Test
  void aDocumentOverTheSizeLimitIsRefusedBeforeItIsRead() throws IOException {
    Path file = dir.resolve("huge.json");
    try (RandomAccessFile sparse = new RandomAccessFile(file.toFile(), "rw")) {
      sparse.setLength(JsonDocument.MAX_DOCUMENT_BYTES + 1);   // a hole: no disk, no reading
    }
    JsonException e = assertThrows(JsonException.class, () -> JsonDocument.read(file));
    assertEquals(file + ": " + (JsonDocument.MAX_DOCUMENT_BYTES + 1)
        + " bytes, more than the 64 MiB a JSON document may have", e.getMessage());

    byte[] bytes = new byte[(int) JsonDocument.MAX_DOCUMENT_BYTES + 1];
    Arrays.fill(bytes, (byte) ' ');
    bytes[0] = '{';
    bytes[1] = '}';
    assertTrue(assertThrows(JsonException.class, () -> JsonDocument.parse(FILE, bytes)).reason()
        .contains("more than the 64 MiB"));
    Files.writeString(file, "{\"a\": 1}");
    assertEquals(1, JsonDocument.read(file).integer("a"));
  }
}
