package dev.loadstone.safetensors;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Objects;

/**
 * What a writer needs to know about a tensor before its bytes: name, dtype and shape. A
 * {@link SafeTensorsWriter} takes every tensor's spec up front, writes the header, and then
 * accepts exactly {@link #byteSize()} bytes for each.
 *
 * <pre>{@code
 * TensorSpec embed = new TensorSpec("model.embed_tokens.weight", DType.BF16, new long[] {32000, 4096});
 * embed.byteSize();   // 262,144,000
 * }</pre>
 *
 * @param name the tensor's name in the header
 * @param dtype the element type
 * @param shape the dimensions; empty for a scalar; the array is copied both ways
 */
public record TensorSpec(String name, DType dtype, long[] shape) {

  /**
   * Checks and copies the fields.
   *
   * @throws IllegalArgumentException if a dimension is negative, or the tensor's size in bits
   *     overflows a {@code long} or is not a whole number of bytes (an odd number of F4
   *     elements, say)
   */
  public TensorSpec {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    shape = shape.clone();
    for (long dim : shape) {
      if (dim < 0) {
        throw new IllegalArgumentException(
            "tensor '" + name + "': negative dimension in shape " + Arrays.toString(shape));
      }
    }
    try {
      dtype.byteSize(TensorEntry.elementCount(shape));
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape)
          + " of " + dtype + " has no byte size: " + e.getMessage(), e);
    }
  }

  /** The spec of an existing tensor, for example one read from another file. */
  public static TensorSpec of(TensorView tensor) {
    return new TensorSpec(tensor.name(), tensor.dtype(), tensor.shape());
  }

  /** The dimensions (a copy); empty for a scalar. */
  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** The number of elements: the product of the dimensions, 1 for a scalar. */
  public long elementCount() {
    return TensorEntry.elementCount(shape);
  }

  /** The size of the tensor's data in bytes. */
  public long byteSize() {
    return dtype.byteSize(elementCount());
  }

  /**
   * The order of tensors in a written file, the reference implementation's: by dtype in the
   * order U64, I64, F64, C64, F32, U32, I32, BF16, F16, U16, I16, F8_E5M2FNUZ, F8_E4M3FNUZ,
   * F8_E8M0, F8_E4M3, F8_E5M2, I8, U8, F6_E3M2, F6_E2M3, F4, BOOL (roughly widest first, so
   * that data stays aligned to its element size), then by name in Unicode code point order
   * (the order of the names' UTF-8 bytes).
   */
  public static Comparator<TensorSpec> canonicalOrder() {
    return CANONICAL_ORDER;
  }

  private static final Comparator<TensorSpec> CANONICAL_ORDER =
      Comparator.comparingInt((TensorSpec spec) -> fileRank(spec.dtype()))
          .thenComparing(TensorSpec::name, TensorSpec::compareCodePoints);

  /**
   * Tensor names in Unicode code point order: the order of their UTF-8 bytes, as the reference
   * implementation sorts names within a dtype and Python sorts an index's {@code weight_map}.
   */
  public static Comparator<String> nameOrder() {
    return TensorSpec::compareCodePoints;
  }

  /** A dtype's place in a file: the reverse of the reference implementation's enum order. */
  static int fileRank(DType dtype) {
    return switch (dtype) {
      case U64 -> 0;
      case I64 -> 1;
      case F64 -> 2;
      case C64 -> 3;
      case F32 -> 4;
      case U32 -> 5;
      case I32 -> 6;
      case BF16 -> 7;
      case F16 -> 8;
      case U16 -> 9;
      case I16 -> 10;
      case F8_E5M2FNUZ -> 11;
      case F8_E4M3FNUZ -> 12;
      case F8_E8M0 -> 13;
      case F8_E4M3 -> 14;
      case F8_E5M2 -> 15;
      case I8 -> 16;
      case U8 -> 17;
      case F6_E3M2 -> 18;
      case F6_E2M3 -> 19;
      case F4 -> 20;
      case BOOL -> 21;
    };
  }

  /**
   * Compares two strings by Unicode code points, which for well-formed strings is the order of
   * their UTF-8 bytes (Rust's {@code String} order, Python's {@code str} order). It differs from
   * {@link String#compareTo}, which compares UTF-16 units, where a supplementary character
   * meets one of U+E000..U+FFFF.
   */
  static int compareCodePoints(String a, String b) {
    int i = 0;
    int j = 0;
    while (i < a.length() && j < b.length()) {
      int x = a.codePointAt(i);
      int y = b.codePointAt(j);
      if (x != y) {
        return Integer.compare(x, y);
      }
      i += Character.charCount(x);
      j += Character.charCount(y);
    }
    return Integer.compare(a.length() - i, b.length() - j);
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof TensorSpec that && name.equals(that.name) && dtype == that.dtype
        && Arrays.equals(shape, that.shape);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, dtype, Arrays.hashCode(shape));
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape);
  }
}
