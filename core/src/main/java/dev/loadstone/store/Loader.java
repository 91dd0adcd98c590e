package dev.loadstone.store;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadReport.Conversion;
import dev.loadstone.store.LoadReport.Mismatch;
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

/**
 * One load: pairs checkpoint tensors with variables, checks every pair before writing anything,
 * then copies in parallel (or binds aliases).
 */
final class Loader {
  /** Work is split into chunks of about this many destination bytes, so all threads stay busy. */
  private static final long CHUNK_BYTES = 8L << 20;

  private record Assignment(Variable variable, TensorView tensor) {}

  private record Chunk(Assignment assignment, long first, long count) {}

  private final VarStore store;
  private final Checkpoint checkpoint;
  private final LoadOptions options;
  private final long started = System.nanoTime();

  private final List<Assignment> assignments = new ArrayList<>();
  private final List<String> missing = new ArrayList<>();
  private final List<String> unexpected = new ArrayList<>();
  private final List<Mismatch> mismatches = new ArrayList<>();
  private final List<Conversion> conversions = new ArrayList<>();
  private final Map<String, String> renamed = new LinkedHashMap<>();

  Loader(VarStore store, Checkpoint checkpoint, LoadOptions options) {
    this.store = store;
    this.checkpoint = checkpoint;
    this.options = options;
  }

  LoadReport run() throws LoadException {
    plan();
    if (options.strict() && (!missing.isEmpty() || !mismatches.isEmpty())) {
      LoadReport report = report();
      throw new LoadException("refusing to load " + checkpoint.path() + ": " + report.summary(), report, null);
    }
    for (Assignment assignment : assignments) {
      assignment.variable().markLoaded(false);
    }
    long bytesRead = assignments.stream().mapToLong(a -> a.tensor().byteSize()).sum();
    long bytesWritten = 0;
    if (options.mode() == LoadMode.ALIAS) {
      bindAliases();
    } else {
      bytesWritten = assignments.stream().mapToLong(a -> a.variable().byteSize()).sum();
      copy(bytesRead);
    }
    for (Assignment assignment : assignments) {
      assignment.variable().markLoaded(true);
    }
    return report(bytesRead, bytesWritten);
  }

  private void plan() throws LoadException {
    Map<String, TensorView> byVariable = new HashMap<>();
    for (TensorView tensor : checkpoint.tensors()) {
      Optional<String> name = options.names().apply(tensor.name());
      if (name.isEmpty() || store.find(name.get()).isEmpty()) {
        unexpected.add(tensor.name());
        continue;
      }
      TensorView previous = byVariable.putIfAbsent(name.get(), tensor);
      if (previous != null) {
        LoadReport report = report();
        throw new LoadException(checkpoint.path() + ": tensors '" + previous.name() + "' and '"
            + tensor.name() + "' both map to variable '" + name.get() + "' (" + options.names() + ")",
            report, null);
      }
      if (!name.get().equals(tensor.name())) {
        renamed.put(tensor.name(), name.get());
      }
    }
    for (Variable variable : store.snapshot()) {
      TensorView tensor = byVariable.get(variable.name());
      if (tensor == null) {
        missing.add(variable.name());
        continue;
      }
      Path file = tensor.file().orElse(checkpoint.path());
      if (!Arrays.equals(tensor.shape(), variable.shape())) {
        mismatches.add(new Mismatch(variable.name(), tensor.name(), file, Mismatch.Kind.SHAPE,
            Arrays.toString(variable.shape()), Arrays.toString(tensor.shape())));
        continue;
      }
      boolean sameDType = tensor.dtype() == variable.dtype();
      boolean convertible = options.mode() == LoadMode.COPY && tensor.canCopyTo(variable.dtype());
      if (!sameDType && !convertible) {
        mismatches.add(new Mismatch(variable.name(), tensor.name(), file, Mismatch.Kind.DTYPE,
            variable.dtype().name(), tensor.dtype().name()
                + (options.mode() == LoadMode.ALIAS ? " (ALIAS needs equal dtypes)" : " (no conversion)")));
        continue;
      }
      if (!sameDType) {
        conversions.add(new Conversion(variable.name(), tensor.dtype(), variable.dtype()));
      }
      assignments.add(new Assignment(variable, tensor));
    }
  }

