package dev.loadstone.store;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.CheckpointWriter;
import dev.loadstone.engine.Declaration;
import dev.loadstone.engine.Parallel;
import dev.loadstone.quantization.Quantization;
import dev.loadstone.quantization.QuantizedWeight;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.nio.file.Path;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * A model's variables, by hierarchical name, filled from safetensors checkpoints with one copy
 * (or none). The Java counterpart of tch's {@code VarStore}, without its weak spots: files are
 * mapped rather than read into memory, shapes must match exactly (never broadcast), and every
 * tensor that does not fit is reported.
 *
 * <pre>{@code
 * try (VarStore store = new VarStore();
 *      Checkpoint checkpoint = Checkpoint.open(Path.of("Llama-3.2-1B"))) {
 *   Scope model = store.root().sub("model");
 *   model.sub("embed_tokens").zeros("weight", DType.F32, vocab, hidden);
 *   ... // the rest of the model's variables
 *   LoadReport report = store.load(checkpoint, LoadOptions.defaults());   // BF16 file -> F32
 * }
 * }</pre>
 *
 * <p>Variables are safe to read from many threads once loaded. Creating variables and loading
 * are not meant to race with each other.
 */
public final class VarStore implements AutoCloseable {
  private final Arena arena = Arena.ofShared();
  private final Map<String, Variable> variables = Collections.synchronizedMap(new LinkedHashMap<>());

  /** Creates an empty store. */
  public VarStore() {}

  /**
   * Creates a store with one variable per checkpoint tensor (names mapped by the options) and
   * loads it: {@link #declaredFor} and then {@link #load}.
   */
  public static VarStore fromCheckpoint(Checkpoint checkpoint, LoadOptions options) throws IOException {
    VarStore store = declaredFor(checkpoint, options);
    try {
      store.load(checkpoint, options);
      return store;
    } catch (IOException | RuntimeException | Error e) {
      store.close();
      throw e;
    }
  }

  /**
   * Creates a store with one variable per checkpoint tensor (names mapped by the options), not
   * yet allocated or loaded, for a program that allocates ({@link #allocate}) before it loads.
   * Float tensors are converted to {@link LoadOptions#createDType()} when set; other tensors
   * keep their dtype. In COPY mode a quantized weight ({@link Quantization}) gets one variable
   * of its logical name and shape, in {@link LoadOptions#createDType()} or else the weight's
   * {@link QuantizedWeight#dtype()}, and is dequantized into it by {@link #load}. In ALIAS mode
   * no conversion is possible: every stored tensor gets its variable. With
   * {@link LoadOptions#partition()} each variable has its slice's shape ({@link Partition#shapeOf})
   * and {@link #load} fills it with only its slice.
   *
   * @throws dev.loadstone.checkpoint.CheckpointException if the checkpoint's quantization
   *     configuration cannot be read
   */
  public static VarStore declaredFor(Checkpoint checkpoint, LoadOptions options) throws IOException {
    List<Declaration> declarations = Declaration.of(checkpoint, options);
    VarStore store = new VarStore();
    try {
      for (Declaration declaration : declarations) {
        store.root().zeros(declaration.name(), declaration.dtype(), declaration.shape());
      }
      return store;
    } catch (RuntimeException | Error e) {
      store.close();
      throw e;
    }
  }

  /** The top of the name hierarchy. */
  public Scope root() {
    return new Scope(this, "");
  }

  /** Every variable, in creation order. */
  public List<Variable> variables() {
    synchronized (variables) {
      return List.copyOf(variables.values());
    }
  }

  /** The variable of this full name, if any. */
  public Optional<Variable> find(String name) {
    return Optional.ofNullable(variables.get(name));
  }

  /**
   * The variable of this full name.
   *
   * @throws NoSuchElementException if there is none
   */
  public Variable variable(String name) {
    Variable variable = variables.get(name);
    if (variable == null) {
      throw new NoSuchElementException("no variable named '" + name + "'");
    }
    return variable;
  }

  /** The total size of all variables in bytes. */
  public long byteSize() {
    return variables().stream().mapToLong(Variable::byteSize).sum();
  }

  /**
   * Allocates and initializes every variable that has no memory yet, on {@code threads}
   * threads: what a model does before it loads weights. Optional: variables otherwise get
   * their memory on first use or when a COPY load fills them.
   */
  public void allocate(int threads) {
    List<Variable> pending = variables().stream().filter(v -> !v.isBound()).toList();
    Parallel.forEach(pending, threads, UnaryOperator.identity(), variable -> allocate(variable, true));
  }

