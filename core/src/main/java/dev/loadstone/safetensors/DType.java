package dev.loadstone.safetensors;

import java.util.Optional;

/**
 * The element types of the safetensors format, with their sizes in bits.
 *
 * <p>The names are the ones written in a header's {@code dtype} field, matched case-sensitively.
 * Sub-byte types ({@link #F6_E2M3}, {@link #F6_E3M2}, {@link #F4}) are packed densely: element
 * {@code i} occupies bits {@code [i*bits, (i+1)*bits)} of the tensor's bytes, counting bits from
 * the least significant bit of the first byte (so an {@code F4} pair stores element 0 in the low
 * nibble, as PyTorch's {@code float4_e2m1fn_x2} does).
 *
 * <pre>{@code
 * DType.parse("BF16").orElseThrow().decodeFloat(0x3f80);   // 1.0f
 * DType.BF16.encodeFloat(1.0f);                            // 0x3f80
 * }</pre>
 */
public enum DType {
  /** Boolean, one byte per element: 0 is false, anything else true. */
  BOOL(8, Category.BOOLEAN),
  /** Unsigned 8-bit integer. */
  U8(8, Category.UNSIGNED),
  /** Signed 8-bit integer. */
  I8(8, Category.SIGNED),
  /** Signed 16-bit integer. */
  I16(16, Category.SIGNED),
  /** Unsigned 16-bit integer. */
  U16(16, Category.UNSIGNED),
  /** Signed 32-bit integer. */
  I32(32, Category.SIGNED),
  /** Unsigned 32-bit integer. */
  U32(32, Category.UNSIGNED),
  /** Signed 64-bit integer. */
  I64(64, Category.SIGNED),
  /** Unsigned 64-bit integer. */
  U64(64, Category.UNSIGNED),
  /** IEEE 754 binary16. */
  F16(16, Category.FLOAT),
  /** bfloat16: the upper half of a float32. */
  BF16(16, Category.FLOAT),
  /** IEEE 754 binary32. */
  F32(32, Category.FLOAT),
  /** IEEE 754 binary64. */
  F64(64, Category.FLOAT),
  /** Complex number of two float32 (real, then imaginary). */
  C64(64, Category.COMPLEX),
  /** 8-bit float E4M3 "FN": bias 7, no infinities, NaN is S.1111.111, largest 448. */
  F8_E4M3(8, Category.FLOAT),
  /** 8-bit float E5M2: bias 15, IEEE-style infinities and NaNs. */
  F8_E5M2(8, Category.FLOAT),
  /** 8-bit scale E8M0 (OCP MX): unsigned power of two 2^(e-127); 0xFF is NaN; no zero. */
  F8_E8M0(8, Category.FLOAT),
  /** 8-bit float E4M3 "FNUZ": bias 8, no infinities, no negative zero; 0x80 is NaN. */
  F8_E4M3FNUZ(8, Category.FLOAT),
  /** 8-bit float E5M2 "FNUZ": bias 16, no infinities, no negative zero; 0x80 is NaN. */
  F8_E5M2FNUZ(8, Category.FLOAT),
  /** 6-bit float E2M3 (OCP MX FP6): bias 1, no infinities or NaNs, largest 7.5. */
  F6_E2M3(6, Category.FLOAT),
  /** 6-bit float E3M2 (OCP MX FP6): bias 3, no infinities or NaNs, largest 28. */
  F6_E3M2(6, Category.FLOAT),
  /** 4-bit float E2M1 (OCP MX FP4): bias 1, no infinities or NaNs, largest 6. */
  F4(4, Category.FLOAT);

  /** What kind of values a dtype holds ({@link #isFloatingPoint()}, {@link #isInteger()} ask it). */
  enum Category {
    /** {@link #BOOL}. */
    BOOLEAN,
    /** Two's-complement integers. */
    SIGNED,
    /** Unsigned integers. */
    UNSIGNED,
    /** Real floating-point numbers of any width. */
    FLOAT,
    /** Complex numbers ({@link #C64}). */
    COMPLEX
  }

  private static final DType[] VALUES = values();

  private final int bits;
  private final Category category;

  DType(int bits, Category category) {
    this.bits = bits;
    this.category = category;
  }

  /** Looks a dtype up by its exact header name ({@code "F32"}, {@code "F8_E4M3"}, ...). */
  public static Optional<DType> parse(String name) {
    for (DType dtype : VALUES) {
      if (dtype.name().equals(name)) {
        return Optional.of(dtype);
      }
    }
    return Optional.empty();
  }

  /** The size of one element in bits: 4, 6, 8, 16, 32 or 64. */
  public int bits() {
    return bits;
  }

  /** The kind of values this dtype holds. */
  Category category() {
    return category;
  }

  /** Whether this is a real floating-point type, of any width. */
  public boolean isFloatingPoint() {
    return category == Category.FLOAT;
  }

