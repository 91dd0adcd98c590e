package dev.loadstone.safetensors;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;
import java.nio.file.Path;

/**
 * One tensor: name, dtype, shape and its bytes as a read-only {@link MemorySegment}. A view of
 * an open {@link SafeTensors} file is zero-copy: its segment is a slice of the file's mapping and
 * lives exactly as long as the file stays open.
 *
 * <pre>{@code
 * TensorView w = file.tensor("lm_head.weight");        // [vocab, hidden], BF16
 * float x = w.getFloat(w.index(5, 7));                  // element [5, 7] as float32
 * TensorView rows = w.slice(0, 0, 100);                  // first 100 rows, still zero-copy
 * try (Arena arena = Arena.ofConfined()) {
 *   MemorySegment f32 = arena.allocate(w.elementCount() * 4, 64);
 *   w.copyTo(f32, DType.F32);                           // one copy, converted on the way
 * }
 * }</pre>
 *
 * <p>Element reads and copies are little-endian and tolerate unaligned data. Indices are flat
 * (row-major) element indices; {@link #index(long...)} computes one from coordinates.
 */
public final class TensorView {
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final SafeTensors file;
  private final String name;
  private final DType dtype;
  private final long[] shape;
  private final long elementCount;
  /** The bytes, or null for a tensor of a remote file (none are held here). */
  private final MemorySegment data;
  private final long byteSize;
  private final long dataBegin;

  TensorView(SafeTensors file, String name, DType dtype, long[] shape, MemorySegment data, long dataBegin) {
    this(file, name, dtype, shape, data, data.byteSize(), dataBegin);
  }

  /** @param data the bytes, or null for a tensor of a remote file, which has {@code byteSize} bytes there */
  TensorView(SafeTensors file, String name, DType dtype, long[] shape, MemorySegment data, long byteSize,
      long dataBegin) {
    this.file = file;
    this.name = name;
    this.dtype = dtype;
    this.shape = shape;
    this.elementCount = TensorEntry.elementCount(shape);
    this.data = data == null || data.isReadOnly() ? data : data.asReadOnly();
    this.byteSize = byteSize;
    this.dataBegin = dataBegin;
  }

  /**
   * A view of tensor bytes held anywhere (heap, off-heap, another mapping), for example to hand
   * to a writer. The segment is not copied; the view is read-only.
   *
   * @throws IllegalArgumentException if a dimension is negative or the segment's size is not
   *     exactly the shape's size in {@code dtype}
   */
  public static TensorView of(String name, DType dtype, long[] shape, MemorySegment data) {
    TensorSpec spec = new TensorSpec(name, dtype, shape);
    long[] dims = spec.shape();
    long expected = spec.byteSize();
    if (data.byteSize() != expected) {
      throw new IllegalArgumentException(name + ": shape " + Arrays.toString(dims) + " of " + dtype
          + " needs " + expected + " bytes, the segment has " + data.byteSize());
    }
    return new TensorView(null, name, dtype, dims, data, -1);
  }

  /** The tensor's name. */
  public String name() {
    return name;
  }

  /** The element type. */
  public DType dtype() {
    return dtype;
  }

  /** The dimensions (a copy); empty for a scalar. */
  public long[] shape() {
    return shape.clone();
  }

  /** The number of dimensions. */
  public int rank() {
    return shape.length;
  }

  /** The size of dimension {@code axis}. */
  public long dim(int axis) {
    return shape[axis];
  }

  /** The number of elements: the product of the dimensions, 1 for a scalar. */
  public long elementCount() {
    return elementCount;
  }

  /** The size of the data in bytes. */
  public long byteSize() {
    return byteSize;
  }

  /**
   * The tensor's bytes, read-only. For a view of a file, reading it after the file is closed
   * throws {@link IllegalStateException}.
   *
   * @throws UnsupportedOperationException for a tensor of a remote file, whose bytes are read
   *     by a COPY load, not held here
   */
  public MemorySegment segment() {
    return bytes();
  }

  /** Whether this is a tensor of a remote file: described here, its bytes read by a COPY load. */
  public boolean isRemote() {
    return file != null && data == null;
  }

  private MemorySegment bytes() {
    if (data == null) {
      throw new UnsupportedOperationException(where() + ": a tensor of a remote file; its bytes are read by a"
          + " COPY load (VarStore.load), not held by the view");
    }
    return data;
  }

