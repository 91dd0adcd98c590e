package dev.loadstone.engine;

import dev.loadstone.quantization.Quantization;
import dev.loadstone.quantization.QuantizedWeight;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorSource;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.LoadReport.Conversion;
import dev.loadstone.store.LoadReport.Dequantized;
import dev.loadstone.store.LoadReport.Mismatch;
import dev.loadstone.store.NameMapping;
import dev.loadstone.store.Partition;
import dev.loadstone.store.PartitionRules;
import dev.loadstone.store.Split;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
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
 * the pairs.
 *
 * <p>Quantized weights ({@link Quantization}) are paired by their logical name: a target of the
 * weight's logical shape and a float dtype other than the stored one is filled by dequantizing
 * (an assignment with {@link Assignment#dequantized()}), its stored tensors consumed. Loading a
 * quantized weight's tensors one by one is allowed only with a target for every one of them
 * (the caller then applies the scales); anything else that would drop a companion is a
 * {@link Mismatch.Kind#QUANTIZATION} mismatch, which strict mode refuses. {@code VarStore.load} plans its variables this way; the libtorch backend plans a
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

  /**
   * A checkpoint tensor paired with the target it fills.
   *
   * @param name the target's name
   * @param tensor the tensor copied, or for a dequantized weight its first stored tensor (its
   *     file and name, for ordering and messages)
   * @param dequantized the quantized weight computed into the target, if it is one
   * @param slice the part of the tensor the target receives ({@link LoadOptions#partition()}),
   *     or empty for all of it
   */
  public record Assignment<T>(String name, Target<T> target, TensorView tensor, Optional<QuantizedWeight> dequantized,
      Optional<Partition.Slice> slice) {
    /** A tensor copied whole as it is (converting its dtype). */
    public Assignment(String name, Target<T> target, TensorView tensor) {
      this(name, target, tensor, Optional.empty(), Optional.empty());
    }

    /** The number of elements the target receives. */
    public long elementCount() {
      if (dequantized.isPresent()) {
        return dequantized.get().shape()[0] * dequantized.get().shape()[1];
      }
      return slice.map(s -> Arrays.stream(s.shape()).reduce(1, Math::multiplyExact)).orElse(tensor.elementCount());
    }

    /**
     * The bytes of the checkpoint the target's values come from: the tensor's (its slice's),
     * or all of the quantized weight's stored tensors'.
     */
    public long bytesRead() {
      return dequantized.map(QuantizedWeight::storedByteSize).orElse(tensor.dtype().byteSize(elementCount()));
    }

    /**
     * The mapped bytes the target receives when they are one contiguous range of the tensor
     * (the whole tensor, or a slice along its first dimension that is not of size 1), for an
     * alias of them; empty for a strided or fused slice.
     */
    public Optional<MemorySegment> contiguousBytes() {
      Pieces pieces = Pieces.of(tensor, slice);
      if (!pieces.contiguous()) {
        return Optional.empty();
      }
      return Optional.of(tensor.segment().asSlice(tensor.dtype().byteSize(pieces.firstSource()),
          tensor.dtype().byteSize(pieces.elementCount())));
    }

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
  private final List<Dequantized> dequantized = new ArrayList<>();
  private final Map<String, String> renamed = new LinkedHashMap<>();
  private final Set<Path> readDirectly = new TreeSet<>();
  private final java.util.concurrent.atomic.AtomicLong bytesReadFromFiles = new java.util.concurrent.atomic.AtomicLong();
  private volatile boolean copied;
  private final Map<Path, String> sha256 = new LinkedHashMap<>();

  private LoadPlan(TensorSource checkpoint, LoadOptions options) {
    this.checkpoint = checkpoint;
    this.options = options;
  }

  /**
   * Pairs the tensors of {@code checkpoint} (a model directory or a single file) with
   * {@code targets} (in the order given, which the report keeps), for a backend that does not
   * dequantize: a target a quantized weight would fill is a {@link Mismatch.Kind#QUANTIZATION}
   * mismatch.
   *
   * @throws LoadException if two tensors map to one target, or the checkpoint's quantization
   *     is malformed or unsupported (see {@link Quantization#of(TensorSource)})
   */
  public static <T> LoadPlan<T> create(TensorSource checkpoint, LoadOptions options,
      Map<String, Target<T>> targets, Copyability copyability) throws LoadException {
    return create(checkpoint, options, targets, copyability, Optional.of("this backend does not dequantize"));
  }

  /**
   * Pairs as {@link #create(TensorSource, LoadOptions, Map, Copyability)} does, dequantizing
   * quantized weights into the targets of their logical shape unless {@code cannotDequantize}
   * says why this load cannot.
   */
  public static <T> LoadPlan<T> create(TensorSource checkpoint, LoadOptions options,
      Map<String, Target<T>> targets, Copyability copyability, Optional<String> cannotDequantize) throws LoadException {
    LoadPlan<T> plan = new LoadPlan<>(checkpoint, options);
    Quantization quantization;
    try {
      quantization = Quantization.of(checkpoint);
    } catch (IOException e) {
      throw new LoadException(e.getMessage(), plan.report(false), e);
    }
    plan.pair(targets, copyability, quantization, cannotDequantize);
    return plan;
  }

  /** Whether a target wants a quantized weight's values rather than its stored tensors. */
  private static boolean wantsValues(Target<?> target, QuantizedWeight weight) {
    TensorView stored = weight.tensors().getFirst();
    return target.dtype().isPresent() && target.dtype().get().isFloatingPoint()
        && !(stored.name().equals(weight.name()) && target.dtype().get() == stored.dtype());
  }

  private void pair(Map<String, Target<T>> targets, Copyability copyability, Quantization quantization,
      Optional<String> cannotDequantize) throws LoadException {
    refuseSplitQuantizedWeights(quantization);
    Map<String, QuantizedWeight> valuesFor = new LinkedHashMap<>();   // target -> weight
    Set<String> consumed = new HashSet<>();
    for (QuantizedWeight weight : quantization.weights()) {
      Optional<String> name = options.names().apply(weight.name());
      if (name.isEmpty() || !targets.containsKey(name.get()) || !wantsValues(targets.get(name.get()), weight)) {
        continue;
      }
      QuantizedWeight previous = valuesFor.putIfAbsent(name.get(), weight);
      if (previous != null) {
        throw new LoadException(checkpoint.path() + ": quantized weights '" + previous.name() + "' and '"
            + weight.name() + "' both map to '" + name.get() + "' (" + options.names() + ")", report(false), null);
      }
      weight.tensors().forEach(t -> consumed.add(t.name()));
      if (!name.get().equals(weight.name())) {
        renamed.put(weight.name(), name.get());
      }
    }
    Map<String, TensorView> byTarget = new HashMap<>();
    for (TensorView tensor : checkpoint.tensors()) {
      Optional<String> name = options.names().apply(tensor.name());
      if (consumed.contains(tensor.name())
          && (name.isEmpty() || !targets.containsKey(name.get()) || valuesFor.containsKey(name.get()))) {
        continue;
      }
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
      QuantizedWeight weight = valuesFor.get(name);
      if (weight != null) {
        pairValues(name, target, weight, cannotDequantize);
        continue;
      }
      TensorView tensor = byTarget.get(name);
      if (tensor == null) {
        missing.add(name);
        continue;
      }
      Path file = tensor.file().orElse(checkpoint.path());
      Optional<Partition.Slice> slice = sliceOf(tensor, file);
      long[] shape = slice.map(Partition.Slice::shape).orElse(tensor.shape());
      if (!Arrays.equals(target.shape(), shape)) {
        mismatches.add(new Mismatch(name, tensor.name(), file, Mismatch.Kind.SHAPE, Arrays.toString(target.shape()),
            Arrays.toString(shape) + slice.map(s -> " (the slice of " + Arrays.toString(tensor.shape()) + " for rank "
                + options.partition().get().rank() + " of " + options.partition().get().world() + ")").orElse("")));
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
      assignments.add(new Assignment<>(name, target, tensor, Optional.empty(), slice));
    }
    refusePartialWeights(quantization, valuesFor);
  }

  /**
   * This load's slice of a tensor ({@link LoadOptions#partition()}), or empty for all of it.
   *
   * @throws LoadException naming the file, the tensor and the rule where the rule cannot cut it
   */
  private Optional<Partition.Slice> sliceOf(TensorView tensor, Path file) throws LoadException {
    if (options.partition().isEmpty()) {
      return Optional.empty();
    }
    try {
      Optional<Partition.Slice> slice = options.partition().get().sliceOf(tensor.name(), tensor.shape());
      if (slice.isPresent()) {
        Pieces.of(tensor, slice);   // refuses pieces off byte boundaries
      }
      return slice;
    } catch (IllegalArgumentException e) {
      throw new LoadException(file + ": " + e.getMessage(), report(false), e);
    }
  }

  /**
   * Refuses a partition that would cut a quantized weight or one of its stored tensors: packed
   * values, scales and zero points are laid out by groups and packs that a row or column cut
   * does not respect.
   */
  private void refuseSplitQuantizedWeights(Quantization quantization) throws LoadException {
    if (options.partition().isEmpty() || options.partition().get().world() == 1) {
      return;
    }
    PartitionRules rules = options.partition().get().rules();
    for (QuantizedWeight weight : quantization.weights()) {
      List<String> names = new ArrayList<>();
      names.add(weight.name());
      weight.tensors().forEach(t -> names.add(t.name()));
      for (String name : names) {
        Optional<PartitionRules.Rule> rule = rules.ruleFor(name);
        if (rule.isPresent() && rule.get().split().kind() != Split.Kind.REPLICATE) {
          TensorView stored = weight.tensors().getFirst();
          throw new LoadException(stored.file().orElse(checkpoint.path()) + ": tensor '" + name + "' belongs to the"
              + " quantized weight '" + weight.name() + "' (" + (weight.problem().isPresent() ? "unknown scheme" : weight.scheme())
              + "), which a partition cannot cut (rule '" + rule.get() + "'): replicate it with an earlier rule"
              + " ('" + java.util.regex.Pattern.quote(name) + " replicate'), or load a dequantized copy (loadstone convert)",
              report(false), null);
        }
      }
    }
  }

  /** Pairs a target with the values of a quantized weight, or reports why it cannot have them. */
  private void pairValues(String name, Target<T> target, QuantizedWeight weight, Optional<String> cannotDequantize) {
    TensorView stored = weight.tensors().getFirst();
    Path file = stored.file().orElse(checkpoint.path());
    String tensors = String.join(", ", weight.tensors().stream().map(TensorView::name).toList());
    if (weight.problem().isPresent()) {
      mismatches.add(new Mismatch(name, stored.name(), file, Mismatch.Kind.QUANTIZATION, target.dtypeName(),
          weight.problem().get() + ": loading it as " + target.dtypeName() + " would ignore its quantization"));
      return;
    }
    if (!Arrays.equals(target.shape(), weight.shape())) {
      mismatches.add(new Mismatch(name, stored.name(), file, Mismatch.Kind.SHAPE, Arrays.toString(target.shape()),
          Arrays.toString(weight.shape()) + " (dequantized from " + tensors + ", " + weight.scheme() + ")"));
      return;
    }
    DType to = target.dtype().orElseThrow();
    if (!QuantizedWeight.canDequantizeTo(to)) {
      mismatches.add(new Mismatch(name, stored.name(), file, Mismatch.Kind.DTYPE, to.name(),
          "a quantized weight (" + weight.scheme() + "), dequantized to F32, F16, BF16 or F64 only"));
      return;
    }
    if (cannotDequantize.isPresent()) {
      mismatches.add(new Mismatch(name, stored.name(), file, Mismatch.Kind.QUANTIZATION, to.name(),
          "quantized (" + weight.scheme() + "), but " + cannotDequantize.get()));
      return;
    }
    assignments.add(new Assignment<>(name, target, stored, Optional.of(weight), Optional.empty()));
    dequantized.add(new Dequantized(name, weight.name(), weight.scheme(),
        weight.tensors().stream().map(TensorView::name).toList(), to));
  }

  /**
   * Refuses to load some of a quantized weight's stored tensors without the others (its
   * scales dropped, say): each such target becomes a {@link Mismatch.Kind#QUANTIZATION} mismatch.
   */
  private void refusePartialWeights(Quantization quantization, Map<String, QuantizedWeight> valuesFor) {
    Set<QuantizedWeight> computed = new HashSet<>(valuesFor.values());
    Map<String, Assignment<T>> byTensor = new HashMap<>();
    for (Assignment<T> assignment : assignments) {
      if (assignment.dequantized().isEmpty()) {
        byTensor.put(assignment.tensor().name(), assignment);
      }
    }
    Set<Assignment<T>> refused = new HashSet<>();
    for (QuantizedWeight weight : quantization.weights()) {
      if (computed.contains(weight)) {
        continue;
      }
      List<String> without = weight.tensors().stream().map(TensorView::name).filter(n -> !byTensor.containsKey(n)).toList();
      if (without.isEmpty() || without.size() == weight.tensors().size()) {
        continue;   // loaded whole (the caller applies the scheme) or not at all
      }
      for (TensorView tensor : weight.tensors()) {
        Assignment<T> assignment = byTensor.get(tensor.name());
        if (assignment == null) {
          continue;
        }
        refused.add(assignment);
        String scheme = weight.problem().isPresent() ? "its scheme is unknown" : weight.scheme();
        mismatches.add(new Mismatch(assignment.name(), tensor.name(), tensor.file().orElse(checkpoint.path()),
            Mismatch.Kind.QUANTIZATION, assignment.targetDType().name(),
            "part of the quantized weight '" + weight.name() + "' (" + scheme + "), whose " + String.join(", ", without)
                + " would not be loaded: give '" + weight.name() + "' an F32, F16, BF16 or F64 variable of shape "
                + Arrays.toString(weight.shape()) + " to dequantize it, or every part a variable"));
      }
    }
    if (!refused.isEmpty()) {
      assignments.removeIf(refused::contains);
      Set<String> names = new HashSet<>();
      refused.forEach(a -> names.add(a.name()));
      conversions.removeIf(c -> names.contains(c.variable()));
    }
  }

  /** The checkpoint this plan loads from. */
  public TensorSource source() {
    return checkpoint;
  }

  /** Adds bytes that a copy read from the checkpoint's files, for the report. */
  void noteBytesRead(long bytes) {
    bytesReadFromFiles.addAndGet(bytes);
    copied = true;
  }

  /** Notes the files that were read with positional reads, for the report. */
  void noteReadDirectly(Set<Path> files) {
    readDirectly.addAll(files);
  }

  /** Notes the files' SHA-256s computed in the copy, for the report. */
  void noteSha256(Map<Path, String> hashes) {
    sha256.putAll(hashes);
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
        // Without a copy (ALIAS), the bytes bound.
        bytesRead += copied ? 0 : assignment.bytesRead();
        if (options.mode() == LoadMode.COPY) {
          bytesWritten += assignment.targetDType().byteSize(assignment.elementCount());
        }
      }
    }
    if (done && copied) {
      bytesRead = bytesReadFromFiles.get();
    }
    return new LoadReport(options.mode(), loaded, missing, unexpected, mismatches, conversions, dequantized, renamed,
        bytesRead, bytesWritten, (System.nanoTime() - started) / 1e9, List.copyOf(readDirectly),
        sha256);
  }
}
