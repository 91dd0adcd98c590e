package dev.loadstone.llama;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.quantization.QuantizedWeight;
import dev.loadstone.quantization.Quantization;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.Scope;
import dev.loadstone.store.VarStore;
import dev.loadstone.store.Variable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * A Llama model ({@code LlamaForCausalLM}) loaded from a Hugging Face model directory:
 * {@code config.json} and the weights, one {@code model.safetensors} or shards with
 * {@code model.safetensors.index.json}, in F32, F16 or BF16.
 *
 * <pre>{@code
 * try (LlamaModel model = LlamaModel.load(Path.of("Llama-3.2-1B"), LlamaModel.Options.defaults())) {
 *   Generator generator = new Generator(model, Sampler.greedy());
 *   Generation result = generator.generate(promptIds, 64, Set.of(), token -> {});
 * }
 * }</pre>
 *
 * <p><b>Weights are read where they lie.</b> The model's variables are created in a
 * {@link VarStore} under their Hugging Face names with the dtype stored in the checkpoint, and
 * loaded with {@link LoadMode#ALIAS} when every weight is F32, F16 or BF16: the variables are the
 * checkpoint's read-only file mapping, and a BF16 checkpoint is used as mapped, without a
 * converted copy. Otherwise (or when {@link Options#weightType()} asks for it) the weights are
 * copied and converted into the model's own memory, with {@link LoadMode#COPY}; a quantized
 * checkpoint's weights are dequantized there, into their logical dtype. Aliased weights
 * stay readable while the model is open; {@link #close()} unmaps them.
 *
 * <p><b>A file that changes under the model.</b> Aliased weights are only as stable as the file:
 * if it is truncated while the model is open (another process rewrites it, a download restarts,
 * network storage fails), the pages past the new end are gone, and reading one faults. By
 * default the kernels never read the mapping themselves: each thread copies a few rows at a time
 * (16 KiB or four rows) with the JVM's copy routine, which turns such a fault into an exception,
 * and the vector code reads the copy. {@link Session#forward} then throws an
 * {@link java.io.UncheckedIOException} that names the file. The copies cost no memory but
 * decode speed, because copying and arithmetic no longer overlap: measured on two cores of an
 * AMD EPYC, a 2.5 GB BF16 model decoded about 8% slower (median of six rounds; its matrix
 * products alone 16 to 24% slower), a model small enough to stay in the cache about 25%
 * slower. A COPY load is safe as well and decodes at full speed: once loaded, its weights no
 * longer depend on the file, at the cost of memory for a copy of them.
 *
 * <p><b>The fast mode, and what it risks.</b> {@link Options#withDirectMappedReads()} lets the
 * vector code read the mapping directly, as fast as the memory allows. But then a weights file
 * truncated while the model is open <em>kills the JVM</em> (SIGBUS in compiled code: a fault
 * there cannot become an exception), taking everything else in the process with it. Use it only
 * for files that nothing changes while the model is open: local files the program owns, not
 * storage shared with other writers, downloads in progress or network file systems.
 *
 * <p>The model runs on its own fixed team of {@link Options#threads()} threads (the caller's
 * included); see {@link Session}.
 */
public final class LlamaModel implements AutoCloseable {
  private static final Set<DType> READABLE = Set.of(DType.F32, DType.F16, DType.BF16);

  /**
   * How to load and run a model.
   *
   * @param threads the threads that load and run the model, the caller's included
   * @param weightType empty to read the weights in their stored dtype where the kernels can (an
   *     ALIAS load), and a quantized checkpoint's weights (FP8 with scales, GPTQ, AWQ,
   *     compressed-tensors; {@link dev.loadstone.quantization.Quantization}) dequantized on load
   *     into their logical dtype (a COPY load); else the dtype (F32, F16 or BF16) to copy or
   *     dequantize them into
   * @param directMappedReads whether the kernels read aliased weights straight from the file
   *     mapping (faster decoding; a file truncated under the model kills the JVM) rather than
   *     through small per-thread copies (a truncated file is an exception); no effect on a COPY
   *     load. False by default
   * @param prefetch whether an ALIAS load reads the weights in on all threads before it returns
   *     ({@link LoadOptions#withPrefetch}), so that the first token does not wait for the file
   *     page by page; no effect on a COPY load. False by default
   */
  public record Options(int threads, Optional<DType> weightType, boolean directMappedReads, boolean prefetch) {
    /** Checks the values. */
    public Options {
      Objects.requireNonNull(weightType, "weightType");
      if (threads < 1) {
        throw new IllegalArgumentException("threads must be at least 1, not " + threads);
      }
      if (weightType.isPresent() && !READABLE.contains(weightType.get())) {
        throw new IllegalArgumentException("weights can be F32, F16 or BF16, not " + weightType.get());
      }
    }

    /** One thread per available core; weights read in their stored dtype, through per-thread copies. */
    public static Options defaults() {
      return new Options(Runtime.getRuntime().availableProcessors(), Optional.empty(), false, false);
    }

    /** With another number of threads. */
    public Options withThreads(int count) {
      return new Options(count, weightType, directMappedReads, prefetch);
    }

    /** Copies the weights into this dtype instead of reading them in place. */
    public Options withWeightType(DType dtype) {
      return new Options(threads, Optional.of(dtype), directMappedReads, prefetch);
    }

    /**
     * Lets the kernels read aliased weights straight from the file mapping: faster decoding,
     * but if a weights file is truncated while the model is open, the JVM dies. Only for files
     * that nothing changes while the model runs.
     */
    public Options withDirectMappedReads() {
      return new Options(threads, weightType, true, prefetch);
    }

    /** Reads aliased weights in on all threads while loading (for files not in the page cache). */
    public Options withPrefetch() {
      return new Options(threads, weightType, directMappedReads, true);
    }
  }

  private final LlamaConfig config;
  private final Checkpoint checkpoint;
  private final VarStore store;
  private final java.util.concurrent.locks.ReentrantReadWriteLock access = new java.util.concurrent.locks.ReentrantReadWriteLock();
  private final ThreadTeam team;
  private final LoadReport report;
  private final double loadSeconds;
  private final Matrix embedding;
  private final Matrix lmHead;
  private final List<Layer> layers;
  private final float[] finalNorm;
  private final float[] inverseFrequencies;
  /** Whether the kernels read aliased weights straight from the mapping, not through a stage. */
  private final boolean directMappedReads;
  /** The size of each weights file the model reads in place, when it was loaded. */
  private final Map<Path, Long> mappedFileSizes;
  private volatile boolean closed;

  private LlamaModel(LlamaConfig config, Checkpoint checkpoint, VarStore store, ThreadTeam team,
      LoadReport report, double loadSeconds, boolean directMappedReads) throws IOException {
    this.config = config;
    this.directMappedReads = directMappedReads;
    this.checkpoint = checkpoint;
    Map<Path, Long> sizes = new LinkedHashMap<>();
    if (checkpoint != null) {
      for (Path file : checkpoint.files()) {
        sizes.put(file, Files.size(file));
      }
    }
    this.mappedFileSizes = Collections.unmodifiableMap(sizes);
    this.store = store;
    this.team = team;
    this.report = report;
    this.loadSeconds = loadSeconds;
    int hidden = config.hiddenSize();
    this.embedding = matrix("model.embed_tokens.weight", config.vocabSize(), hidden);
    this.lmHead = config.tieWordEmbeddings() ? embedding : matrix("lm_head.weight", config.vocabSize(), hidden);
    List<Layer> list = new ArrayList<>();
    for (int i = 0; i < config.layers(); i++) {
      String p = "model.layers." + i + ".";
      list.add(new Layer(vector(p + "input_layernorm.weight"),
          matrix(p + "self_attn.q_proj.weight", config.queryDim(), hidden),
          matrix(p + "self_attn.k_proj.weight", config.kvDim(), hidden),
          matrix(p + "self_attn.v_proj.weight", config.kvDim(), hidden),
          matrix(p + "self_attn.o_proj.weight", hidden, config.queryDim()),
          vector(p + "post_attention_layernorm.weight"),
          matrix(p + "mlp.gate_proj.weight", config.intermediateSize(), hidden),
          matrix(p + "mlp.up_proj.weight", config.intermediateSize(), hidden),
          matrix(p + "mlp.down_proj.weight", hidden, config.intermediateSize())));
    }
    this.layers = List.copyOf(list);
    this.finalNorm = vector("model.norm.weight");
    this.inverseFrequencies = config.ropeScaling().inverseFrequencies(config.headDim(), config.ropeTheta());
  }

  /**
   * Loads the model in {@code directory}.
   *
   * @throws InvalidModelException if {@code config.json} is missing or invalid, or the weights
   *     lack a tensor or hold one that does not fit the configuration (the report says which)
   * @throws dev.loadstone.safetensors.SafeTensorsException if a weights file breaks a rule of
   *     the format
   * @throws IOException if the directory or a file cannot be read
   * @throws UnsupportedOperationException if the JVM runs without {@code jdk.incubator.vector}
   */
  public static LlamaModel load(Path directory, Options options) throws IOException {
    requireVectorApi();
    long start = System.nanoTime();
    LlamaConfig config = LlamaConfig.read(directory);
    Checkpoint checkpoint = Checkpoint.open(directory);
    VarStore store = new VarStore();
    ThreadTeam team = null;
    try {
      List<ExpectedWeight> weights = expectedWeights(config);
      Quantization quantization = Quantization.of(checkpoint);
      // Each weight in the dtype the kernels would read it in: its stored one, a quantized
      // weight's logical one (dequantized on load), F32 for the rest; all of them copied when
      // any must be (a quantized or unreadable weight, or a dtype asked for).
      LoadMode mode = options.weightType().isPresent() ? LoadMode.COPY : LoadMode.ALIAS;
      Map<String, DType> dtypes = new java.util.HashMap<>();
      for (ExpectedWeight weight : weights) {
        Optional<QuantizedWeight> quantized = quantization.weight(weight.name());
        Optional<DType> natural = quantized.isPresent() ? Optional.of(quantized.get().dtype())
            : checkpoint.find(weight.name()).map(TensorView::dtype);
        if (quantized.isPresent() || natural.isPresent() && !READABLE.contains(natural.get())) {
          mode = LoadMode.COPY;
        }
        dtypes.put(weight.name(), options.weightType()
            .orElse(natural.filter(READABLE::contains).orElse(DType.F32)));
      }
      Scope root = store.root();
      for (ExpectedWeight weight : weights) {
        root.zeros(weight.name(), dtypes.get(weight.name()), weight.shape());
      }
      LoadReport report = store.load(checkpoint, LoadOptions.defaults()
          .withMode(mode).withThreads(options.threads()).withPrefetch(mode == LoadMode.ALIAS && options.prefetch())
          .partial());
      if (!report.isComplete()) {
        throw new InvalidModelException(checkpoint.path(),
            "the weights do not fit config.json: " + report.summary(), report, null);
      }
      Checkpoint kept = checkpoint;
      if (mode == LoadMode.COPY) {
        checkpoint.close();
        kept = null;
      }
      team = new ThreadTeam(options.threads());
      return new LlamaModel(config, kept, store, team, report, (System.nanoTime() - start) / 1e9,
          options.directMappedReads());
    } catch (IOException | RuntimeException | Error e) {
      if (team != null) {
        team.close();
      }
      store.close();
      checkpoint.close();
      throw e;
    }
  }

  /**
   * Fails clearly when the JVM was started without the Vector API, which the kernels need (the
   * module requires it statically, so that a program that never runs a model does not resolve
   * an incubator module).
   *
   * @throws UnsupportedOperationException if {@code jdk.incubator.vector} is not resolved
   */
  static void requireVectorApi() {
    if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
      throw new UnsupportedOperationException("running a Llama model needs the Vector API:"
          + " start the JVM with --add-modules jdk.incubator.vector");
    }
  }

  /** A tensor the model needs. */
  private record ExpectedWeight(String name, long[] shape) {}

  private static List<ExpectedWeight> expectedWeights(LlamaConfig c) {
    List<ExpectedWeight> weights = new ArrayList<>();
    int hidden = c.hiddenSize();
    weights.add(new ExpectedWeight("model.embed_tokens.weight", new long[] {c.vocabSize(), hidden}));
    for (int i = 0; i < c.layers(); i++) {
      String p = "model.layers." + i + ".";
      weights.add(new ExpectedWeight(p + "input_layernorm.weight", new long[] {hidden}));
      weights.add(new ExpectedWeight(p + "self_attn.q_proj.weight", new long[] {c.queryDim(), hidden}));
      weights.add(new ExpectedWeight(p + "self_attn.k_proj.weight", new long[] {c.kvDim(), hidden}));
      weights.add(new ExpectedWeight(p + "self_attn.v_proj.weight", new long[] {c.kvDim(), hidden}));
      weights.add(new ExpectedWeight(p + "self_attn.o_proj.weight", new long[] {hidden, c.queryDim()}));
      weights.add(new ExpectedWeight(p + "post_attention_layernorm.weight", new long[] {hidden}));
      weights.add(new ExpectedWeight(p + "mlp.gate_proj.weight", new long[] {c.intermediateSize(), hidden}));
      weights.add(new ExpectedWeight(p + "mlp.up_proj.weight", new long[] {c.intermediateSize(), hidden}));
      weights.add(new ExpectedWeight(p + "mlp.down_proj.weight", new long[] {hidden, c.intermediateSize()}));
    }
    weights.add(new ExpectedWeight("model.norm.weight", new long[] {hidden}));
    if (!c.tieWordEmbeddings()) {
      weights.add(new ExpectedWeight("lm_head.weight", new long[] {c.vocabSize(), hidden}));
    }
    return weights;
  }

  private Matrix matrix(String name, int rows, int cols) {
    Variable variable = store.variable(name);
    // Aliased weights are the file mapping: read through the threads' stages unless told otherwise.
    return new Matrix(name, variable.segment(), variable.dtype(), rows, cols,
        variable.isAlias() && !directMappedReads);
  }

  private float[] vector(String name) {
    return store.variable(name).view().toFloatArray();
  }

  /** The configuration. */
  public LlamaConfig config() {
    return config;
  }

  /** What the load did: mode, tensors, bytes, time. */
  public LoadReport loadReport() {
    return report;
  }

  /** {@link LoadMode#ALIAS} when the weights are read in place, {@link LoadMode#COPY} when copied. */
  public LoadMode loadMode() {
    return report.mode();
  }

  /** The dtypes of the weight matrices, e.g. {@code [BF16]}. */
  public Set<DType> weightTypes() {
    java.util.TreeSet<DType> types = new java.util.TreeSet<>();
    for (Matrix m : matrices()) {
      types.add(m.dtype());
    }
    return types;
  }

  /** Seconds from the start of {@link #load} to a model ready to run (config, open, bind or copy). */
  public double loadSeconds() {
    return loadSeconds;
  }

  /** The number of threads that run the model. */
  public int threads() {
    return team.size();
  }

  /**
   * The bytes of weights one decoded token reads: every layer's matrices and norms, the final
   * norm, the output projection (the whole embedding matrix when tied) and one embedding row.
   * Decoding is bound by reading them: this divided by the memory's read bandwidth is the
   * fastest a token can be.
   */
  public long weightBytesPerToken() {
    long bytes = embedding.rowBytes() + lmHead.data().byteSize() + 4L * finalNorm.length;
    for (Layer layer : layers) {
      bytes += layer.bytesPerToken();
    }
    return bytes;
  }

  /**
   * A new session whose KV cache holds {@code capacity} tokens.
   *
   * @throws IllegalArgumentException if {@code capacity} is below 1 or too large
   */
  public Session newSession(int capacity) {
    requireOpen();
    return new Session(this, capacity);
  }

  /** Whether the model is open. */
  public boolean isOpen() {
    return !closed;
  }

  /** Stops the threads, frees the weights and unmaps the checkpoint. Idempotent. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    access.writeLock().lock();
    try {
      closed = true;
      team.close();
      store.close();
      if (checkpoint != null) {
        checkpoint.close();
      }
    } finally {
      access.writeLock().unlock();
    }
  }

  /**
   * The lock a session's forward pass holds: shared where the model runs on the caller's
   * thread alone ({@link Options#threads()} 1), so that sessions on different threads run at
   * once (each has its own buffers; the weights are read-only); exclusive where the model has
   * a team of threads, which runs one pass at a time. {@link #close()} takes it exclusively.
   */
  java.util.concurrent.locks.Lock passLock() {
    return team.size() == 1 ? access.readLock() : access.writeLock();
  }

  /**
   * The exception for {@code fault}, the JVM's report that a read of mapped weights failed (the
   * weight stages' copies are the only reads of a mapping): names the file that shrank since the
   * load, if one did. A fault anywhere else is not this model's to explain, and is rethrown.
   */
  UncheckedIOException unreadableWeights(InternalError fault) {
    if (mappedFileSizes.isEmpty()) {
      throw fault;
    }
    for (Map.Entry<Path, Long> entry : mappedFileSizes.entrySet()) {
      long now;
      try {
        now = Files.size(entry.getKey());
      } catch (IOException e) {
        continue;   // gone from the directory: an unlinked file still reads, so not the cause
      }
      if (now < entry.getValue()) {
        String message = entry.getKey() + ": truncated from " + entry.getValue() + " to " + now
            + " bytes while the model read its weights in place (an ALIAS load); the model cannot"
            + " run on. Close it. Weights on storage that may change under the model can be loaded"
            + " with a weight type (LlamaModel.Options.withWeightType), which copies them";
        return new UncheckedIOException(message, new IOException(message, fault));
      }
    }
    String message = checkpoint.path() + ": a weight could not be read from the mapped file (its"
        + " storage failed, or it was truncated and restored); the model cannot run on";
    return new UncheckedIOException(message, new IOException(message, fault));
  }

  void requireOpen() {
    if (closed) {
      throw new IllegalStateException("the model is closed");
    }
  }

  ThreadTeam team() {
    return team;
  }

  List<Layer> layers() {
    return layers;
  }

  /** Every weight matrix: the embedding, each layer's, and the output projection. */
  List<Matrix> matrices() {
    List<Matrix> all = new ArrayList<>();
    all.add(embedding);
    for (Layer layer : layers) {
      all.addAll(List.of(layer.q(), layer.k(), layer.v(), layer.o(), layer.gate(), layer.up(), layer.down()));
    }
    all.add(lmHead);
    return all;
  }

  Matrix embedding() {
    return embedding;
  }

  Matrix lmHead() {
    return lmHead;
  }

  float[] finalNorm() {
    return finalNorm;
  }

  float[] inverseFrequencies() {
    return inverseFrequencies;
  }

  @Override
  public String toString() {
    return "LlamaModel[" + config.layers() + " layers, hidden " + config.hiddenSize() + ", "
        + weightTypes() + ", " + report.mode()
        + (report.mode() == LoadMode.ALIAS && directMappedReads ? ", direct mapped reads" : "") + "]";
  }
}
