package dev.loadstone.safetensors;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Builds the exact bytes of small safetensors files: an 8-byte little-endian header length, the
 * header, the data. Nothing here validates, so tests can build broken files as easily as valid
 * ones.
 */
final class TestFiles {
  private TestFiles() {}

  /** A file whose header is {@code header} in UTF-8, followed by {@code data}. */
  static byte[] file(String header, byte[] data) {
    return file(header.getBytes(StandardCharsets.UTF_8), data);
  }

  /** A file whose header is {@code header} in UTF-8, followed by {@code dataLength} zero bytes. */
  static byte[] file(String header, int dataLength) {
    return file(header, new byte[dataLength]);
  }

  /** A file with these header bytes, whatever they are, and a length prefix that matches them. */
  static byte[] file(byte[] header, byte[] data) {
    return concat(lengthPrefix(header.length), header, data);
  }

  /** The 8-byte little-endian header length field holding {@code length}. */
  static byte[] lengthPrefix(long length) {
    return ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(length).array();
  }

  static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] part : parts) {
      out.writeBytes(part);
    }
    return out.toByteArray();
  }

  /**
   * A header written with single quotes for readability: every {@code '} becomes {@code "}.
   * {@code json("{'a':{'dtype':'U8','shape':[1],'data_offsets':[0,1]}}")}.
   */
  static String json(String singleQuoted) {
    return singleQuoted.replace('\'', '"');
  }

  /** One tensor entry's JSON object, with {@code shape} as JSON text such as {@code "[2,3]"}. */
  static String entry(String dtype, String shape, long begin, long end) {
    return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + ","
        + end + "]}";
  }

  /** {@code text} as a JSON string literal, quotes included, escaping what JSON requires. */
  static String quote(String text) {
    StringBuilder out = new StringBuilder("\"");
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        default -> {
          if (c < 0x20) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.append('"').toString();
  }

  /** Writes {@code bytes} to a new file in {@code dir} and returns its path. */
  static Path write(Path dir, byte[] bytes) throws IOException {
    Path path = Files.createTempFile(dir, "test-", ".safetensors");
    Files.write(path, bytes);
    return path;
  }
}
