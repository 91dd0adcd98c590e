package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InspectCommandTest {
  @TempDir Path dir;

  @Test
  void textListsTensorsInFileOrderWithSummaryAndMetadata() throws IOException {
    Path file = Cli.validFile(dir);
    Cli.Result result = Cli.run("inspect", file.toString());
    assertEquals(0, result.exit(), result.err());
    assertEquals("", result.err());
    List<String> lines = result.outLines();
    assertEquals(file.toString(), lines.get(0));
    assertEquals(List.of("NAME", "DTYPE", "SHAPE", "BYTES", "DATA", "OFFSETS"), words(lines.get(2)));
    // a's data comes first in the file, though the header lists b first
    assertEquals(List.of("a", "I8", "[2,", "2]", "4", "[0,", "4]"), words(lines.get(3)));
    assertEquals(List.of("b", "F32", "[2]", "8", "[4,", "12]"), words(lines.get(4)));
    assertEquals("", lines.get(5));
    assertEquals("2 tensors, 12 bytes of tensor data (12 B), header " + Cli.VALID_HEADER.length()
        + " bytes, file " + (8 + Cli.VALID_HEADER.length() + 12) + " bytes", lines.get(6));
    assertEquals("Metadata:", lines.get(8));
    assertEquals("  format = pt", lines.get(9));
    assertEquals("  note = say \"hi\"\u00e9", lines.get(10));
    assertEquals(11, lines.size());
  }

  @Test
  void textWithoutMetadataAndWithControlCharactersInNames() throws IOException {
    Path file = Cli.write(dir, "odd.safetensors", Cli.safetensors(
        "{\"line\\nbreak\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", new byte[] {7}));
    Cli.Result result = Cli.run("inspect", file.toString());
    assertEquals(0, result.exit(), result.err());
    assertTrue(result.out().contains("line\\nbreak  U8"), result.out());
    assertTrue(result.out().contains("1 tensor, 1 bytes"), result.out());
    assertTrue(result.out().endsWith("Metadata: none\n"), result.out());
  }

  @Test
  void jsonMatchesTheHeader() throws IOException {
    Path file = Cli.validFile(dir);
    Cli.Result result = Cli.run("inspect", file.toString(), "--json");
    assertEquals(0, result.exit(), result.err());
    assertEquals("", result.err());
    assertEquals(1, result.outLines().size(), "one line of JSON");
    @SuppressWarnings("unchecked")
    Map<String, Object> json = (Map<String, Object>) parse(result.out());
    assertEquals(List.of("metadata", "total_bytes", "tensors"), List.copyOf(json.keySet()));
    assertEquals(Map.of("format", "pt", "note", "say \"hi\"\u00e9"), json.get("metadata"));
    assertEquals(12L, json.get("total_bytes"));
    assertEquals(List.of(
        Map.of("name", "a", "dtype", "I8", "shape", List.of(2L, 2L), "data_offsets", List.of(0L, 4L),
            "file", "tiny.safetensors"),
        Map.of("name", "b", "dtype", "F32", "shape", List.of(2L), "data_offsets", List.of(4L, 12L),
            "file", "tiny.safetensors")),
        json.get("tensors"));
  }

  @Test
  void jsonEscapesNamesAndGivesNullMetadata() throws IOException {
    String name = "we\"ird\\ \u00fc\u4e2d\t\n";
    Path file = Cli.write(dir, "esc.safetensors", Cli.safetensors(
        "{\"we\\\"ird\\\\ \u00fc\u4e2d\\t\\n\":{\"dtype\":\"BF16\",\"shape\":[1, 0],\"data_offsets\":[0,0]}}",
        new byte[0]));
    Cli.Result result = Cli.run("inspect", "--json", file.toString());
    assertEquals(0, result.exit(), result.err());
    @SuppressWarnings("unchecked")
    Map<String, Object> json = (Map<String, Object>) parse(result.out());
    assertTrue(json.containsKey("metadata"));
    assertNull(json.get("metadata"));
    assertEquals(0L, json.get("total_bytes"));
    assertEquals(List.of(Map.of("name", name, "dtype", "BF16", "shape", List.of(1L, 0L),
        "data_offsets", List.of(0L, 0L), "file", "esc.safetensors")), json.get("tensors"));
  }

  @Test
  void jsonOfTheExample() throws IOException {
    Path example = Cli.repoRoot().resolve(TourCommand.EXAMPLE);
    Cli.Result result = Cli.run("inspect", example.toString(), "--json");
    assertEquals(0, result.exit(), result.err());
    @SuppressWarnings("unchecked")
    Map<String, Object> json = (Map<String, Object>) parse(result.out());
    assertEquals(Map.of("format", "pt"), json.get("metadata"));
    assertEquals(8_968_704L, json.get("total_bytes"));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> tensors = (List<Map<String, Object>>) json.get("tensors");
    assertEquals(56, tensors.size());
    assertEquals(Map.of("name", "model.embed_tokens.weight", "dtype", "BF16", "shape", List.of(512L, 256L),
        "data_offsets", List.of(0L, 262_144L), "file", "model.safetensors"), tensors.get(0));
    assertEquals("model.norm.weight", tensors.get(55).get("name"));
  }

  @Test
  void invalidFileExitsOneWithOneLine() throws IOException {
    Path file = Cli.write(dir, "bad.safetensors", Cli.safetensors(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[5]));
    for (String[] args : List.of(new String[] {"inspect", file.toString()},
        new String[] {"inspect", "--json", file.toString()})) {
      Cli.Result result = Cli.run(args);
      assertEquals(1, result.exit());
      assertEquals("", result.out());
      assertEquals(1, result.errLines().size(), result.err());
      assertTrue(result.err().startsWith("loadstone inspect: invalid file: " + file + ": TRAILING_BYTES"), result.err());
    }
  }

  @Test
  void usageErrors() {
    assertEquals(2, Cli.run("inspect").exit());
    assertEquals(2, Cli.run("inspect", "a", "b").exit());
    Cli.Result unknown = Cli.run("inspect", "x", "--yaml");
    assertEquals(2, unknown.exit());
    assertEquals("loadstone inspect: unknown option '--yaml' (run 'loadstone help inspect' for usage)\n", unknown.err());
  }

  private static List<String> words(String line) {
    return List.of(line.trim().split("\\s+"));
  }

  /** Parses one JSON value into maps, lists, strings, longs and nulls; fails on trailing content. */
  static Object parse(String text) throws IOException {
    try (JsonParser parser = new JsonFactory().createParser(text)) {
      Object value = read(parser, parser.nextToken());
      assertNull(parser.nextToken(), "one JSON value");
      return value;
    }
  }

  private static Object read(JsonParser parser, JsonToken token) throws IOException {
    switch (token) {
      case START_OBJECT -> {
        Map<String, Object> map = new LinkedHashMap<>();
        while (parser.nextToken() == JsonToken.FIELD_NAME) {
          String name = parser.currentName();
          map.put(name, read(parser, parser.nextToken()));
        }
        return map;
      }
      case START_ARRAY -> {
        List<Object> list = new ArrayList<>();
        JsonToken next;
        while ((next = parser.nextToken()) != JsonToken.END_ARRAY) {
          list.add(read(parser, next));
        }
        return list;
      }
      case VALUE_STRING -> {
        return parser.getText();
      }
      case VALUE_NUMBER_INT -> {
        return parser.getLongValue();
      }
      case VALUE_NULL -> {
        return null;
      }
      default -> throw new AssertionError("unexpected " + token);
    }
  }
}
