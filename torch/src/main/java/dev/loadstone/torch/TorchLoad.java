package dev.loadstone.torch;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.LoadReport.Conversion;
import dev.loadstone.store.LoadReport.Mismatch;
import dev.loadstone.store.MappedPages;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
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
 * then copies chunk by chunk with {@code from_blob} + {@code copy_}.
 */
@SuppressWarnings("try") // a PointerScope or NoGradGuard acts by being open, unreferenced
final class TorchLoad {
  /**
   * Tensors are copied in chunks of about this many destination bytes, so each chunk's file
   * pages can be dropped once copied: resident memory then holds the parameters plus a chunk,
   * not the parameters plus the largest tensor's file pages.
   */
  private static final long CHUNK_BYTES = 8L << 20;

  private record Assignment(String name, Tensor target, DType targetDType, TensorView tensor) {}

  private final Module module;
  private final Checkpoint checkpoint;
  private final LoadOptions options;
  private final Optional<Device> device;
  private final long started = System.nanoTime();

  private final List<Assignment> assignments = new ArrayList<>();
  private final List<String> missing = new ArrayList<>();
  private final List<String> unexpected = new ArrayList<>();
  private final List<Mismatch> mismatches = new ArrayList<>();
  private final List<Conversion> conversions = new ArrayList<>();
  private final Map<String, String> renamed = new LinkedHashMap<>();

