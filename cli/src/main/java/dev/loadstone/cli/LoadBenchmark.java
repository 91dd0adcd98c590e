package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.internal.Posix;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.VarStore;
import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * Measures loading a checkpoint into a {@link VarStore}, separating what this machine makes
 * slow on its own: the files are read through first (page cache), variables are allocated and
 * touched before the timed load (first touch of fresh memory is slow here), and a memcpy over
 * the same number of bytes, between touched buffers, runs in the same process as the baseline.
 */
final class LoadBenchmark {

  /** Where the benchmark loads to. */
  enum Backend {
    /** A {@link VarStore}: the core loader. */
    JAVA,
    /** Libtorch tensors, through the torch module (see {@link LibtorchBenchmarkRun}). */
    TORCH
  }

  /**
   * What to measure.
   *
   * @param dtype the variables' dtype for float tensors, or empty to keep
   * @param evict whether to drop the files from the page cache before reading them through
   */
  record Settings(Path path, LoadMode mode, Optional<DType> dtype, int threads, int runs, boolean naive,
      Backend backend, boolean evict) {}

  /** What was measured. Times in seconds, sizes in bytes. */
  record Result(Settings settings, int tensors, int files, long bytes, long bytesWritten,
      double[] allocSeconds, double[] runsSeconds, double[] memcpyGbps, double[] javaCopyGbps, OptionalDouble residentFraction,
      OptionalDouble hugePageFraction, long baselineAnonBytes, long peakAnonBytes, long peakRssBytes, OptionalDouble naiveSeconds) {

    double medianSeconds() {
      return median(runsSeconds);
    }

    double medianAllocSeconds() {
      return median(allocSeconds);
    }

    /** The median of the C memcpy passes, one measured right before each run. */
    double medianMemcpyGbps() {
      return median(memcpyGbps);
    }

    /** The median of the JVM's copy passes, one measured right before each run. */
    double medianJavaCopyGbps() {
      return median(javaCopyGbps);
    }

    /**
     * The median over the runs of each load's speed divided by the memcpy measured just before
     * it: robust when the machine's load changes between runs.
     */
    double medianLoadToMemcpy() {
      long counted = settings.mode() == LoadMode.ALIAS ? bytes : bytesWritten;
      double[] ratios = new double[runsSeconds.length];
      for (int i = 0; i < ratios.length; i++) {
        ratios[i] = counted / runsSeconds[i] / 1e9 / memcpyGbps[i];
      }
      return median(ratios);
    }

    /** Bytes written per second of load; in ALIAS mode, bytes bound per second. */
    double medianGbps() {
      long counted = settings.mode() == LoadMode.ALIAS ? bytes : bytesWritten;
      return counted / medianSeconds() / 1e9;
    }

    OptionalDouble naiveGbps() {
      return naiveSeconds.isPresent()
          ? OptionalDouble.of(bytesWritten / naiveSeconds.getAsDouble() / 1e9)
          : OptionalDouble.empty();
    }
  }

  private LoadBenchmark() {}

