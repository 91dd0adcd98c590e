package dev.loadstone.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses and validates a safetensors header with a streaming JSON tokenizer under explicit
 * limits, so that no input costs more than linear time and memory in its length.
 *
 * <p>The rules are those of the reference implementation ({@code safetensors/src/tensor.rs}),
 * stricter where the format's text is: duplicate tensor names are rejected, not overwritten.
 */
final class HeaderParser {
  /** The reference implementation's cap on the header length. */
  static final long MAX_HEADER_LENGTH = 100_000_000L;

  static final String METADATA_KEY = "__metadata__";

  /** Header entries never nest deeper than 3; unknown fields may carry a little structure. */
  private static final int MAX_NESTING_DEPTH = 64;
  /** 2^64 has 20 digits; a longer number cannot be a valid dimension or offset. */
  private static final int MAX_NUMBER_LENGTH = 64;

  private static final JsonFactory JSON = JsonFactory.builder()
      .streamReadConstraints(StreamReadConstraints.builder()
          .maxNestingDepth(MAX_NESTING_DEPTH)
          .maxNumberLength(MAX_NUMBER_LENGTH)
          .maxStringLength((int) MAX_HEADER_LENGTH)
          .maxNameLength((int) MAX_HEADER_LENGTH)
          .maxDocumentLength(MAX_HEADER_LENGTH)
          .maxTokenCount(MAX_HEADER_LENGTH)
          .build())
      // Names are unique per header: interning or canonicalizing them only costs memory and
      // exposes the symbol table to crafted collisions.
      .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
      .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
      .build();

  /** The shortest entry: {@code "":{"dtype":"F4","shape":[],"data_offsets":[0,0]}}. */
  private static final int MIN_ENTRY_LENGTH = 49;

  /** The dtypes, once: {@code DType.values()} copies its array on every call. */
  private static final DType[] DTYPES = DType.values();

  /** File order: by first offset, then by end (empty tensors share their first offset). */
  private static final Comparator<TensorEntry> FILE_ORDER = (a, b) -> {
    int byBegin = Long.compare(a.begin(), b.begin());
    return byBegin != 0 ? byBegin : Long.compare(a.end(), b.end());
  };

  private final Path file;
  /** The numbers of the array {@link #readIntegers} read last; reused from entry to entry. */
  private long[] numbers = new long[4];

  private HeaderParser(Path file) {
    this.file = file;
  }

  /**
   * Parses {@code length} header bytes and validates every entry against a data section of
   * {@code dataLength} bytes.
   *
   * @param file the file, for error messages; may be {@code null}
   */
  static Header parse(byte[] bytes, int offset, int length, long dataLength, Path file)
      throws SafeTensorsException {
    HeaderParser parser = new HeaderParser(file);
    parser.requireUtf8(bytes, offset, length);
    Header header = parser.parseJson(bytes, offset, length);
    parser.validateLayout(header.tensors(), dataLength);
    return header;
  }

  /** {@link #requireUtf8} alone, for benchmarks. */
  static void checkText(byte[] bytes, int offset, int length, Path file) throws SafeTensorsException {
    new HeaderParser(file).requireUtf8(bytes, offset, length);
  }