  /**
   * The dtype a tensor of this dtype is given when floating-point tensors are to become
   * {@code floatTarget}: the target for a floating-point dtype, this dtype for any other
   * (integers, booleans and complex numbers keep theirs) or when no target is given.
   *
   * <pre>{@code
   * DType.BF16.convertingFloatsTo(Optional.of(DType.F32));   // F32
   * DType.I64.convertingFloatsTo(Optional.of(DType.F32));    // I64
   * }</pre>
   */
  public DType convertingFloatsTo(Optional<DType> floatTarget) {
    return isFloatingPoint() ? floatTarget.orElse(this) : this;
  }

  /** Whether this is a signed or unsigned integer type. */
  public boolean isInteger() {
    return category == Category.SIGNED || category == Category.UNSIGNED;
  }

  /** Whether one element is a whole number of bytes (every dtype but F6 and F4). */
  public boolean isByteSized() {
    return bits % 8 == 0;
  }

  /**
   * The number of bytes {@code elements} elements occupy.
   *
   * @throws ArithmeticException if the number of bits overflows a {@code long} or is not a
   *     whole number of bytes
   */
  public long byteSize(long elements) {
    long totalBits = Math.multiplyExact(elements, (long) bits);
    if (totalBits % 8 != 0) {
      throw new ArithmeticException(elements + " elements of " + this + " are not a whole number of bytes");
    }
    return totalBits / 8;
  }

  /**
   * Decodes one element's raw bits (the low {@link #bits()} bits of {@code raw}) to the nearest
   * float32; exact for every float type but F64, which is rounded. Integers convert as by a Java
   * cast (U64 as unsigned), BOOL gives 0 or 1.
   *
   * @throws UnsupportedOperationException for {@link #C64}, which has two parts
   */
  public float decodeFloat(long raw) {
    return switch (this) {
      case BOOL -> (raw & 0xFF) != 0 ? 1f : 0f;
      case U8 -> (float) (raw & 0xFF);
      case I8 -> (float) (byte) raw;
      case I16 -> (float) (short) raw;
      case U16 -> (float) (raw & 0xFFFF);
      case I32 -> (float) (int) raw;
      case U32 -> (float) (raw & 0xFFFF_FFFFL);
      case I64 -> (float) raw;
      case U64 -> unsignedToFloat(raw);
      case F16 -> Float.float16ToFloat((short) raw);
      case BF16 -> Float.intBitsToFloat(((int) raw & 0xFFFF) << 16);
      case F32 -> Float.intBitsToFloat((int) raw);
      case F64 -> (float) Double.longBitsToDouble(raw);
      case C64 -> throw new UnsupportedOperationException("C64 has a real and an imaginary part");
      case F8_E4M3, F8_E5M2, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, F6_E2M3, F6_E3M2, F4 ->
          MiniFloats.table(this)[(int) raw & ((1 << bits) - 1)];
    };
  }

  /**
   * Decodes one element's raw bits to a double: exact for F64, every narrower float and every
   * integer up to 2^53; as {@link #decodeFloat} otherwise.
   */
  public double decodeDouble(long raw) {
    return switch (this) {
      case F64 -> Double.longBitsToDouble(raw);
      case I64 -> (double) raw;
      case U64 -> raw >= 0 ? (double) raw : 2.0 * ((raw >>> 1) | (raw & 1));
      case I32 -> (double) (int) raw;
      case U32 -> (double) (raw & 0xFFFF_FFFFL);
      default -> decodeFloat(raw);
    };
  }

  /**
   * Encodes a float32 into this dtype's raw bits, rounding to nearest, ties to even. Supported
   * for F32, F64, F16 and BF16, the types a variable may be converted to.
   *
   * @throws UnsupportedOperationException for any other dtype
   */
  public long encodeFloat(float value) {
    return switch (this) {
      case F32 -> Float.floatToRawIntBits(value) & 0xFFFF_FFFFL;
      case F64 -> Double.doubleToRawLongBits(value);
      case F16 -> Float.floatToFloat16(value) & 0xFFFFL;
      case BF16 -> floatToBFloat16(value) & 0xFFFFL;
      default -> throw new UnsupportedOperationException("cannot encode floats as " + this);
    };
  }

  /** float32 to bfloat16 bits, round to nearest even; NaNs stay (quiet) NaNs. */
  static short floatToBFloat16(float value) {
    int bits = Float.floatToRawIntBits(value);
    if ((bits & 0x7FFF_FFFF) > 0x7F80_0000) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
    return (short) ((bits + roundingBias) >>> 16);
  }

  private static float unsignedToFloat(long raw) {
    if (raw >= 0) {
      return (float) raw;
    }
    // Halve with the low bit kept sticky so the final rounding is still correct.
    return 2f * (float) ((raw >>> 1) | (raw & 1));
  }
}
