package dev.loadstone.torch;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import java.lang.foreign.MemorySegment;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Safetensors dtypes as libtorch scalar types, and tensors over memory libtorch does not own.
 *
 * <pre>{@code
 * try (Checkpoint checkpoint = Checkpoint.open(dir);
 *      MappedTensor w = TorchTensors.view(checkpoint.tensor("lm_head.weight"))) {
 *   Tensor rows = w.tensor().narrow(0, 0, 8).to(ScalarType.Float);   // reads the mapping
 * }
 * }</pre>
 *
 * <p>Every dtype libtorch has maps: BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32,
 * F64, C64 and the 8-bit floats F8_E4M3 ({@code Float8_e4m3fn}), F8_E5M2, F8_E4M3FNUZ,
 * F8_E5M2FNUZ and F8_E8M0 ({@code Float8_e8m0fnu}). The 6-bit floats have no libtorch type, and
 * F4 is left out: libtorch's {@code Float4_e2m1fn_x2} counts pairs, so its shapes differ from
 * the file's.
 */
@SuppressWarnings("try") // a PointerScope or NoGradGuard acts by being open, unreferenced
public final class TorchTensors {
  private static final Map<DType, ScalarType> SCALAR_TYPES = new EnumMap<>(Map.ofEntries(
      Map.entry(DType.BOOL, ScalarType.Bool),
      Map.entry(DType.U8, ScalarType.Byte),
      Map.entry(DType.I8, ScalarType.Char),
      Map.entry(DType.I16, ScalarType.Short),
      Map.entry(DType.U16, ScalarType.UInt16),
      Map.entry(DType.I32, ScalarType.Int),
      Map.entry(DType.U32, ScalarType.UInt32),
      Map.entry(DType.I64, ScalarType.Long),
      Map.entry(DType.U64, ScalarType.UInt64),
      Map.entry(DType.F16, ScalarType.Half),
      Map.entry(DType.BF16, ScalarType.BFloat16),
      Map.entry(DType.F32, ScalarType.Float),
      Map.entry(DType.F64, ScalarType.Double),
      Map.entry(DType.C64, ScalarType.ComplexFloat),
      Map.entry(DType.F8_E4M3, ScalarType.Float8_e4m3fn),
      Map.entry(DType.F8_E5M2, ScalarType.Float8_e5m2),
      Map.entry(DType.F8_E4M3FNUZ, ScalarType.Float8_e4m3fnuz),
      Map.entry(DType.F8_E5M2FNUZ, ScalarType.Float8_e5m2fnuz),
      Map.entry(DType.F8_E8M0, ScalarType.Float8_e8m0fnu)));
  /**
   * Keyed by {@link ScalarType#value}: JavaCPP returns a fresh enum object for each scalar type
   * a native call returns, so identity, {@code ordinal()} and {@code EnumMap} cannot be trusted.
   */
  private static final Map<Byte, DType> DTYPES = new HashMap<>();
  /** Which copies libtorch can convert, asked of libtorch itself once per pair. */
  private static final Map<Long, Boolean> CONVERTIBLE = new ConcurrentHashMap<>();

  static {
    SCALAR_TYPES.forEach((dtype, scalarType) -> DTYPES.put(scalarType.value, dtype));
  }

  private TorchTensors() {}

  /** The libtorch scalar type of a dtype, or empty where libtorch has none (F6_E2M3, F6_E3M2, F4). */
  public static Optional<ScalarType> scalarType(DType dtype) {
    return Optional.ofNullable(SCALAR_TYPES.get(dtype));
  }

  /**
   * The dtype of a libtorch scalar type, or empty where safetensors has none (quantized, complex
   * double, ...). Compare scalar types by {@link ScalarType#value}, not {@code ==}: JavaCPP
   * makes a new enum object for each one a native call returns.
   */
  public static Optional<DType> dtype(ScalarType scalarType) {
    return Optional.ofNullable(DTYPES.get(scalarType.value));
  }

  /**
   * Whether {@code copy_} can fill a tensor of dtype {@code to} from one of dtype {@code from}.
   * Libtorch is asked once per pair with a one-element copy. Complex to real counts as not
   * convertible: libtorch would drop the imaginary part with only a warning.
   */
  public static boolean canCopy(DType from, DType to) {
    if (from == to) {
      return scalarType(from).isPresent();
    }
    Optional<ScalarType> source = scalarType(from);
    Optional<ScalarType> target = scalarType(to);
    if (source.isEmpty() || target.isEmpty() || (from == DType.C64 && to != DType.C64)) {
      return false;
    }
    long key = ((long) from.ordinal() << 32) | to.ordinal();
    return CONVERTIBLE.computeIfAbsent(key, k -> probe(source.get(), target.get()));
  }

