package dev.loadstone.torch;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.CheckpointWriter;
import dev.loadstone.engine.Declaration;
import dev.loadstone.engine.Parallel;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadOptions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.StringTensorDict;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Libtorch modules and checkpoints: a module's tensors by name, a module made from a
 * checkpoint's names and shapes, and a module saved as safetensors by the core writers.
 *
 * <pre>{@code
 * LinearImpl linear = new LinearImpl(1024, 4096);
 * TorchModules.save(linear, Path.of("linear.safetensors"), Map.of("format", "pt"));
 * }</pre>
 */
@SuppressWarnings("try") // a PointerScope or NoGradGuard acts by being open, unreferenced
public final class TorchModules {
  private static final long ZERO_CHUNK_BYTES = 8L << 20;

  private TorchModules() {}

  /**
   * Every parameter, then every buffer, of a module and its submodules, by dotted name
   * ({@code "0.weight"}, {@code "layer.bias"}), as libtorch names them. The tensors are the
   * module's own (writing them writes the module).
   */
  public static Map<String, Tensor> namedTensors(Module module) {
    Libtorch.load();
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    try (StringTensorDict parameters = module.named_parameters(true);
        StringTensorDict buffers = module.named_buffers(true)) {
      addAll(tensors, parameters);
      addAll(tensors, buffers);
    }
    return tensors;
  }

  private static void addAll(Map<String, Tensor> tensors, StringTensorDict dict) {
    for (long i = 0; i < dict.size(); i++) {
      var item = dict.get(i);
      // value() points into the dictionary, which may be freed before the caller is done: an
      // owned handle to the same tensor outlives it.
      tensors.putIfAbsent(item.key().getString(), new Tensor(item.value()));
    }
  }

  /**
   * A module with one zero-filled tensor per checkpoint tensor, as a model's constructor would
   * make it (allocated and written, on {@link LoadOptions#threads()} threads), not yet loaded:
   * names mapped by {@code options}, float tensors converted to {@link LoadOptions#createDType()}
   * when set, a quantized weight one tensor of its logical shape and dtype (dequantized on load).
   * Float and complex tensors
   * become parameters, integer and BOOL tensors buffers (libtorch gives no gradient to those).
   * Dotted names become submodules: {@code "model.norm.weight"} is parameter {@code weight} of
   * submodule {@code norm} of submodule {@code model}.
   *
   * @param device {@code cpu}, {@code cuda} or {@code cuda:N}
   * @throws IllegalArgumentException if a tensor's dtype has no libtorch type, a name cannot be
   *     a libtorch name (an empty part), or the device is not available
   * @throws UncheckedIOException wrapping a {@link dev.loadstone.checkpoint.CheckpointException}
   *     if the checkpoint's quantization configuration cannot be read
   */
  public static Module create(Checkpoint checkpoint, LoadOptions options, String device) {
    return create(checkpoint, options, Libtorch.device(device), true);
  }

  static Module create(Checkpoint checkpoint, LoadOptions options, Device device, boolean zero) {
    Module root = new Module();
    // Frees the handles made here (the module keeps its tensors and submodules), not the root.
    try (PointerScope scope = new PointerScope()) {
      populate(root, checkpoint, options, device, zero);
    } catch (RuntimeException e) {
      root.close();
      throw e;
    }
    return root;
  }

  private static void populate(Module root, Checkpoint checkpoint, LoadOptions options, Device device, boolean zero) {
    Map<String, Module> modules = new HashMap<>();
    modules.put("", root);
    List<Tensor> created = new ArrayList<>();
    List<Declaration> declarations;
    try {
      declarations = Declaration.of(checkpoint, options);
    } catch (IOException e) {
      throw new UncheckedIOException(e.getMessage(), e);
    }
    for (Declaration declaration : declarations) {
      DType dtype = declaration.dtype();
      String name = declaration.name();
      ScalarType type = TorchTensors.scalarType(dtype).orElseThrow(() -> new IllegalArgumentException(
          name + ": libtorch has no " + dtype + " tensors"));
      Tensor value = torch.empty(declaration.shape(), new TensorOptions(device).dtype(new ScalarTypeOptional(type)),
          new MemoryFormatOptional());
      int dot = name.lastIndexOf('.');
      String leaf = name.substring(dot + 1);
      try {
        Module owner = module(modules, dot < 0 ? "" : name.substring(0, dot));
        if (dtype.isFloatingPoint() || dtype == DType.C64) {
          owner.register_parameter(leaf, value);
        } else {
          owner.register_buffer(leaf, value);
        }
      } catch (RuntimeException e) {
        throw new IllegalArgumentException("tensor '" + name + "' cannot be registered: " + firstLine(e), e);
      }
      created.add(value);
    }
    if (zero) {
      zero(created, options.threads());
    }
  }

