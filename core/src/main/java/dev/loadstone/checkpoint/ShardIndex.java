package dev.loadstone.checkpoint;

import dev.loadstone.internal.JsonStrings;
import dev.loadstone.internal.JsonStrings.Escaping;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.TensorSpec;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * The Hugging Face shard index, {@code model.safetensors.index.json}: read with a streaming JSON
 * tokenizer under explicit limits, and written byte for byte as {@code transformers} writes it
 * ({@code json.dumps(index, indent=2, sort_keys=True) + "\n"}).
 */
final class ShardIndex {
  /** Far above any real index (a 100,000-tensor model needs about 10 MB). */
  static final long MAX_INDEX_LENGTH = 256L << 20;


  private static final JsonFactory JSON = JsonFactory.builder()
      .streamReadConstraints(StreamReadConstraints.builder()
          .maxNestingDepth(64)
          .maxNumberLength(64)
          .maxStringLength((int) MAX_INDEX_LENGTH)
          .maxNameLength((int) MAX_INDEX_LENGTH)
          .maxDocumentLength(MAX_INDEX_LENGTH)
          .build())
      .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
      .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
      .build();

  /**
   * A parsed index.
   *
   * @param weightMap tensor name to shard name, in the index's order
   * @param totalSize {@code metadata.total_size}, when present
   */
  record Parsed(Map<String, String> weightMap, OptionalLong totalSize) {}

  private ShardIndex() {}

  static Parsed read(Path index) throws IOException {
    long size = Files.size(index);
    if (size > MAX_INDEX_LENGTH) {
      throw new CheckpointException(Reason.INVALID_INDEX, index, null,
          "the index has " + size + " bytes, more than the " + MAX_INDEX_LENGTH + " accepted");
    }
    return parse(Files.readAllBytes(index), index);
  }

  static Parsed parse(byte[] bytes, Path index) throws CheckpointException {
    try (JsonParser json = JSON.createParser(bytes)) {
      if (json.nextToken() != JsonToken.START_OBJECT) {
        throw invalid(index, "the index is not a JSON object");
      }
      Map<String, String> weightMap = null;
      OptionalLong totalSize = OptionalLong.empty();
      boolean metadataSeen = false;
      JsonToken token;
      while ((token = json.nextToken()) == JsonToken.FIELD_NAME) {
        String field = json.currentName();
        if (json.nextToken() == null) {
          throw invalid(index, "the index ends early");
        }
        switch (field) {
          case "weight_map" -> {
            if (weightMap != null) {
              throw invalid(index, "weight_map appears twice");
            }
            weightMap = readWeightMap(json, index);
          }
          case "metadata" -> {
            if (metadataSeen) {
              throw invalid(index, "metadata appears twice");
            }
            metadataSeen = true;
            totalSize = readMetadata(json, index);
          }
          default -> json.skipChildren();
        }
      }
      if (token != JsonToken.END_OBJECT) {
        throw invalid(index, "unexpected " + token + " in the index object");
      }
      if (json.nextToken() != null) {
        throw invalid(index, "content follows the index object");
      }
      if (weightMap == null) {
        throw invalid(index, "the index has no weight_map");
      }
      return new Parsed(weightMap, totalSize);
    } catch (JsonProcessingException e) {
      throw new CheckpointException(Reason.INVALID_INDEX, index, null,
          "malformed JSON: " + e.getOriginalMessage(), e);
    } catch (CheckpointException e) {
      throw e;
    } catch (IOException e) {
      throw new CheckpointException(Reason.INVALID_INDEX, index, null,
          "malformed JSON: " + e.getMessage(), e);
    }
  }

  private static Map<String, String> readWeightMap(JsonParser json, Path index)
      throws IOException {
    if (json.currentToken() != JsonToken.START_OBJECT) {
      throw invalid(index, "weight_map is not a JSON object");
    }
    Map<String, String> weightMap = new LinkedHashMap<>();
    JsonToken token;
    while ((token = json.nextToken()) == JsonToken.FIELD_NAME) {
      String tensor = json.currentName();
      if (json.nextToken() != JsonToken.VALUE_STRING) {
        throw new CheckpointException(Reason.INVALID_INDEX, index, tensor,
            "its weight_map value is not a string");
      }
      if (weightMap.putIfAbsent(tensor, json.getText()) != null) {
        throw new CheckpointException(Reason.DUPLICATE_TENSOR, index, tensor,
            "the weight_map lists it twice");
      }
    }
    if (token != JsonToken.END_OBJECT) {
      throw invalid(index, "weight_map ends early");
    }
    return weightMap;
  }

  private static OptionalLong readMetadata(JsonParser json, Path index) throws IOException {
    JsonToken token = json.currentToken();
    if (token == JsonToken.VALUE_NULL) {
      return OptionalLong.empty();
    }
    if (token != JsonToken.START_OBJECT) {
      throw invalid(index, "metadata is not a JSON object");
    }
    OptionalLong totalSize = OptionalLong.empty();
    while ((token = json.nextToken()) == JsonToken.FIELD_NAME) {
      String field = json.currentName();
      JsonToken value = json.nextToken();
      if (field.equals("total_size")) {
        totalSize = OptionalLong.of(readSize(json, value, index));
      } else {
        json.skipChildren();
      }
    }
    if (token != JsonToken.END_OBJECT) {
      throw invalid(index, "metadata ends early");
    }
    return totalSize;
  }

  /** A non-negative integer; an integral float such as {@code 1.5e10} is accepted too. */
  private static long readSize(JsonParser json, JsonToken value, Path index) throws IOException {
    if (value == JsonToken.VALUE_NUMBER_INT || value == JsonToken.VALUE_NUMBER_FLOAT) {
      try {
        long size = new BigDecimal(json.getText()).longValueExact();
        if (size >= 0) {
          return size;
        }
      } catch (ArithmeticException | NumberFormatException e) {
        // reported below
      }
      throw invalid(index, "metadata.total_size is " + json.getText()
          + ", not a non-negative integer");
    }
    throw invalid(index, "metadata.total_size is not a number");
  }

  private static CheckpointException invalid(Path index, String detail) {
    return new CheckpointException(Reason.INVALID_INDEX, index, null, detail);
  }

  /**
   * The index as {@code transformers} writes it: {@code {"metadata": {"total_size": N},
   * "weight_map": {...}}} through Python's {@code json.dumps(index, indent=2, sort_keys=True)}
   * and a final newline, so keys in code point order and every character outside printable
   * ASCII escaped as a backslash, {@code u} and four lowercase hex digits.
   */
  static byte[] format(long totalSize, Map<String, String> weightMap) {
    StringBuilder out = new StringBuilder(64 + 80 * weightMap.size());
    out.append("{\n  \"metadata\": {\n    \"total_size\": ").append(totalSize)
        .append("\n  },\n  \"weight_map\": ");
    List<Map.Entry<String, String>> entries = new ArrayList<>(weightMap.entrySet());
    entries.sort(Map.Entry.comparingByKey(TensorSpec.nameOrder()));
    if (entries.isEmpty()) {
      out.append("{}");
    } else {
      out.append("{\n");
      for (int i = 0; i < entries.size(); i++) {
        out.append("    ");
        JsonStrings.append(out, entries.get(i).getKey(), Escaping.PYTHON_ASCII);
        out.append(": ");
        JsonStrings.append(out, entries.get(i).getValue(), Escaping.PYTHON_ASCII);
        out.append(i + 1 < entries.size() ? ",\n" : "\n");
      }
      out.append("  }");
    }
    out.append("\n}\n");
    return out.toString().getBytes(StandardCharsets.US_ASCII);
  }

}
