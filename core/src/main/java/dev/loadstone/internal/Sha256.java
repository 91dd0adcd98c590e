package dev.loadstone.internal;

import java.lang.foreign.MemorySegment;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * SHA-256 of bytes anywhere in memory, at the speed of the JDK's own digest on a heap array:
 * {@link MessageDigest} takes heap arrays at full speed, while a direct or mapped buffer is fed
 * to it through a 4 KiB temporary array; here native memory (a mapping, a staging buffer, a
 * variable) is copied into one reused heap buffer of {@value #BUFFER_BYTES} bytes (inside the
 * core's L2 cache) and hashed from there, and heap memory is hashed in place. One instance per
 * thread (it is not thread-safe).
 */
public final class Sha256 {
  /** The heap buffer native bytes pass through. */
  static final int BUFFER_BYTES = 64 << 10;
  private static final Pattern HEX = Pattern.compile("[0-9a-f]{64}");

  private final MessageDigest digest;
  private final byte[] buffer = new byte[BUFFER_BYTES];
  private final MemorySegment bufferSegment = MemorySegment.ofArray(buffer);
  private long length;

  /** A fresh digest. */
  public Sha256() {
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
  }

  /** Adds {@code bytes}, in order, to what is hashed. */
  public void update(MemorySegment bytes) {
    long size = bytes.byteSize();
    if (bytes.heapBase().orElse(null) instanceof byte[] array) {
      // A byte[] segment's address is its offset in the array.
      long offset = bytes.address();
      for (long done = 0; done < size; done += Integer.MAX_VALUE) {
        digest.update(array, (int) (offset + done), (int) Math.min(Integer.MAX_VALUE, size - done));
      }
    } else {
      for (long done = 0; done < size; done += BUFFER_BYTES) {
        int n = (int) Math.min(BUFFER_BYTES, size - done);
        MemorySegment.copy(bytes, done, bufferSegment, 0, n);
        digest.update(buffer, 0, n);
      }
    }
    length += size;
  }

  /** Adds {@code bytes[offset, offset + count)}. */
  public void update(byte[] bytes, int offset, int count) {
    digest.update(bytes, offset, count);
    length += count;
  }

  /** How many bytes were hashed since the start or the last {@link #finish()}. */
  public long length() {
    return length;
  }

  /** The hash of the bytes so far, as 64 lower-case hex digits; starts afresh. */
  public String finish() {
    length = 0;
    return HexFormat.of().formatHex(digest.digest());
  }

  /** The SHA-256 of {@code bytes}, in hex. */
  public static String of(MemorySegment bytes) {
    Sha256 sha = new Sha256();
    sha.update(bytes);
    return sha.finish();
  }

  /**
   * {@code text} as a SHA-256 in lower-case hex if it is one (64 hex digits, either case, with
   * surrounding quotes or a weak-ETag prefix {@code W/} removed, as the hub's ETags come), else
   * empty.
   */
  public static Optional<String> parseHex(String text) {
    if (text == null) {
      return Optional.empty();
    }
    String value = text.strip();
    if (value.startsWith("W/")) {
      value = value.substring(2);
    }
    if (value.length() >= 2 && value.startsWith("\"") && value.endsWith("\"")) {
      value = value.substring(1, value.length() - 1);
    }
    value = value.toLowerCase(Locale.ROOT);
    return HEX.matcher(value).matches() ? Optional.of(value) : Optional.empty();
  }
}