  private void bindAliases() throws LoadException {
    for (Assignment assignment : assignments) {
      TensorView tensor = assignment.tensor();
      if (!tensor.segment().scope().isAlive()) {
        throw failure(assignment, new IllegalStateException("the checkpoint is closed"));
      }
      assignment.variable().bindAlias(tensor.segment());
    }
  }

  private void copy(long bytesTotal) throws LoadException {
    List<Chunk> chunks = new ArrayList<>();
    for (Assignment assignment : assignments) {
      store.allocate(assignment.variable(), false);
      long elements = assignment.variable().elementCount();
      long bytesPerElement = Math.max(1, assignment.variable().dtype().bits() / 8);
      // A multiple of 64 elements keeps every chunk byte-aligned, sub-byte dtypes included.
      long chunkElements = Math.max(64, (CHUNK_BYTES / bytesPerElement) & -64L);
      for (long first = 0; first < elements; first += chunkElements) {
        chunks.add(new Chunk(assignment, first, Math.min(chunkElements, elements - first)));
      }
    }
    AtomicInteger next = new AtomicInteger();
    AtomicLong done = new AtomicLong();
    AtomicReference<LoadException> failed = new AtomicReference<>();
    boolean release = options.releaseMappedPages();
    LoadProgress progress = options.progress();
    Parallel.run(Math.min(options.threads(), Math.max(1, chunks.size())), () -> {
      int index;
      while (failed.get() == null && (index = next.getAndIncrement()) < chunks.size()) {
        Chunk chunk = chunks.get(index);
        Assignment assignment = chunk.assignment();
        TensorView tensor = assignment.tensor();
        Variable variable = assignment.variable();
        try {
          long sourceOffset = tensor.dtype().byteSize(chunk.first());
          long sourceBytes = tensor.dtype().byteSize(chunk.count());
          MemorySegment source = tensor.segment().asSlice(sourceOffset, sourceBytes);
          boolean mapped = source.isMapped() && source.isReadOnly();
          if (mapped) {
            MappedPages.populate(source);
          }
          long targetOffset = variable.dtype().byteSize(chunk.first());
          tensor.copyRangeTo(chunk.first(), chunk.count(), variable.memoryOrNull(), targetOffset, variable.dtype());
          if (release && mapped) {
            MappedPages.release(source);
          }
          progress.onProgress(done.addAndGet(sourceBytes), bytesTotal, variable.name());
        } catch (RuntimeException | InternalError e) {
          // InternalError: the JVM's report of a fault in mapped memory, e.g. a file truncated
          // after it was mapped.
          failed.compareAndSet(null, failure(assignment, e));
        }
      }
    });
    if (failed.get() != null) {
      throw failed.get();
    }
  }

  private LoadException failure(Assignment assignment, Throwable cause) {
    TensorView tensor = assignment.tensor();
    String file = tensor.file().map(Path::toString).orElse(checkpoint.path().toString());
    return new LoadException(file + ": tensor '" + tensor.name() + "': reading failed while loading variable '"
        + assignment.variable().name() + "': " + cause.getMessage(), report(), cause);
  }

  /** The report of a load that failed before or while writing: nothing counts as loaded. */
  private LoadReport report() {
    return new LoadReport(options.mode(), List.of(), missing, unexpected, mismatches, conversions, renamed,
        0, 0, (System.nanoTime() - started) / 1e9);
  }

  private LoadReport report(long bytesRead, long bytesWritten) {
    List<String> loaded = assignments.stream().map(a -> a.variable().name()).toList();
    return new LoadReport(options.mode(), loaded, missing, unexpected, mismatches, conversions, renamed,
        bytesRead, bytesWritten, (System.nanoTime() - started) / 1e9);
  }
}