  static Result run(Settings settings, java.io.PrintStream progressStream) throws IOException {
    List<Path> files;
    int tensorCount;
    long bytes;
    long bytesWritten = 0;
    try (Checkpoint checkpoint = Checkpoint.open(settings.path())) {
      files = checkpoint.files();
      tensorCount = checkpoint.tensors().size();
      bytes = checkpoint.totalSize();
      for (TensorView tensor : checkpoint.tensors()) {
        bytesWritten += tensor.dtype().convertingFloatsTo(settings.dtype()).byteSize(tensor.elementCount());
      }
    }
    if (settings.mode() == LoadMode.ALIAS) {
      bytesWritten = 0;
    }
    if (settings.evict() && !PageCache.evict(files)) {
      throw new IOException("cannot drop " + settings.path() + " from the page cache (posix_fadvise)");
    }
    OptionalDouble hugePages = PageCache.readThrough(settings.path());
    OptionalDouble resident = PageCache.residentFraction(files);
    if (settings.backend() == Backend.TORCH) {
      LibtorchBenchmarkRun.prepare();    // libtorch's own memory counts in the baseline
    }

    double[] alloc = new double[settings.runs()];
    double[] runs = new double[settings.runs()];
    double[] memcpy = new double[settings.runs()];
    double[] javaCopy = new double[settings.runs()];
    long copied = Math.max(bytesWritten, bytes);
    long baselineAnon = ProcessMemory.anonymous();
    long peakAnon;
    long peakRss;
    try (ProcessMemory.PeakSampler sampler = new ProcessMemory.PeakSampler()) {
      // One untimed round first, so the timed runs measure compiled code, not the JIT.
      sampler.excluding(() -> memcpyGbps(copied, settings.threads()));
      timedRun(settings, new double[1], 0, progressStream);
      for (int run = 0; run < settings.runs(); run++) {
        memcpy[run] = sampler.excluding(() -> memcpyGbps(copied, settings.threads()));
        javaCopy[run] = sampler.excluding(() -> copyGbps(copied, settings.threads(), Baseline.JVM_COPY));
        runs[run] = timedRun(settings, alloc, run, progressStream);
      }
      peakAnon = sampler.peak();
      peakRss = sampler.peakResidentSet();
    }
    // After the runs, so its heap arrays count in neither their memory nor their baseline.
    OptionalDouble naive = settings.naive() && settings.mode() == LoadMode.COPY
        ? OptionalDouble.of(naiveLoad(settings)) : OptionalDouble.empty();
    return new Result(settings, tensorCount, files.size(), bytes, bytesWritten, alloc, runs, memcpy, javaCopy,
        resident, hugePages, baselineAnon, peakAnon, peakRss, naive);
  }

  /** One load of the configured backend and mode; its alloc time goes to {@code alloc[run]}. */
  private static double timedRun(Settings settings, double[] alloc, int run, java.io.PrintStream progressStream)
      throws IOException {
    if (settings.backend() == Backend.TORCH) {
      return LibtorchBenchmarkRun.copyRun(settings, alloc, run);
    }
    return settings.mode() == LoadMode.ALIAS
        ? aliasRun(settings, alloc, run)
        : copyRun(settings, alloc, run, progressStream);
  }

  /** Creates the store's variables as a model would: allocated and initialized. */
  private static VarStore createVariables(Checkpoint checkpoint, Settings settings, boolean allocate) {
    VarStore store = new VarStore();
    for (TensorView tensor : checkpoint.tensors()) {
      store.root().zeros(tensor.name(), tensor.dtype().convertingFloatsTo(settings.dtype()), tensor.shape());
    }
    if (allocate) {
      store.allocate(settings.threads());
    }
    return store;
  }

