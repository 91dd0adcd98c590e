package dev.loadstone.cli;

import dev.loadstone.internal.Posix;
import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.StreamWriteFeature;
import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.Partition;
import dev.loadstone.store.ReadMode;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * {@code loadstone bench PATH}: how fast a checkpoint loads into a VarStore, beside a memcpy
 * of the same size measured in the same process, with the memory it took.
 */
final class BenchCommand implements Command {
  private static final JsonFactory JSON = JsonFactory.builder()
      .disable(StreamWriteFeature.AUTO_CLOSE_TARGET)
      .build();

  @Override
  public String name() {
    return "bench";
  }

  @Override
  public String synopsis() {
    return "PATH|URL [--mode MODE] [--dtype DTYPE] [--backend java|torch] [--threads N] [--runs N] [--evict] [--sha256] [--json] [--rank R --world N [--rules llama|FILE]] [--concurrency N] [--range-bytes SIZE]";
  }

  @Override
  public String summary() {
    return "measure loading a checkpoint into variables, against memcpy";
  }

  @Override
  public String description() {
    return """
        Reads PATH (a .safetensors file or model directory) through once so it is in the page
        cache, then per run: creates and touches the variables as a model would (alloc), and
        loads the checkpoint into them (COPY: the copy into existing variables; ALIAS: open +
        bind). Reports the median load speed beside a memcpy of the same number of bytes on the
        same threads, the page-cache residency of the files and the share mapped with 2 MiB
        pages (loads out of 4 KiB pages are slower; --evict drops the files from the page cache
        first, so they are read in afresh), and peak memory.
        --backend torch does the same into libtorch tensors (JavaCPP PyTorch): a module whose
        parameters mirror the checkpoint's tensors, loaded with from_blob + copy_, or by
        Loadstone's copy where that gives the same bits (COPY only).
        --sha256 adds, in the same process: the JDK's SHA-256 on one thread over a 1 MiB heap
        array in cache (jdk_sha256_gbps, the baseline), Loadstone's SHA-256 of the files
        (verify --sha256's; sha256_gbps_per_thread: bytes per second over the threads it can
        use, one per file), and medians of COPY loads into the same variables without and with
        hashing in the same pass (load_seconds, load_sha256_seconds).
        --synthetic writes a random Llama-3.2-1B-shaped BF16 checkpoint (2.47 GB) at PATH first
        when PATH holds none; with --scheme fp8 or gptq its linear layers are quantized (FP8 with
        128x128 block scales, or GPTQ 4-bit), which COPY dequantizes into BF16 variables. --naive
        also times reading tensors into heap arrays and copying.
        With --rank and --world each run loads that rank's slice into variables of the slice
        shapes; bytes_read is what the load read from the checkpoint, beside the bytes of the
        tensors cut (sliced_bytes), of those replicated, and the ideal sliced/N + replicated.
        A URL (http://, https://, s3://) is loaded with COPY by parallel range requests
        (--concurrency, --range-bytes), in rounds that each first download the same files with
        curl to /dev/null from the same server, one after the other (the same-run baseline; for
        s3:// the objects' path-style URLs at AWS_ENDPOINT_URL_S3, unsigned), and every round's
        figures are reported (--no-curl leaves the baseline out).
        """ + PartitionArguments.HELP;
  }