  /** The file this view maps, or empty for a view of other memory or a gathered slice. */
  public Optional<Path> file() {
    return file == null ? Optional.empty() : Optional.of(file.path());
  }

  /**
   * Whether {@link #copyTo} can copy this tensor into {@code targetType}: always for the same
   * dtype; otherwise from any real dtype (float, integer, BOOL) to F32, F16, BF16 or F64.
   */
  public boolean canCopyTo(DType targetType) {
    return ConvertingCopy.supports(dtype, targetType);
  }

  /**
   * The view's byte range {@code [begin, end)} within its file's data section, as written in the
   * header's {@code data_offsets}.
   *
   * @throws IllegalStateException if this view is not a zero-copy view of a file
   */
  public long[] dataOffsets() {
    if (file == null) {
      throw new IllegalStateException(name + " is not a view of a file");
    }
    return new long[] {dataBegin, dataBegin + byteSize};
  }

  /** The flat (row-major) index of the element at these coordinates. */
  public long index(long... coordinates) {
    if (coordinates.length != shape.length) {
      throw new IllegalArgumentException(name + ": " + coordinates.length + " coordinates for rank " + shape.length);
    }
    long flat = 0;
    for (int axis = 0; axis < shape.length; axis++) {
      Objects.checkIndex(coordinates[axis], shape[axis]);
      flat = flat * shape[axis] + coordinates[axis];
    }
    return flat;
  }

  /**
   * The raw bits of element {@code index}, zero-extended: 4, 6, 8, 16, 32 or 64 bits, as stored.
   */
  public long getBits(long index) {
    Objects.checkIndex(index, elementCount);
    try {
      return ConvertingCopy.readBits(bytes(), dtype, index);
    } catch (IllegalStateException e) {
      throw closed(e);
    }
  }

  /**
   * Element {@code index} as float32: exact for every float type but F64 (rounded); integers and
   * BOOL convert as by {@link DType#decodeFloat(long)}.
   *
   * @throws UnsupportedOperationException for C64
   */
  public float getFloat(long index) {
    return dtype.decodeFloat(getBits(index));
  }

  /** Element {@code index} as a double: exact for F64, integers up to 2^53 and every smaller float. */
  public double getDouble(long index) {
    return dtype.decodeDouble(getBits(index));
  }

  /**
   * Element {@code index} of an integer or BOOL tensor as a long: sign-extended for signed types,
   * zero-extended for unsigned ones (U64 as its two's-complement bits).
   *
   * @throws UnsupportedOperationException for float and complex types
   */
  public long getLong(long index) {
    long bits = getBits(index);
    return switch (dtype) {
      case BOOL -> bits != 0 ? 1 : 0;
      case U8, U16, U32, U64 -> bits;
      case I8 -> (byte) bits;
      case I16 -> (short) bits;
      case I32 -> (int) bits;
      case I64 -> bits;
      default -> throw new UnsupportedOperationException(name + ": " + dtype + " is not an integer type");
    };
  }

  /** Element {@code index} of a BOOL tensor. */
  public boolean getBoolean(long index) {
    if (dtype != DType.BOOL) {
      throw new UnsupportedOperationException(name + ": " + dtype + " is not BOOL");
    }
    return getBits(index) != 0;
  }

  /**
   * Every element as float32, in a new array.
   *
   * @throws UnsupportedOperationException for C64, or if there are more than
   *     {@code Integer.MAX_VALUE - 8} elements
   */
  public float[] toFloatArray() {
    if (elementCount > Integer.MAX_VALUE - 8) {
      throw new UnsupportedOperationException(name + ": " + elementCount + " elements do not fit in an array");
    }
    float[] values = new float[(int) elementCount];
    copyTo(MemorySegment.ofArray(values), DType.F32);
    return values;
  }

  /**
   * Copies every element into {@code destination}, converting to {@code targetType}: a plain
   * byte copy when the dtypes are equal; otherwise any real dtype (float, integer, BOOL) to F32,
   * F16, BF16 or F64, rounding to nearest even.
   *
   * @throws UnsupportedOperationException if the conversion is not one of those
   * @throws IndexOutOfBoundsException if {@code destination} is too small
   */
  public void copyTo(MemorySegment destination, DType targetType) {
    copyRangeTo(0, elementCount, destination, 0, targetType);
  }

