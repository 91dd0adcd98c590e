package dev.loadstone.safetensors;

import java.math.BigDecimal;
import java.math.BigInteger;

/**
 * What the dtypes' codes mean, computed from the formats' definitions with {@link Math#pow},
 * {@link BigInteger} and {@link BigDecimal}: never through {@link DType}, {@link MiniFloats} or
 * {@link Conversion}, whose results the tests compare against these.
 */
final class ReferenceValues {
  private ReferenceValues() {}

  private static final BigDecimal TWO = BigDecimal.valueOf(2);

  /**
   * A binary floating-point format of one sign bit, {@code exponentBits} and
   * {@code mantissaBits}, read without special values: a code whose exponent is all ones is read
   * as one more binade, which is the value an IEEE format rounds to infinity at.
   */
  record Binary(int exponentBits, int mantissaBits, int bias) {
    static final Binary HALF = new Binary(5, 10, 15);
    static final Binary BFLOAT16 = new Binary(8, 7, 127);

    int signBit() {
      return 1 << (exponentBits + mantissaBits);
    }

    /** The first code whose exponent is all ones: +infinity in IEEE-style formats. */
    int allOnesExponent() {
      return ((1 << exponentBits) - 1) << mantissaBits;
    }

    /**
     * The magnitude of a code without its sign bit: {@code (1 + m/2^M) * 2^(e - bias)}, or
     * {@code (m/2^M) * 2^(1 - bias)} when the exponent field is 0.
     */
    double magnitude(int code) {
      int exponent = (code >> mantissaBits) & ((1 << exponentBits) - 1);
      double fraction = (code & ((1 << mantissaBits) - 1)) / Math.pow(2, mantissaBits);
      return exponent == 0
          ? fraction * Math.pow(2, 1 - bias)
          : (1 + fraction) * Math.pow(2, exponent - bias);
    }

    /** Decodes an IEEE-style code: all-ones exponent is infinity (mantissa 0) or NaN. */
    double decodeIeee(int code) {
      int magnitudeCode = code & (signBit() - 1);
      double magnitude = magnitudeCode == allOnesExponent() ? Double.POSITIVE_INFINITY
          : magnitudeCode > allOnesExponent() ? Double.NaN
          : magnitude(magnitudeCode);
      return (code & signBit()) != 0 ? -magnitude : magnitude;
    }

    /** The code nearest {@code value} (ties to the even code), overflowing to infinity. */
    int nearestEven(double value) {
      if (Double.isNaN(value)) {
        throw new IllegalArgumentException("NaN has no nearest code");
      }
      boolean negative = Double.doubleToRawLongBits(value) < 0;
      int magnitude = Double.isInfinite(value) ? allOnesExponent()
          : nearestEven(new BigDecimal(Math.abs(value)));
      return negative ? magnitude | signBit() : magnitude;
    }

    /** The code nearest the exact integer {@code value}, ties to the even code. */
    int nearestEven(BigInteger value) {
      int magnitude = nearestEven(new BigDecimal(value.abs()));
      return value.signum() < 0 ? magnitude | signBit() : magnitude;
    }

    private int nearestEven(BigDecimal magnitude) {
      int low = 0;
      int high = allOnesExponent();
      if (magnitude.compareTo(exact(high)) >= 0) {
        return high;
      }
      // exact(low) <= magnitude < exact(high); adjacent codes have adjacent values
      while (high - low > 1) {
        int middle = (low + high) >>> 1;
        if (exact(middle).compareTo(magnitude) <= 0) {
          low = middle;
        } else {
          high = middle;
        }
      }
      int side = magnitude.multiply(TWO).compareTo(exact(low).add(exact(high)));
      return side < 0 ? low : side > 0 ? high : low % 2 == 0 ? low : high;
    }

    private BigDecimal exact(int code) {
      return new BigDecimal(magnitude(code));
    }
  }

  /** The integer a raw code of an integer dtype stands for: its low bits, two's complement if signed. */
  static BigInteger integer(DType dtype, long raw) {
    int bits = dtype.bits();
    BigInteger modulus = BigInteger.ONE.shiftLeft(bits);
    BigInteger unsigned = new BigInteger(Long.toUnsignedString(raw)).mod(modulus);
    boolean signed = switch (dtype) {
      case I8, I16, I32, I64 -> true;
      case U8, U16, U32, U64 -> false;
      default -> throw new IllegalArgumentException(dtype + " is not an integer type");
    };
    return signed && unsigned.testBit(bits - 1) ? unsigned.subtract(modulus) : unsigned;
  }
}