  /**
   * Loads a checkpoint's tensors into this store's variables.
   *
   * <p>Strict mode (the default) checks every pairing first and throws a {@link LoadException}
   * with the whole report, before writing any variable, if a variable is missing from the
   * checkpoint or a tensor does not fit its variable. Partial mode loads what fits and returns
   * the report. Tensors that map to no variable are reported as unexpected in both modes.
   *
   * <p>A quantized checkpoint ({@link Quantization}: {@code config.json}'s
   * {@code quantization_config} beside the checkpoint's files) is dequantized in COPY mode: a
   * variable of a quantized weight's logical name and shape {@code [out, in]}, of dtype F32,
   * F16, BF16 or F64, receives its values, computed from the stored tensors (which are then
   * consumed, not unexpected) and listed in {@link LoadReport#dequantized()}. Loading a
   * quantized weight's stored tensors is allowed only if every one of them has a variable;
   * loading some of them (an FP8 weight without its scales), a weight of unknown scheme into
   * a float variable, or dequantizing in ALIAS mode is a
   * {@link LoadReport.Mismatch.Kind#QUANTIZATION} mismatch.
   *
   * <p>With {@link LoadOptions#partition()} each variable must have its tensor's slice shape
   * ({@link Partition#shapeOf}; another shape is a {@link LoadReport.Mismatch.Kind#SHAPE}
   * mismatch) and receives only its slice; a rule that cannot cut a tensor, a strided slice in
   * ALIAS mode, or a cut quantized weight is a {@code LoadException} before anything is written.
   *
   * @throws LoadException if strict mode finds a problem, the checkpoint's quantization is
   *     malformed or unsupported (in both modes: the message names the file, tensor and rule),
   *     or reading fails midway (then no variable of this load claims to be loaded)
   */
  public LoadReport load(Checkpoint checkpoint, LoadOptions options) throws LoadException {
    requireOpen();
    return new Loader(this, checkpoint, options).run();
  }

  /**
   * Saves every variable to one safetensors file, atomically, in the canonical layout.
   *
   * @param metadata the {@code __metadata__} map, or {@code null} for none
   */
  public void save(Path file, Map<String, String> metadata) throws IOException {
    SafeTensorsWriter.write(file, metadata, views());
  }

  /**
   * Saves every variable as a Hugging Face model directory: one {@code model.safetensors}, or
   * shards of at most {@code maxShardSize} bytes and {@code model.safetensors.index.json}.
   */
  public void save(Path directory, Map<String, String> metadata, long maxShardSize) throws IOException {
    CheckpointWriter.write(directory, metadata, views(), maxShardSize);
  }

  private List<TensorView> views() {
    return variables().stream().map(Variable::view).toList();
  }

  /** Whether the store is open. */
  public boolean isOpen() {
    return arena.scope().isAlive();
  }

  /**
   * Frees the memory of every owned variable. Reading a variable afterwards throws
   * {@link IllegalStateException}. Aliased variables follow their checkpoint's lifetime.
   */
  @Override
  public void close() {
    if (arena.scope().isAlive()) {
      arena.close();
    }
  }

  Variable create(String name, DType dtype, long[] shape, Initializer initializer) {
    requireOpen();
    Variable variable = new Variable(this, name, dtype, shape, initializer);
    if (variables.putIfAbsent(name, variable) != null) {
      throw new IllegalArgumentException("the store already has a variable named '" + name + "'");
    }
    return variable;
  }

  /**
   * Gives a variable owned memory if it has none: initialized and resident, as a model would
   * have it, or just zeroed (not yet touched) when a load is about to overwrite it.
   */
  MemorySegment allocate(Variable variable, boolean initialize) {
    synchronized (variable) {
      MemorySegment memory = variable.memoryOrNull();
      if (memory != null) {
        return memory;
      }
      requireOpen();
      MemorySegment owned = NativeMemory.allocate(arena, variable.byteSize());
      if (initialize) {
        if (variable.initializer() == Initializer.zeros()) {
          NativeMemory.prefault(owned);
        } else {
          variable.initializer().fill(owned, variable.dtype(), variable.elementCount());
        }
      }
      variable.bindOwned(owned);
      return owned;
    }
  }

  private void requireOpen() {
    if (!arena.scope().isAlive()) {
      throw new IllegalStateException("the VarStore is closed");
    }
  }

  @Override
  public String toString() {
    return "VarStore[" + variables.size() + " variables, " + byteSize() + " bytes]";
  }
}
