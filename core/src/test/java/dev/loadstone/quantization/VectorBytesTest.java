package dev.loadstone.quantization;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The vector decoding of 8-bit values gives every bit pattern's exact value (as the format's
 * own decoding, {@link DType#decodeDouble}, or the signed byte for I8), and stops before a
 * vector holding a NaN or an infinity, which it leaves to the caller.
 */
class VectorBytesTest {

  /** Whether this JVM's vectors take 8-bit values whole: float vectors of 8 lanes or more (256 bits and up). */
  private static boolean wholeVectors() {
    return jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length() >= 8;
  }

  private static boolean special(DType dtype, int bits) {
    int magnitude = bits & 0x7F;
    return dtype == DType.F8_E4M3 ? magnitude == 0x7F : dtype == DType.F8_E5M2 && magnitude >= 0x7C;
  }

  private static double expected(DType dtype, int bits) {
    return dtype == DType.I8 ? (byte) bits : dtype.decodeDouble(bits);
  }

  @ParameterizedTest
  @EnumSource(names = {"F8_E4M3", "F8_E5M2", "I8"})
  void everyFiniteBitPatternDecodesToItsExactValue(DType dtype) {
    assertTrue(RowEncoder.VECTOR_PRODUCTS, "the tests run with the Vector API module");
    byte[] stored = new byte[256 * 3];
    int count = 0;
    for (int round = 0; round < 3; round++) {   // each pattern at several lanes
      for (int bits = 0; bits < 256; bits++) {
        int pattern = (bits * 7 + round * 13) & 0xFF;
        if (!special(dtype, pattern)) {
          stored[count++] = (byte) pattern;
        }
      }
    }
    float[] into = new float[count];
    int done = VectorBytes.decode(dtype, stored, into, count);
    if (!wholeVectors()) {
      assertEquals(0, done, "a vector shape the kernel does not take leaves everything to the table");
      return;
    }
    assertTrue(done > count - 64 && done <= count, "whole vectors decoded: " + done + " of " + count);
    for (int i = 0; i < done; i++) {
      assertEquals(expected(dtype, stored[i] & 0xFF), into[i], 0.0,
          dtype + " bits 0x" + Integer.toHexString(stored[i] & 0xFF));
      assertEquals(Math.copySign(1.0, expected(dtype, stored[i] & 0xFF)), Math.copySign(1.0, into[i]),
          "the sign of a zero");
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F8_E4M3", "F8_E5M2"})
  void aVectorWithANaNIsLeftToTheCaller(DType dtype) {
    byte[] stored = new byte[256];
    stored[100] = (byte) 0xFF;   // NaN in both formats
    float[] into = new float[256];
    int done = VectorBytes.decode(dtype, stored, into, 256);
    assertTrue(done <= 100, "stopped before the NaN's vector: " + done);
    assertTrue(done > 100 - 64 || !wholeVectors(), "decoded the vectors before it: " + done);
  }
}
