package dev.loadstone.torch;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.engine.ChunkedCopy;
import dev.loadstone.engine.LoadPlan;
import dev.loadstone.engine.LoadPlan.Assignment;
import dev.loadstone.engine.LoadPlan.Target;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * One load into a module, the libtorch counterpart of the core's loader: pairs checkpoint
 * tensors with the module's parameters and buffers, checks every pair before writing anything,
 * then copies chunk by chunk (the core's load engine: {@link LoadPlan}, {@link ChunkedCopy}) with
 * {@code from_blob} + {@code copy_}, or, where that gives the same bits, with Loadstone's own
 * copy into the tensor's host memory.
 */
@SuppressWarnings("try") // a PointerScope or NoGradGuard acts by being open, unreferenced
final class ModuleLoad {
  private final Module module;
  private final Checkpoint checkpoint;
  private final LoadOptions options;
  private final Optional<Device> device;

  ModuleLoad(Module module, Checkpoint checkpoint, LoadOptions options, Optional<Device> device) {
    TorchLoader.requireCopyMode(options);
    Libtorch.load();
    this.module = module;
    this.checkpoint = checkpoint;
    this.options = options;
    this.device = device;
  }

  LoadReport run() throws LoadException {
    // The scope frees this load's tensor handles (not the tensors, which the module holds) at
    // once rather than whenever the garbage collector gets to them.
    try (PointerScope scope = new PointerScope()) {
      Map<String, Target<Tensor>> targets = new LinkedHashMap<>();
      TorchModules.namedTensors(module).forEach((name, tensor) -> {
        ScalarType type = tensor.scalar_type();
        targets.put(name, new Target<>(tensor, TorchTensors.shape(tensor), TorchTensors.dtype(type), type.name()));
      });
      LoadPlan<Tensor> plan = LoadPlan.create(checkpoint, options, targets, ModuleLoad::refusal,
          cannotDequantize(targets));
      plan.requireAcceptable();
      device.ifPresent(d -> moveTo(d, targets, plan.assignments()));
      LibtorchThreads.keepingThreadSetting(() -> new ChunkedCopy<>(plan, options)
          .perThread(LibtorchThreads::caller)
          .wholeOnly(assignment -> !assignment.target().handle().is_contiguous())
          .destinations((assignment, first, count) -> copiedOnHost(assignment)
              ? Optional.of(hostMemory(assignment).asSlice(assignment.targetDType().byteSize(first),
                  assignment.targetDType().byteSize(count)))
              : Optional.empty())
          .run(ModuleLoad::copyChunk));
      return plan.report(true);
    }
  }

  /**
   * Why this load cannot dequantize, if it cannot: quantized weights are computed by Loadstone
   * into the tensors' host memory, so every tensor must be a contiguous CPU tensor and stay one.
   */
  private Optional<String> cannotDequantize(Map<String, Target<Tensor>> targets) {
    if (device.isPresent() && !device.get().is_cpu()) {
      return Optional.of("the libtorch backend dequantizes into CPU tensors only (load on the CPU, then move the module)");
    }
    for (Map.Entry<String, Target<Tensor>> entry : targets.entrySet()) {
      Tensor tensor = entry.getValue().handle();
      if (!tensor.is_cpu() || !tensor.is_contiguous()) {
        return Optional.of("the libtorch backend dequantizes into contiguous CPU tensors only, and '"
            + entry.getKey() + "' is " + (tensor.is_cpu() ? "strided" : "not on the CPU"));
      }
    }
    return Optional.empty();
  }

  private static Optional<String> refusal(TensorView tensor, DType target) {
    if (TorchTensors.canCopy(tensor.dtype(), target)) {
      return Optional.empty();
    }
    return Optional.of(TorchTensors.scalarType(tensor.dtype()).isEmpty() ? "libtorch has no such dtype"
        : "libtorch cannot convert it");
  }

  /**
   * Moves every tensor of the module to {@code device}, as {@code module.to} does (set_data, so
   * the module's references stay valid); a tensor about to be loaded gets fresh memory there
   * rather than a copy of its old values.
   */
  private static void moveTo(Device device, Map<String, Target<Tensor>> targets,
      List<Assignment<Tensor>> assignments) {
    Set<String> loading = new HashSet<>();
    assignments.forEach(a -> loading.add(a.name()));
    try (NoGradGuard noGrad = new NoGradGuard()) {
      for (Map.Entry<String, Target<Tensor>> entry : targets.entrySet()) {
        Tensor tensor = entry.getValue().handle();
        if (tensor.device().equals(device)) {
          continue;
        }
        try (PointerScope scope = new PointerScope()) {
          Tensor moved = loading.contains(entry.getKey())
              ? torch.empty(TorchTensors.shape(tensor), new TensorOptions(device)
                  .dtype(new ScalarTypeOptional(tensor.scalar_type())), new MemoryFormatOptional())
              : tensor.to(device, tensor.scalar_type());
          tensor.set_data(moved);
        }
      }
    }
  }

  /**
   * Copies elements {@code [first, first + count)} of the tensor into its target: into host
   * memory by Loadstone's own copy where that gives libtorch's result bit for bit (see
   * {@link #copiedOnHost}), else with {@code from_blob} over the mapped bytes and {@code copy_};
   * a strided target is copied whole.
   */
  private static void copyChunk(Assignment<Tensor> assignment, long first, long count, MemorySegment source) {
    TensorView tensor = assignment.tensor();
    Tensor target = assignment.target().handle();
    try (PointerScope scope = new PointerScope()) {
      if (copiedOnHost(assignment)) {
        DType to = assignment.targetDType();
        MemorySegment storage = hostMemory(assignment);
        ChunkedCopy.chunkView(assignment, count, source).copyRangeTo(0, count, storage, to.byteSize(first), to);
        return;
      }
      // libtorch reads the mapping natively, outside the arena's protection: check first.
      if (!source.scope().isAlive()) {
        throw new IllegalStateException("the checkpoint is closed");
      }
      ScalarType type = TorchTensors.scalarType(tensor.dtype()).orElseThrow();
      boolean whole = first == 0 && count == tensor.elementCount();
      Tensor destination = whole ? target : target.view(-1).narrow(0, first, count);
      destination.copy_(TorchTensors.wrap(source, type, whole ? tensor.shape() : new long[] {count}));
    }
  }

  /** The target's memory on the host, as a segment of its size (for {@link #copiedOnHost} targets). */
  private static MemorySegment hostMemory(Assignment<Tensor> assignment) {
    Tensor target = assignment.target().handle();
    try (PointerScope scope = new PointerScope()) {
      return MemorySegment.ofAddress(target.data_ptr().address())
          .reinterpret(assignment.targetDType().byteSize(assignment.elementCount()));
    }
  }

  /**
   * Whether a tensor is copied by Loadstone rather than by {@code copy_}: a dequantized weight, or into contiguous CPU
   * memory, as the same dtype or BF16 or F16 widened to F32, copies whose result is the same bits
   * whoever makes them (a test compares the widenings with libtorch's for every input).
   * Loadstone's copy writes with streaming stores (the BF16 widening runs about 1.4x faster than
   * libtorch's on the benchmark checkpoint), and a file truncated under it is an exception
   * rather than a fault in native code.
   */
  private static boolean copiedOnHost(Assignment<Tensor> assignment) {
    if (assignment.dequantized().isPresent()) {
      return true;   // planned only for contiguous CPU tensors (cannotDequantize)
    }
    DType from = assignment.tensor().dtype();
    DType to = assignment.targetDType();
    Tensor target = assignment.target().handle();
    boolean widening = (from == DType.BF16 || from == DType.F16) && to == DType.F32;
    return (from == to || widening) && target.is_cpu() && target.is_contiguous();
  }
}
