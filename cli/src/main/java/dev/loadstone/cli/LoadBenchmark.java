package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.internal.Posix;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.Partition;
import dev.loadstone.store.ReadMode;
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
   * @param cold whether each run loads from the storage: the files dropped from the page cache
   *     before it, the storage's own speed measured beside it
   * @param readMode how COPY loads read the files
   * @param prefetch whether ALIAS loads read the aliased bytes in ({@link LoadOptions#prefetch()})
   * @param partition the rank's share to load, or empty for the whole checkpoint
   */
  record Settings(Path path, LoadMode mode, Optional<DType> dtype, int threads, int runs, boolean naive,
      Backend backend, boolean evict, boolean cold, ReadMode readMode, boolean prefetch, Optional<Partition> partition) {

    /** Settings that load the whole checkpoint. */
    Settings(Path path, LoadMode mode, Optional<DType> dtype, int threads, int runs, boolean naive,
        Backend backend, boolean evict, boolean cold, ReadMode readMode, boolean prefetch) {
      this(path, mode, dtype, threads, runs, naive, backend, evict, cold, readMode, prefetch, Optional.empty());
    }

    /** The load options of a run. */
    LoadOptions loadOptions() {
      LoadOptions options = LoadOptions.defaults().withThreads(threads).withMode(mode).withReadMode(readMode)
          .withPrefetch(prefetch);
      return partition.map(options::withPartition).orElse(options);
    }
  }

  /**
   * One timed run.
   *
   * @param seconds the load (in cold mode: opening the checkpoint and loading it)
   * @param allocSeconds creating and touching the variables, before the load
   * @param residentBefore the files' page-cache residency right before the load
   * @param pageCacheGrowth how much {@code Cached} in /proc/meminfo grew during the load
   * @param bytesRead the bytes the load read from the checkpoint ({@link LoadReport#bytesRead()})
   */
  record Run(double seconds, double allocSeconds, OptionalDouble residentBefore, long pageCacheGrowth, long bytesRead) {}

  /** Something loaded into from an open checkpoint. */
  @FunctionalInterface
  interface Load {
    LoadReport into(Checkpoint checkpoint) throws IOException;
  }

  /** What was measured. Times in seconds, sizes in bytes. */
  record Result(Settings settings, int tensors, int files, long bytes, long bytesWritten,
      double[] allocSeconds, double[] runsSeconds, double[] memcpyGbps, double[] javaCopyGbps, OptionalDouble residentFraction,
      OptionalDouble hugePageFraction, long baselineAnonBytes, long peakAnonBytes, long peakRssBytes, OptionalDouble naiveSeconds,
      double[] storageGbps, double[] coldResidentFractions, long[] pageCacheGrowthBytes, long[] runPeakAnonAboveBytes,
      long[] bytesRead, Optional<PartitionArguments.Shares> shares) {

    /**
     * The median over the runs of each run's peak anonymous memory above the memory right
     * before it (so the JVM's own heap growing from run to run does not count), as a multiple
     * of the variables (in ALIAS mode, of the tensors).
     */
    double medianRunPeakAnonRatio() {
      double[] ratios = new double[runPeakAnonAboveBytes.length];
      long counted = settings.mode() == LoadMode.ALIAS ? bytes : bytesWritten;
      for (int i = 0; i < ratios.length; i++) {
        ratios[i] = (double) runPeakAnonAboveBytes[i] / counted;
      }
      return median(ratios);
    }

    /** The median over the runs of each load's speed (bytes read) divided by the storage's, measured just before it. */
    double medianLoadToStorage() {
      double[] ratios = new double[runsSeconds.length];
      for (int i = 0; i < ratios.length; i++) {
        // A partition's load reads its share, not the checkpoint.
        ratios[i] = (shares.isPresent() ? bytesRead[i] : bytes) / runsSeconds[i] / 1e9 / storageGbps[i];
      }
      return median(ratios);
    }

    /** The median over the runs of the bytes each load read from the checkpoint. */
    long medianBytesRead() {
      long[] sorted = bytesRead.clone();
      Arrays.sort(sorted);
      return sorted[sorted.length / 2];
    }

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
    Optional<PartitionArguments.Shares> shares;
    try (Checkpoint checkpoint = Checkpoint.open(settings.path())) {
      files = checkpoint.files();
      tensorCount = checkpoint.tensors().size();
      bytes = checkpoint.totalSize();
      try (VarStore declared = createVariables(checkpoint, settings, false)) {
        bytesWritten = declared.byteSize();   // quantized weights: their dequantized bytes
      }
      shares = settings.partition().map(p -> PartitionArguments.Shares.of(checkpoint, p));
    }
    if (settings.mode() == LoadMode.ALIAS) {
      bytesWritten = 0;
    }
    if (settings.evict() && !PageCache.evict(files)) {
      throw new IOException("cannot drop " + settings.path() + " from the page cache (posix_fadvise)");
    }
    OptionalDouble hugePages = settings.cold() ? OptionalDouble.empty() : PageCache.readThrough(settings.path());
    OptionalDouble resident = PageCache.residentFraction(files);
    if (settings.backend() == Backend.TORCH) {
      LibtorchBenchmarkRun.prepare();    // libtorch's own memory counts in the baseline
    }

    double[] alloc = new double[settings.runs()];
    double[] runs = new double[settings.runs()];
    double[] memcpy = new double[settings.runs()];
    double[] javaCopy = new double[settings.runs()];
    double[] storage = new double[settings.cold() ? settings.runs() : 0];
    double[] coldResident = new double[settings.cold() ? settings.runs() : 0];
    long[] growth = new long[settings.runs()];
    long[] runAnonAbove = new long[settings.runs()];
    long[] bytesRead = new long[settings.runs()];
    long copied = Math.max(bytesWritten, bytes);
    // One untimed round first, so the timed runs measure compiled code, not the JIT, and the
    // baseline holds the heap the JVM grew to on the way (its variables are freed again).
    copyBaselines(copied, settings.threads());
    timedRun(settings, 0, progressStream);
    long baselineAnon = ProcessMemory.anonymous();
    long peakAnon;
    long peakRss;
    try (ProcessMemory.PeakSampler sampler = new ProcessMemory.PeakSampler()) {
      for (int run = 0; run < settings.runs(); run++) {
        Baselines baselines = sampler.excluding(() -> copyBaselines(copied, settings.threads()));
        memcpy[run] = baselines.memcpyGbps();
        javaCopy[run] = baselines.jvmCopyGbps();
        if (settings.cold()) {
          storage[run] = sampler.excluding(() -> storageGbps(files, settings.threads()));
        }
        long before = sampler.startRun();
        Run figures = timedRun(settings, run, progressStream);
        runAnonAbove[run] = sampler.runPeak() - before;
        runs[run] = figures.seconds();
        alloc[run] = figures.allocSeconds();
        growth[run] = figures.pageCacheGrowth();
        bytesRead[run] = figures.bytesRead();
        if (settings.cold()) {
          coldResident[run] = figures.residentBefore().orElse(Double.NaN);
        }
      }
      peakAnon = sampler.peak();
      peakRss = sampler.peakResidentSet();
    }
    // After the runs, so its heap arrays count in neither their memory nor their baseline.
    OptionalDouble naive = settings.naive() && settings.mode() == LoadMode.COPY
        ? OptionalDouble.of(naiveLoad(settings)) : OptionalDouble.empty();
    return new Result(settings, tensorCount, files.size(), bytes, bytesWritten, alloc, runs, memcpy, javaCopy,
        resident, hugePages, baselineAnon, peakAnon, peakRss, naive, storage, coldResident, growth, runAnonAbove,
        bytesRead, shares);
  }

  /**
   * The storage's speed on the files: the best of buffered and {@code O_DIRECT} reads, each on
   * the benchmark's threads and on as many readers as a direct load keeps in flight (the
   * strongest baseline of the four).
   */
  private static double storageGbps(List<Path> files, int threads) {
    double best = 0;
    try {
      for (int readers : new int[] {threads, Math.max(threads, DIRECT_READERS)}) {
        for (StorageRead.Kind kind : StorageRead.Kind.values()) {
          double gbps = StorageRead.gbps(files, readers, kind);
          if (gbps > best) {
            best = gbps;
          }
        }
      }
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return best;
  }

  /** As many readers as a direct load keeps in flight (the engine's figure). */
  static final int DIRECT_READERS = 32;

  /**
   * Times the load: in cold mode the files are dropped from the page cache first and the
   * checkpoint is opened inside the timing (the load from the storage, whole); warm, the load
   * into the open checkpoint alone.
   */
  static Run timedLoad(Settings settings, Checkpoint open, double allocSeconds, Load load) throws IOException {
    OptionalDouble residentBefore = OptionalDouble.empty();
    if (settings.cold()) {
      List<Path> files = open.files();
      open.close();
      PageCache.evict(files);
      residentBefore = PageCache.residentFraction(files);
    }
    long cachedBefore = ProcessMemory.pageCache();
    long start = System.nanoTime();
    LoadReport report;
    if (settings.cold()) {
      try (Checkpoint checkpoint = Checkpoint.open(settings.path())) {
        report = load.into(checkpoint);
      }
    } else {
      report = load.into(open);
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    long growth = ProcessMemory.pageCache() - cachedBefore;
    requireComplete(report);
    return new Run(seconds, allocSeconds, residentBefore, growth, report.bytesRead());
  }

  /** One load of the configured backend and mode. */
  private static Run timedRun(Settings settings, int run, java.io.PrintStream progressStream)
      throws IOException {
    if (settings.backend() == Backend.TORCH) {
      return LibtorchBenchmarkRun.copyRun(settings);
    }
    return settings.mode() == LoadMode.ALIAS
        ? aliasRun(settings)
        : copyRun(settings, run, progressStream);
  }

  /**
   * Creates the store's variables as a model would (a quantized weight's in its logical shape,
   * to be dequantized into), with {@code allocate} allocated and initialized.
   */
  private static VarStore createVariables(Checkpoint checkpoint, Settings settings, boolean allocate) throws IOException {
    LoadOptions options = settings.loadOptions();
    if (settings.dtype().isPresent()) {
      options = options.withCreateDType(settings.dtype().get());
    }
    VarStore store = VarStore.declaredFor(checkpoint, options);
    if (allocate) {
      store.allocate(settings.threads());
    }
    return store;
  }

  private static Run copyRun(Settings settings, int run, java.io.PrintStream progressStream) throws IOException {
    Checkpoint checkpoint = Checkpoint.open(settings.path());
    try (checkpoint) {
      ProgressBar bar = ProgressBar.forTerminal(progressStream, "run " + (run + 1), checkpoint.totalSize());
      long start = System.nanoTime();
      try (VarStore store = createVariables(checkpoint, settings, true)) {
        double alloc = (System.nanoTime() - start) / 1e9;
        Run figures = timedLoad(settings, checkpoint, alloc, opened -> store.load(opened,
            settings.loadOptions().withProgress((done, total, tensor) -> bar.update(done))));
        bar.finish();
        return figures;
      }
    }
  }

  /** Opening and binding (with {@code prefetch}, reading in too): the whole cost of an ALIAS load. */
  private static Run aliasRun(Settings settings) throws IOException {
    OptionalDouble residentBefore = OptionalDouble.empty();
    if (settings.cold()) {
      try (Checkpoint checkpoint = Checkpoint.open(settings.path())) {
        PageCache.evict(checkpoint.files());
        residentBefore = PageCache.residentFraction(checkpoint.files());
      }
    }
    long cachedBefore = ProcessMemory.pageCache();
    long start = System.nanoTime();
    try (Checkpoint checkpoint = Checkpoint.open(settings.path());
        VarStore store = createVariables(checkpoint, settings, false)) {
      LoadReport report = store.load(checkpoint, settings.loadOptions());
      double seconds = (System.nanoTime() - start) / 1e9;
      requireComplete(report);
      return new Run(seconds, 0, residentBefore, ProcessMemory.pageCache() - cachedBefore, report.bytesRead());
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

  /** Who copies in a baseline. */
  enum Baseline {
    /**
     * The C library's {@code memcpy}, called once per thread and pass on its whole slice (as a
     * program copying whole tensors would): glibc switches to streaming stores above a size
     * derived from the cache, and to its fastest large-copy path for slices of hundreds of MiB,
     * which the buffers give it. The independent baseline: what a native loader gets at best.
     */
    C_MEMCPY,
    /** The JVM's own copy ({@code MemorySegment.copy}), which uses streaming stores only on some processors. */
    JVM_COPY
  }

  /** The two copy baselines, measured on the same buffers. In GB/s. */
  record Baselines(double memcpyGbps, double jvmCopyGbps) {}

  private static final MethodHandle MEMCPY = Posix.downcall("memcpy", FunctionDescriptor.of(
      ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG), Linker.Option.critical(false));

  /** The largest baseline buffer: the load's size class, up to where memcpy's speed stops growing (measured: 1 GiB). */
  private static final long MAX_BASELINE_BUFFER = 1L << 30;

  /**
   * Copies {@code bytes} bytes with the C library's {@code memcpy} (the JVM's copy where it
   * cannot be called), then with the JVM's, between two touched buffers of the load's size (at
   * most 1 GiB each; memcpy is slower on smaller ones: 8-10 GB/s on 256 MiB against 15-16 on
   * 1 GiB here), on {@code threads} threads, reusing the buffers until the count is met. The
   * buffers come from a VarStore, allocated exactly as the variables are, and are freed before
   * returning.
   */
  static Baselines copyBaselines(long bytes, int threads) {
    long size = Math.min(Math.max(bytes, 1 << 20), MAX_BASELINE_BUFFER);
    try (VarStore buffers = new VarStore()) {
      MemorySegment from = buffers.root().zeros("from", DType.U8, size).segment();
      MemorySegment to = buffers.root().zeros("to", DType.U8, size).segment();
      from.fill((byte) 1);
      to.fill((byte) 2);
      return new Baselines(copyGbps(from, to, bytes, threads, MEMCPY != null ? Baseline.C_MEMCPY : Baseline.JVM_COPY),
          copyGbps(from, to, bytes, threads, Baseline.JVM_COPY));
    }
  }

  private static double copyGbps(MemorySegment from, MemorySegment to, long bytes, int threads, Baseline baseline) {
    long size = from.byteSize();
    long slice = (size / threads) & -64L;
    long passes = (bytes + size - 1) / size;
    List<Thread> workers = new ArrayList<>();
    long start = System.nanoTime();
    for (int t = 0; t < threads; t++) {
      long begin = t * slice;
      long length = t == threads - 1 ? size - begin : slice;
      workers.add(Thread.ofPlatform().start(() -> {
        for (long pass = 0; pass < passes; pass++) {
          if (baseline == Baseline.C_MEMCPY) {
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

  static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
}