  /**
   * Checks that the header is UTF-8 and that the JSON parser will read it as UTF-8. Decodes in
   * small chunks: a 100 MB header must not cost a 200 MB {@code char} copy just to be checked.
   */
  private void requireUtf8(byte[] bytes, int offset, int length) throws SafeTensorsException {
    CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT);
    ByteBuffer in = ByteBuffer.wrap(bytes, offset, length);
    CharBuffer out = CharBuffer.allocate(8192);
    CoderResult result;
    do {
      out.clear();
      result = decoder.decode(in, out, true);
      if (result.isError()) {
        throw fail(Reason.HEADER_NOT_UTF8, null, "invalid UTF-8 at header byte "
            + (in.position() - offset) + ": " + result);
      }
    } while (result.isOverflow());
    out.clear();
    if (decoder.flush(out).isError()) {
      throw fail(Reason.HEADER_NOT_UTF8, null, "the header ends inside a UTF-8 sequence");
    }
    if (length >= 3 && (bytes[offset] & 0xFF) == 0xEF && (bytes[offset + 1] & 0xFF) == 0xBB
        && (bytes[offset + 2] & 0xFF) == 0xBF) {
      throw fail(Reason.HEADER_INVALID_JSON, null, "the header starts with a byte order mark");
    }
    // Jackson guesses the encoding of a byte array: a NUL among the first four bytes makes it
    // read UTF-16 or UTF-32, so that the bytes 7B 00 7D 00 would pass as {}. JSON text never
    // holds a raw NUL, so such a header is malformed in any case.
    for (int i = 0; i < Math.min(length, 4); i++) {
      if (bytes[offset + i] == 0) {
        throw fail(Reason.HEADER_INVALID_JSON, null, "NUL byte at header byte " + i);
      }
    }
  }

  private Header parseJson(byte[] bytes, int offset, int length)
      throws SafeTensorsException {
    try (JsonParser json = JSON.createParser(bytes, offset, length)) {
      JsonToken first = json.nextToken();
      if (first == null) {
        throw fail(Reason.HEADER_INVALID_JSON, null, "the header holds no JSON value");
      }
      if (first != JsonToken.START_OBJECT) {
        throw fail(Reason.HEADER_NOT_OBJECT, null, "the header is a JSON " + describe(first));
      }
      Map<String, String> metadata = null;
      boolean metadataSeen = false;
      List<TensorEntry> tensors = new ArrayList<>();
      // Sized once for the most entries the header can hold: growing it step by step rehashes
      // every name again, a large part of the parse for 100,000 tensors.
      HashMap<String, Boolean> names = HashMap.newHashMap(length / MIN_ENTRY_LENGTH);
      JsonToken token;
      while ((token = json.nextToken()) == JsonToken.FIELD_NAME) {
        String name = json.currentName();
        json.nextToken();
        if (name.equals(METADATA_KEY)) {
          if (metadataSeen) {
            throw fail(Reason.INVALID_METADATA, null, "__metadata__ appears twice");
          }
          metadataSeen = true;
          metadata = readMetadata(json);
        } else {
          if (names.putIfAbsent(name, Boolean.TRUE) != null) {
            throw fail(Reason.DUPLICATE_TENSOR, name, "the name appears more than once");
          }
          tensors.add(readEntry(json, name));
        }
      }
      if (token != JsonToken.END_OBJECT) {
        throw fail(Reason.HEADER_INVALID_JSON, null, "unexpected " + describe(token));
      }
      JsonToken after = json.nextToken();
      if (after != null) {
        throw fail(Reason.HEADER_INVALID_JSON, null, "content after the JSON object: " + describe(after));
      }
      return new Header(metadata, tensors);
    } catch (SafeTensorsException e) {
      // Thrown above with its own reason; without this clause, the IOException clause below
      // would relabel every one of them HEADER_INVALID_JSON.
      throw e;
    } catch (StreamConstraintsException e) {
      throw fail(Reason.HEADER_LIMIT_EXCEEDED, null, e.getOriginalMessage(), e);
    } catch (JsonProcessingException e) {
      throw fail(Reason.HEADER_INVALID_JSON, null, e.getOriginalMessage(), e);
    } catch (IOException e) {
      // Parsing a byte array does no I/O; anything here is a malformed document.
      throw fail(Reason.HEADER_INVALID_JSON, null, String.valueOf(e.getMessage()), e);
    }
  }

  private Map<String, String> readMetadata(JsonParser json) throws IOException {
    JsonToken token = json.currentToken();
    if (token == JsonToken.VALUE_NULL) {
      return null;
    }
    if (token != JsonToken.START_OBJECT) {
      throw fail(Reason.INVALID_METADATA, null, "__metadata__ is a JSON " + describe(token));
    }
    Map<String, String> metadata = new LinkedHashMap<>();
    while (json.nextToken() == JsonToken.FIELD_NAME) {
      String key = json.currentName();
      JsonToken value = json.nextToken();
      if (value != JsonToken.VALUE_STRING) {
        throw fail(Reason.INVALID_METADATA, null,
            "__metadata__ value of '" + key + "' is a JSON " + describe(value));
      }
      if (metadata.putIfAbsent(key, json.getText()) != null) {
        throw fail(Reason.INVALID_METADATA, null, "__metadata__ key '" + key + "' appears twice");
      }
    }
    return Collections.unmodifiableMap(metadata);
  }

  private TensorEntry readEntry(JsonParser json, String name) throws IOException {
    JsonToken token = json.currentToken();
    if (token != JsonToken.START_OBJECT) {
      throw fail(Reason.INVALID_TENSOR_ENTRY, name, "the entry is a JSON " + describe(token));
    }
    DType dtype = null;
    long[] shape = null;
    boolean offsetsSeen = false;
    long begin = 0;
    long end = 0;
    while (json.nextToken() == JsonToken.FIELD_NAME) {
      String field = json.currentName();
      JsonToken value = json.nextToken();
      switch (field) {
        case "dtype" -> {
          requireFirst(dtype != null, field, name);
          if (value != JsonToken.VALUE_STRING) {
            throw fail(Reason.INVALID_TENSOR_ENTRY, name, "dtype is a JSON " + describe(value));
          }
          dtype = dtypeOf(json);
          if (dtype == null) {
            throw fail(Reason.UNKNOWN_DTYPE, name, "dtype \"" + abbreviate(json.getText())
                + "\" is not one of " + Arrays.toString(DTYPES));
          }
        }
        case "shape" -> {
          requireFirst(shape != null, field, name);
          int count = readIntegers(json, name, field, Reason.INVALID_DIMENSION);
          shape = Arrays.copyOf(numbers, count);
        }
        case "data_offsets" -> {
          requireFirst(offsetsSeen, field, name);
          int count = readIntegers(json, name, field, Reason.INVALID_OFFSETS);
          if (count != 2) {
            throw fail(Reason.INVALID_OFFSETS, name,
                "data_offsets has " + count + " numbers, not 2");
          }
          offsetsSeen = true;
          begin = numbers[0];
          end = numbers[1];
        }
        default -> json.skipChildren();
      }
    }
    if (dtype == null || shape == null || !offsetsSeen) {
      String missing = dtype == null ? "dtype" : shape == null ? "shape" : "data_offsets";
      throw fail(Reason.MISSING_FIELD, name, "the entry has no " + missing);
    }
    return validateEntry(name, dtype, shape, begin, end);
  }

  /**
   * The dtype the current string token names exactly, or {@code null}: as
   * {@code DType.parse(json.getText())}, without making a String per entry.
   */
  private static DType dtypeOf(JsonParser json) throws IOException {
    char[] text = json.getTextCharacters();
    int offset = json.getTextOffset();
    int length = json.getTextLength();
    for (DType dtype : DTYPES) {
      String candidate = dtype.name();
      if (candidate.length() == length && matches(candidate, text, offset)) {
        return dtype;
      }
    }
    return null;
  }

  private static boolean matches(String candidate, char[] text, int offset) {
    for (int i = 0; i < candidate.length(); i++) {
      if (candidate.charAt(i) != text[offset + i]) {
        return false;
      }
    }
    return true;
  }

  private void requireFirst(boolean seen, String field, String name) throws SafeTensorsException {
    if (seen) {
      throw fail(Reason.DUPLICATE_FIELD, name, field + " appears twice");
    }
  }

  /**
   * Reads an array of non-negative integers that each fit in a signed 64-bit long into
   * {@link #numbers}, and returns how many there are.
   */
  private int readIntegers(JsonParser json, String name, String field, Reason invalid)
      throws IOException {
    if (json.currentToken() != JsonToken.START_ARRAY) {
      throw fail(Reason.INVALID_TENSOR_ENTRY, name,
          field + " is a JSON " + describe(json.currentToken()));
    }
    long[] values = numbers;
    int count = 0;
    JsonToken token;
    while ((token = json.nextToken()) != JsonToken.END_ARRAY) {
      if (token != JsonToken.VALUE_NUMBER_INT) {
        String what = token == JsonToken.VALUE_NUMBER_FLOAT ? "a fractional number " + json.getText()
            : "a JSON " + describe(token);
        throw fail(invalid, name, field + " holds " + what);
      }
      if (json.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
        String text = json.getText();
        throw fail(invalid, name, field + " holds " + text
            + (text.startsWith("-") ? ", a negative number" : ", too large for 63 bits"));
      }
      long value = json.getLongValue();
      if (value < 0) {
        throw fail(invalid, name, field + " holds the negative number " + value);
      }
      if (count == values.length) {
        values = Arrays.copyOf(values, count * 2);
        numbers = values;
      }
      values[count++] = value;
    }
    return count;
  }

  private TensorEntry validateEntry(String name, DType dtype, long[] shape, long begin, long end)
      throws SafeTensorsException {
    // Every product of dimensions must fit, not only the full one, whatever the order of the
    // dimensions and even when one of them is 0: views compute strides and slice sizes from
    // partial products. So multiply the non-zero dimensions, and the bits per element.
    long bits = dtype.bits();
    long nonZeroBits = bits;
    boolean empty = false;
    for (long dim : shape) {
      if (dim == 0) {
        empty = true;
        continue;
      }
      try {
        nonZeroBits = Math.multiplyExact(nonZeroBits, dim);
      } catch (ArithmeticException e) {
        throw fail(Reason.SIZE_OVERFLOW, name,
            "shape " + Arrays.toString(shape) + " of " + dtype + " overflows 64 bits");
      }
    }
    long elements = empty ? 0 : nonZeroBits / bits;
    long totalBits = elements * bits;
    if (totalBits % 8 != 0) {
      throw fail(Reason.MISALIGNED_BITS, name, elements + " elements of " + dtype + " are "
          + totalBits + " bits, not a whole number of bytes");
    }
    if (end < begin) {
      throw fail(Reason.END_BEFORE_BEGIN, name, "data_offsets [" + begin + ", " + end + "]");
    }
    if (end - begin != totalBits / 8) {
      throw fail(Reason.SIZE_MISMATCH, name, "data_offsets [" + begin + ", " + end + "] span "
          + (end - begin) + " bytes, but shape " + Arrays.toString(shape) + " of " + dtype
          + " needs " + totalBits / 8);
    }
    return new TensorEntry(name, dtype, shape, begin, end);
  }

  /** Sorts the entries into file order and checks they tile the data section exactly. */
  private void validateLayout(List<TensorEntry> tensors, long dataLength) throws SafeTensorsException {
    tensors.sort(FILE_ORDER);
    long position = 0;
    boolean first = true;
    for (TensorEntry entry : tensors) {
      if (entry.begin() != position) {
        // Not "position == 0": empty tensors at offset 0 may precede a gap.
        if (first) {
          throw fail(Reason.FIRST_OFFSET_NOT_ZERO, entry.name(),
              "the first tensor's data starts at " + entry.begin());
        }
        Reason reason = entry.begin() > position ? Reason.OFFSET_GAP : Reason.OFFSET_OVERLAP;
        throw fail(reason, entry.name(), "data starts at " + entry.begin()
            + ", but the previous tensor ends at " + position);
      }
      position = entry.end();
      first = false;
    }
    if (position > dataLength) {
      String last = tensors.getLast().name();
      throw fail(Reason.DATA_TRUNCATED, last, "the tensors need " + position
          + " bytes of data, but the file has " + dataLength + " after the header");
    }
    if (position < dataLength) {
      throw fail(Reason.TRAILING_BYTES, null, (dataLength - position)
          + " bytes follow the last tensor's data (the tensors cover " + position + " of "
          + dataLength + ")");
    }
  }

  private SafeTensorsException fail(Reason reason, String tensor, String detail) {
    return new SafeTensorsException(reason, file, tensor, detail);
  }

  private SafeTensorsException fail(Reason reason, String tensor, String detail, Throwable cause) {
    return new SafeTensorsException(reason, file, tensor, detail, cause);
  }

  private static String describe(JsonToken token) {
    if (token == null) {
      return "end of input";
    }
    return switch (token) {
      case START_OBJECT -> "object";
      case START_ARRAY -> "array";
      case VALUE_STRING -> "string";
      case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> "number";
      case VALUE_TRUE, VALUE_FALSE -> "boolean";
      case VALUE_NULL -> "null";
      default -> token.asString() == null ? token.name() : token.asString();
    };
  }

  private static String abbreviate(String text) {
    return text.length() <= 40 ? text : text.substring(0, 40) + "...";
  }
}
