package dev.loadstone.engine;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorSource;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.LoadReport.Conversion;
import dev.loadstone.store.LoadReport.Mismatch;
import dev.loadstone.store.NameMapping;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * The plan of a load, whatever it loads into: pairs a checkpoint's tensors with named targets
 * through the {@link NameMapping}, sorts out what is missing, unexpected and mismatched (shapes
 * exactly, never broadcast), refuses a strict load before anything is written, and reports in
 * the user's terms ({@link LoadReport}, {@link LoadException}). {@link ChunkedCopy} then copies
 * the pairs. {@code VarStore.load} plans its variables this way; the libtorch backend plans a
 * module's tensors, supplying only which conversions it can make and how a chunk is copied.
 *
 * <pre>{@code
 * LoadPlan<MyTensor> plan = LoadPlan.create(checkpoint, options, targets, backend::refusal);
 * plan.requireAcceptable();                         // strict: throws with the whole report
 * new ChunkedCopy<>(plan, options).run((assignment, first, count, source) -> ...);
 * LoadReport report = plan.report(true);
 * }</pre>
 *
 * @param <T> the backend's handle for a target (a variable, a libtorch tensor)
 */
public final class LoadPlan<T> {

  /**
   * A destination of a load.
   *
   * @param handle what the backend writes
   * @param shape its dimensions
   * @param dtype its dtype, or empty where the format has no such dtype (never paired then)
   * @param dtypeName the dtype's name for reports
   */
  public record Target<T>(T handle, long[] shape, Optional<DType> dtype, String dtypeName) {
    /** A target whose dtype is one of the format's. */
    public static <T> Target<T> of(T handle, long[] shape, DType dtype) {
      return new Target<>(handle, shape, Optional.of(dtype), dtype.name());
    }
  }

  /** A checkpoint tensor paired with the target it fills. @param name the target's name */
  public record Assignment<T>(String name, Target<T> target, TensorView tensor) {
    /** The target's dtype. */
    public DType targetDType() {
      return target.dtype().orElseThrow();
    }
  }

  /**
   * Whether a backend can copy a tensor into a dtype.
   */
  @FunctionalInterface
  public interface Copyability {
    /** Why {@code tensor} cannot be copied into {@code target} (for the report), or empty if it can. */
    Optional<String> refusal(TensorView tensor, DType target);
  }

  private final TensorSource checkpoint;
  private final LoadOptions options;
  private final long started = System.nanoTime();
  private final List<Assignment<T>> assignments = new ArrayList<>();
  private final List<String> missing = new ArrayList<>();
  private final List<String> unexpected = new ArrayList<>();
  private final List<Mismatch> mismatches = new ArrayList<>();
  private final List<Conversion> conversions = new ArrayList<>();
  private final Map<String, String> renamed = new LinkedHashMap<>();
  private final Set<Path> readDirectly = new TreeSet<>();

  private LoadPlan(TensorSource checkpoint, LoadOptions options) {
    this.checkpoint = checkpoint;
    this.options = options;
  }

  /**
   * Pairs the tensors of {@code checkpoint} (a model directory or a single file) with
   * {@code targets} (in the order given, which the report keeps).
   *
   * @throws LoadException if two tensors map to one target
   */
  public static <T> LoadPlan<T> create(TensorSource checkpoint, LoadOptions options,
      Map<String, Target<T>> targets, Copyability copyability) throws LoadException {
    LoadPlan<T> plan = new LoadPlan<>(checkpoint, options);
    plan.pair(targets, copyability);
    return plan;
  }

  private void pair(Map<String, Target<T>> targets, Copyability copyability) throws LoadException {
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
    for (Map.Entry<String, Target<T>> entry : targets.entrySet()) {
      String name = entry.getKey();
      Target<T> target = entry.getValue();
      TensorView tensor = byTarget.get(name);
      if (tensor == null) {
        missing.add(name);
        continue;
      }
      Path file = tensor.file().orElse(checkpoint.path());
      if (!Arrays.equals(target.shape(), tensor.shape())) {
        mismatches.add(new Mismatch(name, tensor.name(), file, Mismatch.Kind.SHAPE,
            Arrays.toString(target.shape()), Arrays.toString(tensor.shape())));
        continue;
      }
      if (target.dtype().isEmpty()) {
        mismatches.add(new Mismatch(name, tensor.name(), file, Mismatch.Kind.DTYPE,
            target.dtypeName() + " (no safetensors dtype)", tensor.dtype().name()));
        continue;
      }
      DType targetDType = target.dtype().get();
      Optional<String> refusal = tensor.dtype() == targetDType ? Optional.empty()
          : copyability.refusal(tensor, targetDType);
      if (refusal.isPresent()) {
        mismatches.add(new Mismatch(name, tensor.name(), file, Mismatch.Kind.DTYPE,
            targetDType.name(), tensor.dtype().name() + " (" + refusal.get() + ")"));
        continue;
      }
      if (tensor.dtype() != targetDType) {
        conversions.add(new Conversion(name, tensor.dtype(), targetDType));
      }
      assignments.add(new Assignment<>(name, target, tensor));
    }
  }

  /** The checkpoint this plan loads from. */
  public TensorSource source() {
    return checkpoint;
  }

  /** Notes the files that were read with positional reads, for the report. */
  void noteReadDirectly(Set<Path> files) {
    readDirectly.addAll(files);
  }

  /** The pairs to load, in the order of the targets. */
  public List<Assignment<T>> assignments() {
    return assignments;
  }

  /**
   * In strict mode, refuses a plan with missing or mismatched targets.
   *
   * @throws LoadException carrying the whole report, before anything is written
   */
  public void requireAcceptable() throws LoadException {
    if (options.strict() && (!missing.isEmpty() || !mismatches.isEmpty())) {
      LoadReport report = report(false);
      throw new LoadException("refusing to load " + checkpoint.path() + ": " + report.summary(), report, null);
    }
  }

  /** The exception for a copy into {@code assignment} that failed; nothing counts as loaded. */
  public LoadException failure(Assignment<T> assignment, Throwable cause) {
    TensorView tensor = assignment.tensor();
    String file = tensor.file().map(Path::toString).orElse(checkpoint.path().toString());
    String message = cause.getMessage() == null ? cause.toString() : cause.getMessage().lines().findFirst().orElse("");
    if (message.startsWith(file + ": ")) {
      message = message.substring(file.length() + 2);   // named once is enough
    }
    return new LoadException(file + ": tensor '" + tensor.name() + "': loading into '" + assignment.name()
        + "' failed: " + message, report(false), cause);
  }

  /**
   * The report of this load.
   *
   * @param done whether the load completed; a refused or failed load counts nothing as loaded
   */
  public LoadReport report(boolean done) {
    List<String> loaded = done ? assignments.stream().map(Assignment::name).toList() : List.of();
    long bytesRead = 0;
    long bytesWritten = 0;
    if (done) {
      for (Assignment<T> assignment : assignments) {
        bytesRead += assignment.tensor().byteSize();
        if (options.mode() == LoadMode.COPY) {
          bytesWritten += assignment.targetDType().byteSize(assignment.tensor().elementCount());
        }
      }
    }
    return new LoadReport(options.mode(), loaded, missing, unexpected, mismatches, conversions, renamed,
        bytesRead, bytesWritten, (System.nanoTime() - started) / 1e9, List.copyOf(readDirectly));
  }
}