  /** Zero-fills the tensors in chunks on {@code threads} threads: first touch of the memory. */
  private static void zero(List<Tensor> tensors, int threads) {
    record Chunk(Tensor flat, long first, long count) {}
    List<Chunk> chunks = new ArrayList<>();
    for (Tensor tensor : tensors) {
      Tensor flat = tensor.view(-1);
      long elements = flat.numel();
      long chunkElements = Math.max(64, (ZERO_CHUNK_BYTES / flat.element_size()) & -64L);
      for (long first = 0; first < elements; first += chunkElements) {
        chunks.add(new Chunk(flat, first, Math.min(chunkElements, elements - first)));
      }
    }
    LibtorchThreads.keepingThreadSetting(() -> Parallel.forEach(chunks, threads, LibtorchThreads::caller, chunk -> {
      try (PointerScope scope = new PointerScope()) {
        chunk.flat().narrow(0, chunk.first(), chunk.count()).zero_();
      }
    }));
  }

  /** The submodule of this dotted path, created (and registered with its parent) if missing. */
  private static Module module(Map<String, Module> modules, String path) {
    Module existing = modules.get(path);
    if (existing != null) {
      return existing;
    }
    int dot = path.lastIndexOf('.');
    Module parent = module(modules, dot < 0 ? "" : path.substring(0, dot));
    Module child = parent.register_module(path.substring(dot + 1), new Module());
    modules.put(path, child);
    return child;
  }

  /**
   * Saves every parameter and buffer of a module to one safetensors file with
   * {@link SafeTensorsWriter}, atomically, by the names of {@link #namedTensors}. Tensors on
   * another device, or not contiguous, are copied to the CPU first, one at a time.
   *
   * @param metadata the {@code __metadata__} map, or {@code null} for none
   * @throws IllegalArgumentException if a tensor's dtype has no safetensors dtype
   */
  public static void save(Module module, Path file, Map<String, String> metadata) throws IOException {
    try (PointerScope scope = new PointerScope()) {
      SafeTensorsWriter.write(file, metadata, views(module));
    }
  }

  /**
   * Saves every parameter and buffer of a module as a model directory with
   * {@link CheckpointWriter}: one {@code model.safetensors}, or shards of at most
   * {@code maxShardSize} bytes and an index.
   */
  public static void save(Module module, Path directory, Map<String, String> metadata, long maxShardSize)
      throws IOException {
    try (PointerScope scope = new PointerScope()) {
      CheckpointWriter.write(directory, metadata, views(module), maxShardSize);
    }
  }

  /** Views of the module's tensors in CPU memory; the caller's pointer scope keeps copies alive. */
  private static List<TensorView> views(Module module) {
    List<TensorView> views = new ArrayList<>();
    for (Map.Entry<String, Tensor> entry : namedTensors(module).entrySet()) {
      Tensor tensor = entry.getValue();
      if (!tensor.is_cpu()) {
        tensor = tensor.to(TorchTensors.cpu(), tensor.scalar_type());
      }
      if (!tensor.is_contiguous()) {
        tensor = tensor.contiguous();
      }
      views.add(TorchTensors.asView(entry.getKey(), tensor));
    }
    return views;
  }

  static String firstLine(RuntimeException e) {
    String message = String.valueOf(e.getMessage());
    int end = message.indexOf('\n');
    return end < 0 ? message : message.substring(0, end);
  }
}