  TorchLoad(Module module, Checkpoint checkpoint, LoadOptions options, Optional<Device> device) {
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
      Map<String, Tensor> targets = TorchModules.namedTensors(module);
      plan(targets);
      if (options.strict() && (!missing.isEmpty() || !mismatches.isEmpty())) {
        LoadReport report = report(false);
        throw new LoadException("refusing to load " + checkpoint.path() + ": " + report.summary(), report, null);
      }
      device.ifPresent(d -> moveTo(d, targets));
      copy();
      return report(true);
    }
  }

  private void plan(Map<String, Tensor> targets) throws LoadException {
    Map<String, TensorView> byTarget = new HashMap<>();
    for (TensorView tensor : checkpoint.tensors()) {
      Optional<String> name = options.names().apply(tensor.name());
      if (name.isEmpty() || !targets.containsKey(name.get())) {
        unexpected.add(tensor.name());
        continue;
      }
      TensorView previous = byTarget.putIfAbsent(name.get(), tensor);
      if (previous != null) {
        throw new LoadException(checkpoint.path() + ": tensors '" + previous.name() + "' and '"
            + tensor.name() + "' both map to '" + name.get() + "' (" + options.names() + ")", report(false), null);
      }
      if (!name.get().equals(tensor.name())) {
        renamed.put(tensor.name(), name.get());
      }
    }
    for (Map.Entry<String, Tensor> entry : targets.entrySet()) {
      String name = entry.getKey();
      Tensor target = entry.getValue();
      TensorView tensor = byTarget.get(name);
      if (tensor == null) {
        missing.add(name);
        continue;
      }
      Path file = tensor.file().orElse(checkpoint.path());
      long[] shape = TorchTensors.shape(target);
      if (!Arrays.equals(shape, tensor.shape())) {
        mismatches.add(new Mismatch(name, tensor.name(), file, Mismatch.Kind.SHAPE,
            Arrays.toString(shape), Arrays.toString(tensor.shape())));
        continue;
      }
      ScalarType targetType = target.scalar_type();
      Optional<DType> targetDType = TorchTensors.dtype(targetType);
      if (targetDType.isEmpty()) {
        mismatches.add(new Mismatch(name, tensor.name(), file, Mismatch.Kind.DTYPE,
            targetType.name() + " (no safetensors dtype)", tensor.dtype().name()));
        continue;
      }
      if (!TorchTensors.canCopy(tensor.dtype(), targetDType.get())) {
        String why = TorchTensors.scalarType(tensor.dtype()).isEmpty() ? " (libtorch has no such dtype)"
            : " (libtorch cannot convert it)";
        mismatches.add(new Mismatch(name, tensor.name(), file, Mismatch.Kind.DTYPE,
            targetDType.get().name(), tensor.dtype().name() + why));
        continue;
      }
      if (tensor.dtype() != targetDType.get()) {
        conversions.add(new Conversion(name, tensor.dtype(), targetDType.get()));
      }
      assignments.add(new Assignment(name, target, targetDType.get(), tensor));
    }
  }

  /**
   * Moves every tensor of the module to {@code device}, as {@code module.to} does (set_data, so
   * the module's references stay valid); a tensor about to be loaded gets fresh memory there
   * rather than a copy of its old values.
   */
  private void moveTo(Device device, Map<String, Tensor> targets) {
    Map<String, Assignment> loading = new HashMap<>();
    assignments.forEach(a -> loading.put(a.name(), a));
    try (NoGradGuard noGrad = new NoGradGuard()) {
      moveTo(device, targets, loading);
    }
  }

  private static void moveTo(Device device, Map<String, Tensor> targets, Map<String, Assignment> loading) {
    for (Map.Entry<String, Tensor> entry : targets.entrySet()) {
      Tensor tensor = entry.getValue();
      if (tensor.device().equals(device)) {
        continue;
      }
      try (PointerScope scope = new PointerScope()) {
        Tensor moved = loading.containsKey(entry.getKey())
            ? torch.empty(TorchTensors.shape(tensor), new TensorOptions(device)
                .dtype(new ScalarTypeOptional(tensor.scalar_type())), new MemoryFormatOptional())
            : tensor.to(device, tensor.scalar_type());
        tensor.set_data(moved);
      }
    }
  }

  private record Chunk(Assignment assignment, Tensor flat, long first, long count) {}

  private void copy() throws LoadException {
    long bytesTotal = assignments.stream().mapToLong(a -> a.tensor().byteSize()).sum();
    try (PointerScope scope = new PointerScope()) {
      List<Chunk> chunks = new ArrayList<>();
      for (Assignment assignment : assignments) {
        Tensor target = assignment.target();
        long elements = assignment.tensor().elementCount();
        if (!target.is_contiguous()) {
          // A strided parameter (a transposed view, say): one copy_ of the whole tensor, which
          // libtorch lays out by the target's strides.
          chunks.add(new Chunk(assignment, null, 0, elements));
          continue;
        }
        Tensor flat = target.view(-1);
        long bytesPerElement = Math.max(assignment.tensor().dtype().bits(), assignment.targetDType().bits()) / 8;
        long chunkElements = Math.max(64, (CHUNK_BYTES / bytesPerElement) & -64L);
        for (long first = 0; first < elements; first += chunkElements) {
          chunks.add(new Chunk(assignment, flat, first, Math.min(chunkElements, elements - first)));
        }
      }
      AtomicInteger next = new AtomicInteger();
      AtomicLong done = new AtomicLong();
      AtomicReference<LoadException> failed = new AtomicReference<>();
      Workers.run(Math.min(options.threads(), Math.max(1, chunks.size())), () -> {
        int index;
        while (failed.get() == null && (index = next.getAndIncrement()) < chunks.size()) {
          Chunk chunk = chunks.get(index);
          Assignment assignment = chunk.assignment();
          try (PointerScope chunkScope = new PointerScope()) {
            copyChunk(chunk);
            long bytes = assignment.tensor().dtype().byteSize(chunk.count());
            options.progress().onProgress(done.addAndGet(bytes), bytesTotal, assignment.name());
          } catch (RuntimeException e) {
            failed.compareAndSet(null, failure(assignment, e));
          }
        }
      });
      if (failed.get() != null) {
        throw failed.get();
      }
    }
  }

  /** Copies one chunk's range of mapped bytes into its target, then drops the range's pages. */
  private void copyChunk(Chunk chunk) {
    TensorView tensor = chunk.assignment().tensor();
    long bytesPerElement = tensor.dtype().bits() / 8;
    MemorySegment source = tensor.segment().asSlice(chunk.first() * bytesPerElement, chunk.count() * bytesPerElement);
    if (!source.scope().isAlive()) {
      throw new IllegalStateException("the checkpoint is closed");
    }
    ScalarType type = TorchTensors.scalarType(tensor.dtype()).orElseThrow();
    boolean whole = chunk.flat() == null;
    Tensor target = whole ? chunk.assignment().target() : chunk.flat().narrow(0, chunk.first(), chunk.count());
    boolean mapped = source.isMapped();
    if (mapped) {
      MappedPages.populate(source);
    }
    target.copy_(TorchTensors.wrap(source, type, whole ? tensor.shape() : new long[] {chunk.count()}));
    if (mapped && options.releaseMappedPages()) {
      MappedPages.release(source);
    }
  }

  private LoadException failure(Assignment assignment, RuntimeException cause) {
    TensorView tensor = assignment.tensor();
    String file = tensor.file().map(Path::toString).orElse(checkpoint.path().toString());
    return new LoadException(file + ": tensor '" + tensor.name() + "': copying into '" + assignment.name()
        + "' failed: " + TorchModules.firstLine(cause), report(false), cause);
  }

  /** The report; a load that failed (or was refused) counts nothing as loaded. */
  private LoadReport report(boolean done) {
    List<String> loaded = done ? assignments.stream().map(Assignment::name).toList() : List.of();
    long bytesRead = done ? assignments.stream().mapToLong(a -> a.tensor().byteSize()).sum() : 0;
    long bytesWritten = done
        ? assignments.stream().mapToLong(a -> a.targetDType().byteSize(a.tensor().elementCount())).sum() : 0;
    return new LoadReport(options.mode(), loaded, missing, unexpected, mismatches, conversions, renamed,
        bytesRead, bytesWritten, (System.nanoTime() - started) / 1e9);
  }
}
