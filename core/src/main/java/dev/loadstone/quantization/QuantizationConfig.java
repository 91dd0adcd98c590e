package dev.loadstone.quantization;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * What a model's {@code config.json} says about quantization: the scheme of its
 * {@code quantization_config} (if any) and the dtype of the unquantized model
 * ({@code torch_dtype}, or {@code dtype} as newer transformers write it).
 *
 * @param scheme the scheme, empty when there is no {@code quantization_config}
 * @param modelDType the unquantized model's dtype, when the config names a float dtype
 */
record QuantizationConfig(Optional<Scheme> scheme, Optional<DType> modelDType) {
  /** Far above any real model config (a few KB). */
  static final long MAX_LENGTH = 16L << 20;

  static final QuantizationConfig NONE = new QuantizationConfig(Optional.empty(), Optional.empty());

  private static final JsonFactory JSON = JsonFactory.builder()
      .streamReadConstraints(StreamReadConstraints.builder()
          .maxNestingDepth(64)
          .maxNumberLength(64)
          .maxStringLength((int) MAX_LENGTH)
          .maxNameLength(1 << 16)
          .maxDocumentLength(MAX_LENGTH)
          .build())
      .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
      .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
      .build();

  /**
   * Reads {@code file}.
   *
   * @throws CheckpointException if it is not a JSON object, or its quantization_config is
   *     malformed ({@code INVALID_QUANTIZATION_CONFIG}) or names a scheme Loadstone does not
   *     dequantize ({@code UNSUPPORTED_QUANTIZATION})
   */
  static QuantizationConfig read(Path file) throws IOException {
    long size = Files.size(file);
    if (size > MAX_LENGTH) {
      throw new CheckpointException(Reason.INVALID_QUANTIZATION_CONFIG, file, null,
          "the file has " + size + " bytes, more than the " + MAX_LENGTH + " accepted");
    }
    ConfigSection root = parse(Files.readAllBytes(file), file);
    Optional<DType> modelDType = modelDType(root);
    Optional<ConfigSection> quantization = root.optionalObject("quantization_config");
    if (quantization.isEmpty()) {
      return new QuantizationConfig(Optional.empty(), modelDType);
    }
    return new QuantizationConfig(Optional.of(scheme(quantization.get())), modelDType);
  }

  private static Scheme scheme(ConfigSection config) throws CheckpointException {
    String method = config.string("quant_method");
    return switch (method.toLowerCase(Locale.ROOT)) {
      case "fp8" -> Fp8BlockScheme.from(config);
      case "compressed-tensors" -> CompressedTensorsScheme.from(config);
      case "gptq" -> GptqScheme.from(config);
      case "awq" -> AwqScheme.from(config);
      default -> throw config.unsupported("quant_method '" + method + "' is not a scheme Loadstone dequantizes");
    };
  }

  private static Optional<DType> modelDType(ConfigSection root) throws CheckpointException {
    Optional<String> name = root.optionalString("torch_dtype");
    if (name.isEmpty()) {
      name = root.optionalString("dtype");
    }
    return name.flatMap(n -> switch (n) {
      case "bfloat16" -> Optional.of(DType.BF16);
      case "float16", "half" -> Optional.of(DType.F16);
      case "float32", "float" -> Optional.of(DType.F32);
      default -> Optional.empty();   // "auto", or a dtype that is no variable dtype
    });
  }

  /** Parses a JSON object into plain maps and lists (nesting is bounded by the tokenizer). */
  static ConfigSection parse(byte[] bytes, Path file) throws CheckpointException {
    try (JsonParser json = JSON.createParser(bytes)) {
      if (json.nextToken() != JsonToken.START_OBJECT) {
        throw new CheckpointException(Reason.INVALID_QUANTIZATION_CONFIG, file, null, "the file is not a JSON object");
      }
      Object value = value(json, file);
      if (json.nextToken() != null) {
        throw new CheckpointException(Reason.INVALID_QUANTIZATION_CONFIG, file, null, "content follows the JSON object");
      }
      @SuppressWarnings("unchecked")
      Map<String, Object> members = (Map<String, Object>) value;
      return new ConfigSection(members, "config", file);
    } catch (JsonProcessingException e) {
      throw new CheckpointException(Reason.INVALID_QUANTIZATION_CONFIG, file, null, "malformed JSON: " + e.getOriginalMessage());
    } catch (CheckpointException e) {
      throw e;
    } catch (IOException e) {
      throw new CheckpointException(Reason.INVALID_QUANTIZATION_CONFIG, file, null, "malformed JSON: " + e.getMessage());
    }
  }

  /** The value that starts at the current token. */
  private static Object value(JsonParser json, Path file) throws IOException {
    JsonToken token = json.currentToken();
    if (token == null) {
      throw new CheckpointException(Reason.INVALID_QUANTIZATION_CONFIG, file, null, "the JSON ends early");
    }
    return switch (token) {
      case START_OBJECT -> {
        Map<String, Object> members = new LinkedHashMap<>();
        while (json.nextToken() == JsonToken.FIELD_NAME) {
          String name = json.currentName();
          json.nextToken();
          members.put(name, value(json, file));   // a repeated name: the last wins, as in Python
        }
        if (json.currentToken() != JsonToken.END_OBJECT) {
          throw new CheckpointException(Reason.INVALID_QUANTIZATION_CONFIG, file, null, "the JSON ends early");
        }
        yield members;
      }
      case START_ARRAY -> {
        List<Object> items = new ArrayList<>();
        while (json.nextToken() != JsonToken.END_ARRAY) {
          items.add(value(json, file));
        }
        yield items;
      }
      case VALUE_STRING -> json.getText();
      case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> json.getDecimalValue();
      case VALUE_TRUE -> Boolean.TRUE;
      case VALUE_FALSE -> Boolean.FALSE;
      case VALUE_NULL -> null;
      default -> throw new CheckpointException(Reason.INVALID_QUANTIZATION_CONFIG, file, null, "unexpected " + token);
    };
  }
}