  /**
   * Copies elements {@code [first, first + count)} to {@code destination} at byte
   * {@code destinationOffset}, converting as {@link #copyTo} does. For sub-byte dtypes the range
   * must start and end on byte boundaries unless converted. Every error names the file and
   * the tensor.
   *
   * @throws UnsupportedOperationException if the conversion is not one {@link #copyTo} makes
   * @throws IndexOutOfBoundsException if the range lies outside the tensor, or the copy outside
   *     {@code destination}
   * @throws IllegalArgumentException if a sub-byte range does not start and end on byte
   *     boundaries
   */
  public void copyRangeTo(long first, long count, MemorySegment destination, long destinationOffset, DType targetType) {
    Objects.requireNonNull(targetType, "targetType");
    if (!canCopyTo(targetType)) {
      throw new UnsupportedOperationException(where() + ": cannot convert " + dtype + " to " + targetType
          + ": conversions go from real dtypes to F32, F16, BF16 or F64");
    }
    if (first < 0 || count < 0 || first > elementCount - count) {
      throw new IndexOutOfBoundsException(where() + ": elements [" + first + ", " + (first + count)
          + ") lie outside its " + elementCount + " elements");
    }
    long targetBits = Math.multiplyExact(count, (long) targetType.bits());
    long targetBytes = (targetBits + 7) / 8;
    if (destinationOffset < 0 || destinationOffset > destination.byteSize() - targetBytes) {
      throw new IndexOutOfBoundsException(where() + ": " + targetBytes + " bytes of " + targetType
          + " at offset " + destinationOffset + " do not fit a destination of " + destination.byteSize() + " bytes");
    }
    try {
      ConvertingCopy.convert(bytes(), dtype, first, destination, destinationOffset, targetType, count);
    } catch (IllegalStateException e) {
      throw closed(e);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(where() + ": " + e.getMessage(), e);
    }
  }

  /** The file (where there is one) and the tensor, for messages: {@code FILE: tensor 'NAME'}. */
  private String where() {
    return (file == null ? "" : file.path() + ": ") + "tensor '" + name + "'";
  }

  /**
   * The sub-tensor with indices {@code [from, to)} along dimension {@code axis}. Along axis 0 it
   * is a zero-copy view of the same memory (with the same lifetime); along other axes the
   * elements are gathered into new memory owned by the garbage collector. Each slice's data must
   * start on a byte boundary (only a concern for F6 and F4).
   */
  public TensorView slice(int axis, long from, long to) {
    Objects.checkIndex(axis, shape.length);
    Objects.checkFromToIndex(from, to, shape[axis]);
    long inner = 1;
    for (int a = axis + 1; a < shape.length; a++) {
      inner *= shape[a];
    }
    long outer = 1;
    for (int a = 0; a < axis; a++) {
      outer *= shape[a];
    }
    bytes();
    long[] sliced = shape.clone();
    sliced[axis] = to - from;
    long blockElements = (to - from) * inner;
    long bits = dtype.bits();
    long strideBits = shape[axis] * inner * bits;
    long startBits = from * inner * bits;
    if ((blockElements * bits) % 8 != 0 || startBits % 8 != 0 || (outer > 1 && strideBits % 8 != 0)) {
      throw new IllegalArgumentException(name + ": slice [" + from + ", " + to + ") of axis " + axis
          + " does not start and end on byte boundaries for " + dtype);
    }
    try {
      if (outer == 1) {
        // Slicing a segment does not touch its memory, so it would not notice a closed file.
        if (!data.scope().isAlive()) {
          throw new IllegalStateException("Already closed");
        }
        MemorySegment part = data.asSlice(startBits / 8, blockElements * bits / 8);
        return new TensorView(file, name, dtype, sliced, part, file == null ? -1 : dataBegin + startBits / 8);
      }
      long blockBytes = blockElements * bits / 8;
      MemorySegment gathered = Arena.ofAuto().allocate(Math.max(1, outer * blockBytes), 64)
          .asSlice(0, outer * blockBytes);
      for (long o = 0; o < outer; o++) {
        MemorySegment.copy(data, (o * strideBits + startBits) / 8, gathered, o * blockBytes, blockBytes);
      }
      return new TensorView(null, name, dtype, sliced, gathered, -1);
    } catch (IllegalStateException e) {
      throw closed(e);
    }
  }

  private RuntimeException closed(IllegalStateException e) {
    if (file != null && !file.isOpen()) {
      return file.closedError(name, e);
    }
    return e;
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape);
  }
}
