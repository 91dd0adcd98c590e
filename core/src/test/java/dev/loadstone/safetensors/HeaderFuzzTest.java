package dev.loadstone.safetensors;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Coverage-guided fuzzing of whole file images: whatever the bytes, opening them either succeeds
 * with views that stay inside the file, or throws {@link SafeTensorsException}. Any other
 * exception or error (an {@code IndexOutOfBoundsException}, an {@code ArithmeticException}, an
 * {@code OutOfMemoryError}) is a finding.
 *
 * <p>A plain {@code mvn test} replays the seeds in {@code HeaderFuzzTestInputs/anyFileImage/}
 * (test resources): valid and broken files, and inputs that once failed. {@code JAZZER_FUZZ=1}
 * fuzzes for {@code maxDuration}, or for {@code JAZZER_MAX_DURATION} when set; findings are
 * written to that directory and replayed from then on.
 */
class HeaderFuzzTest {
  @FuzzTest(maxDuration = "60s")
  @DictionaryEntries({
      "{\"", "\":", "{}", "[]", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"",
      "\"F32\"", "\"F4\"", "\"F6_E2M3\"", "\"BOOL\"", "\"C64\"", "\"F8_E4M3\"",
      "9223372036854775807", "18446744073709551616", "1e3", "-0", "null", "\\u0000", "\\ud800"})
  void anyFileImage(byte[] bytes) {
    Arena arena = Arena.ofConfined();
    try {
      MemorySegment image = arena.allocateFrom(ValueLayout.JAVA_BYTE, bytes);
      try (SafeTensors file = SafeTensors.of(null, arena, image)) {
        assertHeaderIsAnObjectInUtf8(bytes, file);
        assertViewsTileTheDataSection(file, image);
      }
    } catch (SafeTensorsException rejected) {
      // A rule of the format is broken, and said so: the outcome the reader promises.
    } finally {
      if (arena.scope().isAlive()) {
        arena.close();
      }
    }
  }

  /**
   * An accepted header is UTF-8 text that, without its JSON whitespace, starts with '{' and ends
   * with '}'. Checked without a JSON parser, so that it would catch the parser reading the bytes
   * in another encoding, or ignoring what comes before or after the object.
   */
  private static void assertHeaderIsAnObjectInUtf8(byte[] bytes, SafeTensors file) {
    byte[] header = Arrays.copyOfRange(bytes, Long.BYTES, Math.toIntExact(file.dataOffset()));
    String text = assertDoesNotThrow(() -> StandardCharsets.UTF_8.newDecoder()
        .decode(ByteBuffer.wrap(header)).toString());
    String trimmed = text.replaceAll("^[ \\t\\r\\n]+|[ \\t\\r\\n]+$", "");
    assertTrue(trimmed.startsWith("{") && trimmed.endsWith("}"), text);
  }

  /**
   * Every view lies in the data section, in file order and without gaps, and its first and last
   * byte can be read: what a caller of an accepted file relies on.
   */
  private static void assertViewsTileTheDataSection(SafeTensors file, MemorySegment image) {
    long position = image.address() + file.dataOffset();
    for (TensorView view : file.tensors()) {
      MemorySegment data = view.segment();
      assertEquals(position, data.address(), view::toString);
      assertEquals(view.dtype().bits() * view.elementCount(), 8 * data.byteSize(), view::toString);
      if (data.byteSize() > 0) {
        data.get(ValueLayout.JAVA_BYTE, 0);
        data.get(ValueLayout.JAVA_BYTE, data.byteSize() - 1);
      }
      position += data.byteSize();
    }
    assertEquals(image.address() + image.byteSize(), position, "the data section is covered");
    assertTrue(file.tensors().stream().allMatch(v -> file.find(v.name()).orElseThrow() == v));
  }
}