  private static boolean probe(ScalarType from, ScalarType to) {
    Libtorch.load();
    try (PointerScope scope = new PointerScope()) {
      Tensor source = torch.zeros(new long[] {1}, new TensorOptions(from));
      torch.empty(new long[] {1}, new TensorOptions(to), new MemoryFormatOptional()).copy_(source);
      return true;
    } catch (RuntimeException e) {
      return false;
    }
  }

  /**
   * A zero-copy libtorch tensor over the bytes of a view of a checkpoint (or of any native
   * memory): {@code from_blob}, nothing copied, nothing owned.
   *
   * <p>The lifetime rule: the memory belongs to the checkpoint, so the tensor is readable only
   * while the checkpoint stays open, and must never be written (the mapping is read-only: a
   * write in place would crash the JVM). The returned handle enforces what it can:
   * {@link MappedTensor#tensor()} throws {@link IllegalStateException} once the checkpoint is
   * closed, and {@link MappedTensor#close()} detaches the tensor from the mapping. Tensors
   * derived from it ({@code narrow}, {@code view}, ...) share the mapping and are not tracked:
   * copy what must outlive the checkpoint ({@code clone()}, {@code to(...)}).
   *
   * @throws IllegalArgumentException if libtorch has no such dtype, or the view is not in
   *     native memory (a view of a Java array)
   * @throws IllegalStateException if the view's file is already closed
   */
  public static MappedTensor view(TensorView view) {
    ScalarType type = scalarType(view.dtype()).orElseThrow(() -> new IllegalArgumentException(
        view.name() + ": libtorch has no " + view.dtype() + " tensors"));
    MemorySegment data = view.segment();
    if (!data.isNative()) {
      throw new IllegalArgumentException(view.name() + ": not in native memory; libtorch can only wrap native memory");
    }
    if (!data.scope().isAlive()) {
      throw new IllegalStateException(view.file().map(Object::toString).orElse("the memory")
          + " is closed; tensor '" + view.name() + "' can no longer be read");
    }
    return new MappedTensor(view, wrap(data, type, view.shape()));
  }

  /** {@code at::from_blob} over native memory, as a tensor of {@code type} and {@code shape}. */
  static Tensor wrap(MemorySegment data, ScalarType type, long[] shape) {
    Libtorch.load();
    return torch.from_blob(pointerTo(data.address()), shape, new TensorOptions(type));
  }

  /**
   * A JavaCPP pointer to a native address. JavaCPP has no {@code Pointer(long)}: the address is
   * set by an instance initializer (whose captured variable must not be called
   * {@code address}, or it would read the field and yield a null pointer).
   */
  private static Pointer pointerTo(long nativeAddress) {
    return new Pointer() {
      {
        address = nativeAddress;
      }
    };
  }

  /**
   * A view of a CPU-resident, contiguous libtorch tensor's memory, for writing it with the core
   * writers. The view is valid while {@code tensor} is alive and unchanged.
   *
   * @throws IllegalArgumentException if safetensors has no dtype for the tensor, or the tensor
   *     is not a contiguous CPU tensor
   */
  static TensorView asView(String name, Tensor tensor) {
    DType dtype = dtype(tensor.scalar_type()).orElseThrow(() -> new IllegalArgumentException(
        name + ": safetensors has no dtype for libtorch's " + tensor.scalar_type()));
    if (!tensor.is_cpu() || !tensor.is_contiguous()) {
      throw new IllegalArgumentException(name + ": not a contiguous CPU tensor");
    }
    long bytes = tensor.nbytes();
    MemorySegment data = bytes == 0 ? MemorySegment.NULL
        : MemorySegment.ofAddress(tensor.data_ptr().address()).reinterpret(bytes);
    return TensorView.of(name, dtype, shape(tensor), data);
  }

  /** A tensor's shape. */
  static long[] shape(Tensor tensor) {
    return tensor.sizes().vec().get();
  }

  /** The CPU device. */
  static Device cpu() {
    return new Device(torch.DeviceType.CPU);
  }
}
