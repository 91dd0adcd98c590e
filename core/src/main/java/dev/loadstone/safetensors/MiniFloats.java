package dev.loadstone.safetensors;

/**
 * Decoding tables for the floating-point types of 8 bits and fewer. Each table maps every code
 * of its type to the exactly equal float32 (all of these values are representable).
 */
final class MiniFloats {
  private MiniFloats() {}

  /** How a format spends its top codes. */
  private enum Specials {
    /** IEEE style: largest exponent is infinity (mantissa 0) or NaN. */
    IEEE,
    /** "FN": only the all-ones exponent and mantissa is NaN; no infinities. */
    FINITE_ALL_ONES_NAN,
    /** "FNUZ": the negative-zero code is NaN; no infinities, no negative zero. */
    FINITE_NEGATIVE_ZERO_NAN,
    /** No special values at all. */
    NONE
  }

  private static final float[] E4M3 = table(4, 3, 7, Specials.FINITE_ALL_ONES_NAN);
  private static final float[] E5M2 = table(5, 2, 15, Specials.IEEE);
  private static final float[] E4M3FNUZ = table(4, 3, 8, Specials.FINITE_NEGATIVE_ZERO_NAN);
  private static final float[] E5M2FNUZ = table(5, 2, 16, Specials.FINITE_NEGATIVE_ZERO_NAN);
  private static final float[] E2M3 = table(2, 3, 1, Specials.NONE);
  private static final float[] E3M2 = table(3, 2, 3, Specials.NONE);
  private static final float[] E2M1 = table(2, 1, 1, Specials.NONE);
  private static final float[] E8M0 = e8m0Table();

  /** The table of {@code dtype}, indexed by raw code. Callers must not modify it. */
  static float[] table(DType dtype) {
    return switch (dtype) {
      case F8_E4M3 -> E4M3;
      case F8_E5M2 -> E5M2;
      case F8_E8M0 -> E8M0;
      case F8_E4M3FNUZ -> E4M3FNUZ;
      case F8_E5M2FNUZ -> E5M2FNUZ;
      case F6_E2M3 -> E2M3;
      case F6_E3M2 -> E3M2;
      case F4 -> E2M1;
      default -> throw new IllegalArgumentException(dtype + " has no decoding table");
    };
  }

  private static float[] table(int exponentBits, int mantissaBits, int bias, Specials specials) {
    int codes = 1 << (1 + exponentBits + mantissaBits);
    float[] table = new float[codes];
    int maxExponent = (1 << exponentBits) - 1;
    int maxMantissa = (1 << mantissaBits) - 1;
    for (int code = 0; code < codes; code++) {
      boolean negative = (code >>> (exponentBits + mantissaBits)) != 0;
      int exponent = (code >>> mantissaBits) & maxExponent;
      int mantissa = code & maxMantissa;
      boolean infinityOrNan = specials == Specials.IEEE && exponent == maxExponent;
      boolean nan = switch (specials) {
        case IEEE -> infinityOrNan && mantissa != 0;
        case FINITE_ALL_ONES_NAN -> exponent == maxExponent && mantissa == maxMantissa;
        case FINITE_NEGATIVE_ZERO_NAN -> negative && exponent == 0 && mantissa == 0;
        case NONE -> false;
      };
      float magnitude;
      if (nan) {
        magnitude = Float.NaN;
      } else if (infinityOrNan) {
        magnitude = Float.POSITIVE_INFINITY;
      } else if (exponent == 0) {
        magnitude = Math.scalb((float) mantissa, 1 - bias - mantissaBits);
      } else {
        magnitude = Math.scalb((float) ((1 << mantissaBits) | mantissa), exponent - bias - mantissaBits);
      }
      table[code] = negative && !nan ? -magnitude : magnitude;
    }
    return table;
  }

  private static float[] e8m0Table() {
    float[] table = new float[256];
    for (int code = 0; code < 255; code++) {
      table[code] = Math.scalb(1f, code - 127);
    }
    table[255] = Float.NaN;
    return table;
  }
}