  @Override
  public List<Option> options() {
    return List.of(
        Option.valued("--mode", "copy|alias", "COPY into owned variables (default) or ALIAS the mapping"),
        Option.valued("--dtype", "keep|F32|F16|BF16", "the variables' dtype for float tensors (default keep)"),
        Option.valued("--backend", "java|torch", "load into a VarStore (default) or into libtorch tensors"),
        Option.valued("--threads", "N", "loading threads (default: the number of cores)"),
        Option.valued("--runs", "N", "timed runs (default 5)"),
        Option.flag("--json", "print one JSON object"),
        Option.flag("--naive", "also time the naive way: read into the heap, then copy"),
        Option.flag("--evict", "drop PATH from the page cache first, so it is read in as a first load reads it"),
        Option.flag("--cold", "load from the storage: drop PATH from the page cache before each run, and measure"
            + " the storage's own read speed beside it"),
        Option.valued("--read", "auto|mapped|positional|direct",
            "how COPY reads the files (default auto: positional reads where not cached; direct: O_DIRECT)"),
        Option.flag("--prefetch", "ALIAS: read the aliased bytes in before the load returns"),
        Option.flag("--sha256", "also measure SHA-256: of the files per thread against the JDK's own, and a load"
            + " that hashes against one that does not (COPY, java backend)"),
        Option.flag("--synthetic", "generate a synthetic Llama-3.2-1B-shaped checkpoint at PATH if missing"),
        Option.valued("--scheme", "bf16|fp8|gptq", "--synthetic: store the linear layers as BF16 (default), FP8 with"
            + " 128x128 block scales, or GPTQ 4-bit"),
        PartitionArguments.RANK, PartitionArguments.WORLD, PartitionArguments.RULES,
        Option.valued("--concurrency", "N", "a URL: range requests in flight (default 16)"),
        Option.valued("--range-bytes", "SIZE", "a URL: bytes per range request (default 8MiB)"),
        Option.flag("--no-curl", "a URL: leave out the curl baseline"));
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws Exception {
    String argument = args.requireOne("PATH");
    if (Checkpoint.isUrl(argument)) {
      return runRemote(Inputs.checkpointLocation(argument), args, out, err);
    }
    for (String remoteOnly : List.of("--concurrency", "--range-bytes", "--no-curl")) {
      if (args.has(remoteOnly) || args.value(remoteOnly).isPresent()) {
        throw new UsageException(remoteOnly + " is for a URL's range requests; " + Text.oneLine(argument) + " is a path");
      }
    }
    Path path = args.has("--synthetic") ? Inputs.path(argument) : Inputs.localCheckpoint(argument, "bench");
    LoadMode mode = switch (args.value("--mode").orElse("copy").toLowerCase(Locale.ROOT)) {
      case "copy" -> LoadMode.COPY;
      case "alias" -> LoadMode.ALIAS;
      default -> throw new UsageException("--mode is copy or alias, not '" + Text.oneLine(args.value("--mode").get()) + "'");
    };
    Optional<DType> dtype = args.floatDType("--dtype");
    if (mode == LoadMode.ALIAS && dtype.isPresent()) {
      throw new UsageException("--mode alias binds the file's bytes as they are: use --dtype keep");
    }
    LoadBenchmark.Backend backend = switch (args.value("--backend").orElse("java").toLowerCase(Locale.ROOT)) {
      case "java" -> LoadBenchmark.Backend.JAVA;
      case "torch" -> LoadBenchmark.Backend.TORCH;
      default -> throw new UsageException("--backend is java or torch, not '" + Text.oneLine(args.value("--backend").get()) + "'");
    };
    if (backend == LoadBenchmark.Backend.TORCH && mode == LoadMode.ALIAS) {
      throw new UsageException("--backend torch copies into libtorch tensors: use --mode copy");
    }
    if (backend == LoadBenchmark.Backend.TORCH && !LibtorchBenchmarkRun.available()) {
      throw new UsageException("--backend torch needs the module dev.loadstone.torch and the JavaCPP"
          + " modules (cli/target/lib-torch; the launcher adds them for bench)");
    }
    int threads = args.integer("--threads", Runtime.getRuntime().availableProcessors(), 1);
    int runs = args.integer("--runs", 5, 1);
    Optional<String> schemeName = args.value("--scheme");
    if (schemeName.isPresent() && !args.has("--synthetic")) {
      throw new UsageException("--scheme says how --synthetic stores the weights: use it with --synthetic");
    }
    SyntheticLlama.Weights weights = SyntheticLlama.Weights.BF16;
    if (schemeName.isPresent()) {
      weights = SyntheticLlama.Weights.named(schemeName.get()).orElseThrow(() ->
          new UsageException("--scheme is bf16, fp8 or gptq, not '" + Text.oneLine(schemeName.get()) + "'"));
    }
    if (args.has("--synthetic") && !SyntheticLlama.existsIn(path, weights)) {
      if (Files.exists(path) && !Files.isDirectory(path)) {
        throw new UsageException("--synthetic writes a model directory, but " + path + " is a file");
      }
      long start = System.nanoTime();
      err.println("writing a synthetic Llama-3.2-1B-shaped checkpoint (" + weights.optionName() + ") to " + path + " ...");
      SyntheticLlama.write(path, 1234, weights);
      err.printf("written in %.1f s%n", (System.nanoTime() - start) / 1e9);
    }
    if (!Files.exists(path)) {
      throw new java.nio.file.NoSuchFileException(path.toString());
    }
    ReadMode readMode = switch (args.value("--read").orElse("auto").toLowerCase(Locale.ROOT)) {
      case "auto" -> ReadMode.AUTO;
      case "mapped" -> ReadMode.MAPPED;
      case "positional" -> ReadMode.POSITIONAL;
      case "direct" -> ReadMode.DIRECT;
      default -> throw new UsageException("--read is auto, mapped, positional or direct, not '" + Text.oneLine(args.value("--read").get()) + "'");
    };
    if (args.has("--sha256") && (mode != LoadMode.COPY || backend != LoadBenchmark.Backend.JAVA)) {
      throw new UsageException("--sha256 measures hashing in COPY loads of the java backend");
    }
    if (args.has("--prefetch") && mode != LoadMode.ALIAS) {
      throw new UsageException("--prefetch reads in what an ALIAS load binds: use it with --mode alias");
    }
    Optional<Partition> partition = PartitionArguments.parse(args, path);
    if (partition.isPresent() && backend == LoadBenchmark.Backend.TORCH) {
      throw new UsageException("--backend torch loads whole tensors: --rank and --world load a VarStore (--backend java)");
    }
    if (partition.isPresent() && args.has("--naive")) {
      throw new UsageException("--naive reads whole tensors: leave it out with --rank and --world");
    }
    LoadBenchmark.Result result = LoadBenchmark.run(
        new LoadBenchmark.Settings(path, mode, dtype, threads, runs, args.has("--naive"), backend,
            args.has("--evict"), args.has("--cold"), readMode, args.has("--prefetch"), partition), err);
    Optional<HashBenchmark.Result> hashing = args.has("--sha256")
        ? Optional.of(HashBenchmark.run(path, threads, runs, err)) : Optional.empty();
    if (args.has("--json")) {
      writeJson(result, hashing, out);
    } else {
      writeText(result, out);
      hashing.ifPresent(h -> writeText(h, out));
    }
    return Main.EXIT_OK;
  }

  /** Bench of a URL: COPY loads by range requests, each round beside curl's download of the same files. */
  private static int runRemote(String location, Arguments args, PrintStream out, PrintStream err) throws Exception {
    for (String local : List.of("--mode", "--backend", "--naive", "--evict", "--cold", "--read", "--prefetch",
        "--sha256", "--synthetic", "--scheme", "--rank", "--world", "--rules")) {
      if (args.has(local) || args.value(local).isPresent()) {
        throw new UsageException(local + " is for a checkpoint on this machine; a URL is benched with COPY loads"
            + " (--dtype, --threads, --runs, --concurrency, --range-bytes, --json)");
      }
    }
    RemoteOptions remote = RemoteOptions.defaults();
    remote = remote.withConcurrency(args.integer("--concurrency", remote.concurrency(), 1));
    if (args.value("--range-bytes").isPresent()) {
      long rangeBytes = ByteSize.parse("--range-bytes", args.value("--range-bytes").get());
      if (rangeBytes < 64 << 10 || rangeBytes > Integer.MAX_VALUE) {
        throw new UsageException("--range-bytes is between 64KiB and 2GiB - 1, not " + Text.oneLine(args.value("--range-bytes").get()));
      }
      remote = remote.withRangeBytes(rangeBytes);
    }
    int threads = args.integer("--threads", Math.max(Runtime.getRuntime().availableProcessors(), remote.concurrency()), 1);
    int runs = args.integer("--runs", 3, 1);
    RemoteBenchmark.Result result = RemoteBenchmark.run(new RemoteBenchmark.Settings(location, remote,
        args.floatDType("--dtype"), threads, runs, !args.has("--no-curl")), err);
    if (args.has("--json")) {
      try (JsonGenerator json = JSON.createGenerator(out, JsonEncoding.UTF8)) {
        RemoteBenchmark.writeJson(result, json);
      }
      out.println();
    } else {
      RemoteBenchmark.writeText(result, out);
    }
    return Main.EXIT_OK;
  }

  private static void writeText(LoadBenchmark.Result r, PrintStream out) {
    LoadBenchmark.Settings s = r.settings();
    out.printf("%s: %d tensors in %d file(s), %s of tensor data%n", s.path(), r.tensors(), r.files(),
        Text.size(r.bytes()));
    out.printf("backend %s, mode %s, dtype %s, %d thread(s), %d run(s)%n",
        s.backend().name().toLowerCase(Locale.ROOT), s.mode(), s.dtype().map(DType::name).orElse("keep"), s.threads(), s.runs());
    if (s.partition().isPresent()) {
      PartitionArguments.Shares shares = r.shares().orElseThrow();
      out.printf("partition: rank %d of %d; %s of tensors cut, %s replicated: ideal read %s, read %s (median of the runs)%n",
          s.partition().get().rank(), s.partition().get().world(), Text.size(shares.sliced()),
          Text.size(shares.replicated()), Text.size(shares.ideal()), Text.size(r.medianBytesRead()));
    }
    out.printf("page cache: %s resident, %s of it mapped in 2 MiB pages%n", percent(r.residentFraction()),
        percent(r.hugePageFraction()));
    if (r.hugePageFraction().isPresent() && r.hugePageFraction().getAsDouble() < 0.5) {
      out.println("  (copies out of 4 KiB pages are slower; the cache keeps the page size the file was first read"
          + " or written with: --evict reads it in afresh)");
    }
    if (s.mode() == LoadMode.COPY) {
      out.printf("alloc (create + touch variables): median %.3f s%n", r.medianAllocSeconds());
      out.printf("load (copy into variables):       median %.3f s = %.2f GB/s written (%s written)%n",
          r.medianSeconds(), r.medianGbps(), Text.size(r.bytesWritten()));
    } else {
      out.printf("load (open + bind aliases):       median %.1f ms (%.1f GB/s of tensors bound)%n",
          r.medianSeconds() * 1e3, r.medianGbps());
    }
    out.printf("memcpy baseline, same process:           %.2f GB/s (C library, %d thread(s), median of one before each run)%n",
        r.medianMemcpyGbps(), s.threads());
    out.printf("the JVM's own copy, same buffers:        %.2f GB/s%n", r.medianJavaCopyGbps());
    if (s.cold()) {
      out.printf("cold: files dropped from the page cache before each run (%s resident then); storage %.2f GB/s"
          + " (the best of buffered and O_DIRECT reads, median of one before each run)%n",
          percent(OptionalDouble.of(LoadBenchmark.median(r.coldResidentFractions()))), LoadBenchmark.median(r.storageGbps()));
      out.printf("load / storage:                          %.0f%% (bytes read; median of the runs' ratios)%n",
          100 * r.medianLoadToStorage());
    }
    out.printf("memory per run: peak anonymous %.3fx the variables above the memory before the run (median)%n",
        r.medianRunPeakAnonRatio());
    out.print("page cache growth per run:");
    for (long growth : r.pageCacheGrowthBytes()) {
      out.print(" " + Text.size(Math.max(0, growth)) + (growth < 0 ? " (shrank)" : ""));
    }
    out.println();
    if (s.mode() == LoadMode.COPY) {
      out.printf("load / memcpy:                           %.0f%% (median of the runs' ratios)%n",
          100 * r.medianLoadToMemcpy());
    }
    if (r.naiveSeconds().isPresent()) {
      out.printf("naive (heap read, then copy; 1 thread):  %.3f s = %.2f GB/s%n",
          r.naiveSeconds().getAsDouble(), r.naiveGbps().getAsDouble());
    }
    out.printf("memory: anonymous %s before the runs, peak %s (+%s; variables %s); peak resident set %s%n",
        Text.size(r.baselineAnonBytes()), Text.size(r.peakAnonBytes()),
        Text.size(Math.max(0, r.peakAnonBytes() - r.baselineAnonBytes())), Text.size(r.bytesWritten()),
        Text.size(r.peakRssBytes()));
    out.print("runs (s):");
    for (double run : r.runsSeconds()) {
      out.printf(" %.3f", run);
    }
    out.println();
    Posix.fallbacks().forEach((call, why) -> out.println("without " + call + ": " + why));
  }

  private static void writeText(HashBenchmark.Result h, PrintStream out) {
    out.printf("sha256, JDK MessageDigest (1 thread, 1 MiB heap array in cache): %.2f GB/s%n", h.jdkSha256Gbps());
    out.printf("sha256 of the files (verify --sha256):   %.2f GB/s on %d thread(s) = %.2f GB/s per thread = %.2fx the JDK's%n",
        h.sha256Gbps(), h.threadsUsed(), h.sha256GbpsPerThread(), h.ratio());
    out.printf("load without / with sha256 in the pass:  median %.3f s / %.3f s (%s of files)%n",
        h.loadSeconds(), h.loadSha256Seconds(), Text.size(h.bytes()));
  }

  private static String percent(OptionalDouble fraction) {
    return fraction.isPresent() ? String.format("%.1f%%", 100 * fraction.getAsDouble()) : "unknown";
  }

  private static void writeJson(LoadBenchmark.Result r, Optional<HashBenchmark.Result> hashing, PrintStream out)
      throws IOException {
    LoadBenchmark.Settings s = r.settings();
    try (JsonGenerator json = JSON.createGenerator(out, JsonEncoding.UTF8)) {
      json.writeStartObject();
      json.writeStringField("path", s.path().toString());
      json.writeStringField("backend", s.backend().name().toLowerCase(Locale.ROOT));
      json.writeStringField("mode", s.mode().name().toLowerCase(Locale.ROOT));
      json.writeStringField("dtype", s.dtype().map(DType::name).orElse("keep"));
      json.writeNumberField("threads", s.threads());
      json.writeNumberField("tensors", r.tensors());
      json.writeNumberField("files", r.files());
      json.writeNumberField("bytes", r.bytes());
      json.writeNumberField("bytes_written", r.bytesWritten());
      json.writeNumberField("bytes_read", r.medianBytesRead());
      json.writeFieldName("runs_bytes_read");
      json.writeArray(r.bytesRead(), 0, r.bytesRead().length);
      if (s.partition().isPresent()) {
        PartitionArguments.Shares shares = r.shares().orElseThrow();
        json.writeNumberField("rank", s.partition().get().rank());
        json.writeNumberField("world", s.partition().get().world());
        json.writeStringField("rules", s.partition().get().rules().toString());
        json.writeNumberField("sliced_bytes", shares.sliced());
        json.writeNumberField("replicated_bytes", shares.replicated());
        json.writeNumberField("ideal_bytes_read", shares.ideal());
        json.writeNumberField("bytes_read_to_ideal", (double) r.medianBytesRead() / shares.ideal());
      }
      json.writeFieldName("alloc_seconds");
      json.writeArray(r.allocSeconds(), 0, r.allocSeconds().length);
      json.writeFieldName("runs_seconds");
      json.writeArray(r.runsSeconds(), 0, r.runsSeconds().length);
      json.writeNumberField("median_seconds", r.medianSeconds());
      json.writeNumberField("median_gbps", r.medianGbps());
      json.writeNumberField("memcpy_gbps", r.medianMemcpyGbps());
      json.writeFieldName("memcpy_runs_gbps");
      json.writeArray(r.memcpyGbps(), 0, r.memcpyGbps().length);
      json.writeNumberField("load_to_memcpy", r.medianLoadToMemcpy());
      json.writeBooleanField("cold", s.cold());
      json.writeStringField("read", s.readMode().name().toLowerCase(Locale.ROOT));
      if (s.cold()) {
        json.writeNumberField("storage_gbps", LoadBenchmark.median(r.storageGbps()));
        json.writeFieldName("storage_runs_gbps");
        json.writeArray(r.storageGbps(), 0, r.storageGbps().length);
        json.writeNumberField("load_to_storage", r.medianLoadToStorage());
        json.writeFieldName("cold_resident_fractions");
        json.writeArray(r.coldResidentFractions(), 0, r.coldResidentFractions().length);
      }
      json.writeFieldName("run_peak_anon_above_bytes");
      json.writeArray(r.runPeakAnonAboveBytes(), 0, r.runPeakAnonAboveBytes().length);
      json.writeNumberField("run_peak_anon_ratio", r.medianRunPeakAnonRatio());
      json.writeFieldName("page_cache_growth_bytes");
      json.writeArray(r.pageCacheGrowthBytes(), 0, r.pageCacheGrowthBytes().length);
      json.writeNumberField("java_copy_gbps", r.medianJavaCopyGbps());
      json.writeFieldName("java_copy_runs_gbps");
      json.writeArray(r.javaCopyGbps(), 0, r.javaCopyGbps().length);
      if (r.residentFraction().isPresent()) {
        json.writeNumberField("resident_fraction", r.residentFraction().getAsDouble());
      } else {
        json.writeNullField("resident_fraction");
      }
      if (r.hugePageFraction().isPresent()) {
        json.writeNumberField("huge_page_fraction", r.hugePageFraction().getAsDouble());
      } else {
        json.writeNullField("huge_page_fraction");
      }
      json.writeNumberField("baseline_anon_bytes", r.baselineAnonBytes());
      json.writeNumberField("peak_anon_bytes", r.peakAnonBytes());
      json.writeNumberField("peak_rss_bytes", r.peakRssBytes());
      if (r.naiveSeconds().isPresent()) {
        json.writeNumberField("naive_seconds", r.naiveSeconds().getAsDouble());
        json.writeNumberField("naive_gbps", r.naiveGbps().getAsDouble());
      }
      if (hashing.isPresent()) {
        HashBenchmark.Result h = hashing.get();
        json.writeNumberField("jdk_sha256_gbps", h.jdkSha256Gbps());
        json.writeNumberField("sha256_gbps", h.sha256Gbps());
        json.writeNumberField("sha256_threads", h.threadsUsed());
        json.writeNumberField("sha256_gbps_per_thread", h.sha256GbpsPerThread());
        json.writeNumberField("sha256_to_jdk", h.ratio());
        json.writeNumberField("load_seconds", h.loadSeconds());
        json.writeNumberField("load_sha256_seconds", h.loadSha256Seconds());
      }
      // What the process did without (page advice, streaming-store routines), and why.
      json.writeObjectFieldStart("fallbacks");
      for (var fallback : Posix.fallbacks().entrySet()) {
        json.writeStringField(fallback.getKey(), fallback.getValue());
      }
      json.writeEndObject();
      json.writeEndObject();
    }
    out.println();
  }
}
