package dev.loadstone.quantization;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * One weight of a quantized checkpoint: its logical name, shape {@code [out, in]} and dtype (as
 * the unquantized model has them), the stored tensors it is made of (the packed values first,
 * then the companions: scales, zero points, group indices), and how to compute its values.
 *
 * <pre>{@code
 * QuantizedWeight down = quantization.weight("model.layers.0.mlp.down_proj.weight").orElseThrow();
 * long[] shape = down.shape();                                  // [2048, 8192]
 * MemorySegment rows = arena.allocate(16 * shape[1] * 2);
 * down.dequantize(0, 16, rows, 0, DType.BF16);                   // the first 16 rows, as BF16
 * }</pre>
 *
 * <p>Values are computed exactly in double precision (each is a small integer or an 8-bit
 * float, minus a zero point, times a scale) and rounded once to the target dtype, to nearest,
 * ties to even. A weight found without a scheme (companion tensors present, but no
 * {@code quantization_config} in {@code config.json}) cannot be dequantized:
 * {@link #problem()} says why.
 */
public final class QuantizedWeight {
  private final String name;
  private final String scheme;
  private final long[] shape;
  private final DType dtype;
  private final List<TensorView> tensors;
  private final Dequantizer dequantizer;
  private final String problem;

  private QuantizedWeight(String name, String scheme, long[] shape, DType dtype, List<TensorView> tensors,
      Dequantizer dequantizer, String problem) {
    this.name = name;
    this.scheme = scheme;
    this.shape = shape.clone();
    this.dtype = dtype;
    this.tensors = List.copyOf(tensors);
    this.dequantizer = dequantizer;
    this.problem = problem;
  }

  /** A weight its scheme can dequantize; {@code tensors}: the packed values first. */
  static QuantizedWeight of(String name, String scheme, long rows, long columns, DType dtype,
      List<TensorView> tensors, Dequantizer dequantizer) {
    return new QuantizedWeight(name, scheme, new long[] {rows, columns}, dtype, tensors,
        Objects.requireNonNull(dequantizer, "dequantizer"), null);
  }

  /** A weight whose companions are present but whose scheme is unknown. */
  static QuantizedWeight withoutScheme(String name, List<TensorView> tensors, String problem) {
    TensorView main = tensors.getFirst();
    return new QuantizedWeight(name, "unknown", main.shape(), main.dtype(), tensors, null, problem);
  }

  /** The weight's name as the unquantized model has it ({@code "model.layers.0.mlp.down_proj.weight"}). */
  public String name() {
    return name;
  }

  /** The scheme and its parameters, for reports ({@code "gptq 4-bit, groups of 128, desc_act"}). */
  public String scheme() {
    return scheme;
  }

  /**
   * The logical shape, {@code [out, in]} (a copy); for a weight without a scheme, the shape of
   * its first tensor.
   */
  public long[] shape() {
    return shape.clone();
  }

  /**
   * The dtype of the unquantized model: {@code config.json}'s {@code torch_dtype} where it
   * names one of F32, F16, BF16, else the scales' dtype (F32 where they are of another).
   */
  public DType dtype() {
    return dtype;
  }

  /** The stored tensors, the packed values first, then the companions. */
  public List<TensorView> tensors() {
    return tensors;
  }

  /**
   * The packed tensor's bytes that hold output rows {@code [firstRow, firstRow + rowCount)},
   * where it is stored a row per output row in whole bytes (FP8, 8-bit, compressed-tensors'
   * packed words): one range a caller can map in before {@link #dequantize}. Empty for layouts
   * whose rows are spread over the tensor (GPTQ's and AWQ's packing along another dimension).
   */
  public Optional<MemorySegment> storedRows(long firstRow, long rowCount) {
    TensorView packed = tensors.getFirst();
    if (packed.rank() != 2 || packed.dim(0) != shape[0] || packed.dtype().bits() % 8 != 0) {
      return Optional.empty();
    }
    long rowBytes = packed.dtype().byteSize(packed.dim(1));
    return Optional.of(packed.segment().asSlice(firstRow * rowBytes, rowCount * rowBytes));
  }

  /** The bytes of all of its stored tensors. */
  public long storedByteSize() {
    long total = 0;
    for (TensorView tensor : tensors) {
      total += tensor.byteSize();
    }
    return total;
  }

  /** Why the weight cannot be dequantized, or empty if it can. */
  public Optional<String> problem() {
    return Optional.ofNullable(problem);
  }

  /** Whether {@link #dequantize} can write values as {@code target}: F64, F32, F16 or BF16. */
  public static boolean canDequantizeTo(DType target) {
    return RowEncoder.supports(target);
  }

  /**
   * Writes rows {@code [firstRow, firstRow + rowCount)} of the weight, row-major, as
   * {@code target}, into {@code destination} from byte {@code destinationOffset}. Safe to call
   * from several threads at once for different rows.
   *
   * @throws IllegalStateException if the weight has no scheme ({@link #problem()})
   * @throws IllegalArgumentException if {@code target} is not F64, F32, F16 or BF16
   * @throws IndexOutOfBoundsException if the rows lie outside the weight or the values outside
   *     {@code destination}
   * @throws java.io.UncheckedIOException wrapping a
   *     {@link dev.loadstone.checkpoint.CheckpointException} that names the file, the tensor and
   *     the rule, for a stored value the scheme rules out (a group index out of range, say)
   */
  public void dequantize(long firstRow, long rowCount, MemorySegment destination, long destinationOffset, DType target) {
    if (dequantizer == null) {
      throw new IllegalStateException(name + " cannot be dequantized: " + problem);
    }
    if (!RowEncoder.supports(target)) {
      throw new IllegalArgumentException(name + ": dequantizes to F64, F32, F16 or BF16, not " + target);
    }
    if (firstRow < 0 || rowCount < 0 || firstRow > shape[0] - rowCount) {
      throw new IndexOutOfBoundsException(name + ": rows [" + firstRow + ", " + (firstRow + rowCount)
          + ") lie outside its " + shape[0] + " rows");
    }
    int columns = (int) shape[1];
    long rowBytes = target.byteSize(columns);
    long bytes = Math.multiplyExact(rowBytes, rowCount);
    if (destinationOffset < 0 || destinationOffset > destination.byteSize() - bytes) {
      throw new IndexOutOfBoundsException(name + ": " + bytes + " bytes of " + target + " at offset "
          + destinationOffset + " do not fit a destination of " + destination.byteSize() + " bytes");
    }
    // Rows in steps of about 256 Ki values, so that what a step stages stays small.
    long step = Math.max(1, (256L << 10) / columns);
    RowEncoder encoder = new RowEncoder(target, columns);
    for (long row = firstRow; row < firstRow + rowCount; row += step) {
      int rows = (int) Math.min(step, firstRow + rowCount - row);
      dequantizer.dequantize(row, rows, (r, quantized, scales, ordinary) ->
          encoder.write(quantized, scales, columns, ordinary, destination, destinationOffset + (r - firstRow) * rowBytes));
    }
  }

  @Override
  public String toString() {
    return name + " " + dtype + java.util.Arrays.toString(shape) + " (" + scheme + ")";
  }
}