  private static double copyRun(Settings settings, double[] alloc, int run, java.io.PrintStream progressStream)
      throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(settings.path())) {
      ProgressBar bar = ProgressBar.forTerminal(progressStream, "run " + (run + 1), checkpoint.totalSize());
      long start = System.nanoTime();
      try (VarStore store = createVariables(checkpoint, settings, true)) {
        alloc[run] = (System.nanoTime() - start) / 1e9;
        long loadStart = System.nanoTime();
        LoadReport report = store.load(checkpoint, LoadOptions.defaults().withThreads(settings.threads())
            .withProgress((done, total, tensor) -> bar.update(done)));
        double seconds = (System.nanoTime() - loadStart) / 1e9;
        bar.finish();
        requireComplete(report);
        return seconds;
      }
    }
  }

  private static double aliasRun(Settings settings, double[] alloc, int run) throws IOException {
    long start = System.nanoTime();
    try (Checkpoint checkpoint = Checkpoint.open(settings.path());
        VarStore store = createVariables(checkpoint, settings, false)) {
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().withMode(LoadMode.ALIAS));
      double seconds = (System.nanoTime() - start) / 1e9;
      alloc[run] = 0;
      requireComplete(report);
      return seconds;
    }
  }

  /**
   * The naive way, for comparison: read each tensor into a heap array, then copy (converting)
   * into the variable; one thread, as such code usually runs.
   */
  private static double naiveLoad(Settings settings) throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(settings.path());
        VarStore store = createVariables(checkpoint, settings, true)) {
      long start = System.nanoTime();
      for (TensorView tensor : checkpoint.tensors()) {
        Path file = tensor.file().orElseThrow();
        long offset = tensor.dataOffsets()[0] + dataStart(checkpoint, file);
        if (tensor.byteSize() > Integer.MAX_VALUE - 8) {
          throw new IOException(tensor.name() + " is too large for a heap array");
        }
        byte[] heap = new byte[(int) tensor.byteSize()];
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
          ByteBuffer buffer = ByteBuffer.wrap(heap);
          while (buffer.hasRemaining()) {
            if (channel.read(buffer, offset + buffer.position()) < 0) {
              throw new IOException(file + " ended early");
            }
          }
        }
        var variable = store.variable(tensor.name());
        TensorView.of(tensor.name(), tensor.dtype(), tensor.shape(), MemorySegment.ofArray(heap))
            .copyTo(variable.segment(), variable.dtype());
      }
      return (System.nanoTime() - start) / 1e9;
    }
  }

  private static long dataStart(Checkpoint checkpoint, Path file) {
    return checkpoint.shards().stream().filter(s -> s.path().equals(file)).findFirst().orElseThrow().dataOffset();
  }

  static void requireComplete(LoadReport report) throws IOException {
    if (!report.isComplete()) {
      throw new IOException("the benchmark's load was incomplete: " + report.summary());
    }
  }

  /** {@link #copyGbps} with the C library's {@code memcpy}. */
  static double memcpyGbps(long bytes, int threads) {
    return copyGbps(bytes, threads, Baseline.C_MEMCPY);
  }

  /** Who copies in a baseline. */
  enum Baseline {
    /**
     * The C library's {@code memcpy}, called once per thread and pass on its whole slice (as a
     * program copying whole tensors would): glibc switches to streaming stores above a size
     * derived from the cache, which the slices exceed. The independent baseline: what a
     * native loader gets.
     */
    C_MEMCPY,
    /** The JVM's own copy ({@code MemorySegment.copy}), which uses streaming stores only on some processors. */
    JVM_COPY
  }

  private static final MethodHandle MEMCPY = Posix.downcall("memcpy", FunctionDescriptor.of(
      ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG), Linker.Option.critical(false));

  /**
   * Copies {@code bytes} bytes between two touched 256 MiB buffers (far larger than the caches)
   * on {@code threads} threads, reusing them until the count is met, with {@code baseline}'s
   * copy (the JVM's where the C library's cannot be called); in GB/s. The buffers come from a
   * VarStore, allocated exactly as the variables are, and are freed before returning.
   */
  static double copyGbps(long bytes, int threads, Baseline baseline) {
    boolean native_ = baseline == Baseline.C_MEMCPY && MEMCPY != null;
    long size = Math.min(Math.max(bytes, 1 << 20), 256L << 20);
    try (VarStore buffers = new VarStore()) {
      MemorySegment from = buffers.root().zeros("from", DType.U8, size).segment();
      MemorySegment to = buffers.root().zeros("to", DType.U8, size).segment();
      from.fill((byte) 1);
      to.fill((byte) 2);
      long slice = (size / threads) & -64L;
      long passes = (bytes + size - 1) / size;
      List<Thread> workers = new ArrayList<>();
      long start = System.nanoTime();
      for (int t = 0; t < threads; t++) {
        long begin = t * slice;
        long length = t == threads - 1 ? size - begin : slice;
        workers.add(Thread.ofPlatform().start(() -> {
          for (long pass = 0; pass < passes; pass++) {
            if (native_) {
              try {
                MemorySegment ignored = (MemorySegment) MEMCPY.invokeExact(to.asSlice(begin, length), from.asSlice(begin, length), length);
              } catch (Throwable e) {
                throw new IllegalStateException("memcpy failed", e);
              }
            } else {
              MemorySegment.copy(from, begin, to, begin, length);
            }
          }
        }));
      }
      for (Thread worker : workers) {
        try {
          worker.join();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return Double.NaN;
        }
      }
      return passes * size / ((System.nanoTime() - start) / 1e9) / 1e9;
    }
  }

  static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
}
