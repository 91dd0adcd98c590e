package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.s3.S3Urls;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.VarStore;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code loadstone bench URL}: COPY loads of a remote checkpoint ({@code http(s)://} or
 * {@code s3://}), alternating with the same-run baseline: {@code curl} downloading the same
 * files to {@code /dev/null}, one after the other, from the same server (for {@code s3://}, the
 * objects' path-style URLs at the endpoint override, unsigned). Each round runs the baseline,
 * then the load (into variables created and touched before it is timed); every round is
 * reported.
 */
final class RemoteBenchmark {
  private RemoteBenchmark() {}

  /**
   * @param location the URL
   * @param remote how the load reads (concurrency, range size)
   * @param dtype the variables' dtype for float tensors, if not the file's
   * @param threads loading threads (at least the remote concurrency read at once)
   * @param runs rounds of baseline + load
   */
  record Settings(String location, RemoteOptions remote, Optional<DType> dtype, int threads, int runs, boolean curl) {}

  /**
   * @param files the checkpoint's files (URLs)
   * @param bytes the tensors' bytes
   * @param bytesRead bytes the load read (the median run's report)
   * @param loadSeconds each round's load (open excluded; the variables are made and touched before it)
   * @param openSeconds each round's open (the headers and index)
   * @param curlSeconds each round's downloads of the files, or empty without a baseline
   * @param curlBytes the bytes the downloads received in one round
   * @param curlWhyNot why there is no baseline, if there is none
   */
  record Result(Settings settings, List<String> files, int tensors, long bytes, long bytesRead, double[] loadSeconds,
      double[] openSeconds, double[] curlSeconds, long curlBytes, String curlWhyNot) {
    double medianLoadGbps() {
      return bytes / LoadBenchmark.median(loadSeconds) / 1e9;
    }

    Optional<Double> medianCurlGbps() {
      return curlSeconds.length == 0 ? Optional.empty() : Optional.of(curlBytes / LoadBenchmark.median(curlSeconds) / 1e9);
    }

    /** Each round's load throughput over its own baseline's. */
    double[] ratios() {
      double[] ratios = new double[curlSeconds.length];
      for (int i = 0; i < ratios.length; i++) {
        ratios[i] = (bytes / loadSeconds[i]) / (curlBytes / curlSeconds[i]);
      }
      return ratios;
    }
  }

  static Result run(Settings s, PrintStream err) throws IOException, InterruptedException {
    List<String> files;
    int tensors;
    long bytes;
    try (Checkpoint checkpoint = Checkpoint.open(s.location(), s.remote())) {
      files = checkpoint.files().stream().map(Path::toString).toList();
      tensors = checkpoint.tensors().size();
      bytes = checkpoint.totalSize();
    }
    List<URI> downloads = new ArrayList<>();
    String whyNot = s.curl() ? null : "--no-curl";
    for (String file : files) {
      URI url = URI.create(file);
      if ("s3".equalsIgnoreCase(url.getScheme())) {
        Optional<URI> plain = S3Urls.endpointUrl(url);
        if (plain.isEmpty()) {
          whyNot = "no S3 endpoint override (AWS_ENDPOINT_URL_S3) to reach the objects with curl";
        }
        plain.ifPresent(downloads::add);
      } else {
        downloads.add(url);
      }
    }
    LoadOptions load = LoadOptions.defaults().withThreads(s.threads());
    if (s.dtype().isPresent()) {
      load = load.withCreateDType(s.dtype().get());
    }
    double[] loadSeconds = new double[s.runs()];
    double[] openSeconds = new double[s.runs()];
    double[] curlSeconds = whyNot == null ? new double[s.runs()] : new double[0];
    long[] bytesRead = new long[s.runs()];
    long curlBytes = 0;
    for (int run = 0; run < s.runs(); run++) {
      if (whyNot == null) {
        long start = System.nanoTime();
        curlBytes = 0;
        for (URI url : downloads) {
          curlBytes += curl(url);
        }
        curlSeconds[run] = (System.nanoTime() - start) / 1e9;
      }
      long opening = System.nanoTime();
      try (Checkpoint checkpoint = Checkpoint.open(s.location(), s.remote());
           VarStore store = VarStore.declaredFor(checkpoint, load)) {
        openSeconds[run] = (System.nanoTime() - opening) / 1e9;
        // Created and touched as a model would, before the timed load (as the local bench does):
        // the first touch of fresh memory is slow here, and no part of reading.
        store.allocate(s.threads());
        long start = System.nanoTime();
        LoadReport report = store.load(checkpoint, load);
        loadSeconds[run] = (System.nanoTime() - start) / 1e9;
        bytesRead[run] = report.bytesRead();
      }
      err.printf("round %d: %s%.2f GB/s load%n", run + 1,
          whyNot == null ? String.format("curl %.2f GB/s, ", curlBytes / curlSeconds[run] / 1e9) : "",
          bytes / loadSeconds[run] / 1e9);
    }
    java.util.Arrays.sort(bytesRead);
    return new Result(s, files, tensors, bytes, bytesRead[bytesRead.length / 2], loadSeconds, openSeconds, curlSeconds,
        curlBytes, whyNot);
  }

  /** Downloads {@code url} to /dev/null with curl; the bytes it received. */
  private static long curl(URI url) throws IOException, InterruptedException {
    Process process;
    try {
      process = new ProcessBuilder("curl", "--silent", "--show-error", "--fail", "--location",
          "--output", "/dev/null", "--write-out", "%{size_download}", url.toString())
          .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    } catch (IOException e) {
      throw new IOException("cannot run curl for the baseline (--no-curl leaves it out): " + e.getMessage(), e);
    }
    String written = new String(process.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII).strip();
    int code = process.waitFor();
    if (code != 0) {
      throw new IOException("curl failed (exit " + code + ") for " + url.getScheme() + "://" + url.getHost()
          + (url.getPort() == -1 ? "" : ":" + url.getPort()) + url.getRawPath());
    }
    return Long.parseLong(written);
  }

  static void writeText(Result r, PrintStream out) {
    Settings s = r.settings();
    out.printf("%s: %d tensors in %d file(s), %s of tensor data%n", s.location(), r.tensors(), r.files().size(),
        Text.size(r.bytes()));
    out.printf("mode COPY, dtype %s, %d thread(s), concurrency %d, ranges of %s, %d round(s)%n",
        s.dtype().map(DType::name).orElse("keep"), s.threads(), s.remote().concurrency(),
        Text.size(s.remote().rangeBytes()), s.runs());
    out.printf("load (range reads into variables): median %.3f s = %.2f GB/s (%s read)%n",
        LoadBenchmark.median(r.loadSeconds()), r.medianLoadGbps(), Text.size(r.bytesRead()));
    out.printf("open (headers, index):             median %.1f ms%n", LoadBenchmark.median(r.openSeconds()) * 1e3);
    if (r.medianCurlGbps().isPresent()) {
      out.printf("curl to /dev/null, same files:     median %.3f s = %.2f GB/s (one file after another, same run)%n",
          LoadBenchmark.median(r.curlSeconds()), r.medianCurlGbps().get());
      out.printf("load / curl:                       %.2fx (median of the rounds' ratios)%n",
          LoadBenchmark.median(r.ratios()));
    } else {
      out.println("no curl baseline: " + r.curlWhyNot());
    }
    out.print("rounds:");
    for (int i = 0; i < r.loadSeconds().length; i++) {
      out.printf(" [%s load %.3f s]", r.curlSeconds().length == 0 ? "" : String.format("curl %.3f s,", r.curlSeconds()[i]),
          r.loadSeconds()[i]);
    }
    out.println();
  }

  static void writeJson(Result r, com.fasterxml.jackson.core.JsonGenerator json) throws IOException {
    Settings s = r.settings();
    json.writeStartObject();
    json.writeStringField("path", s.location());
    json.writeStringField("backend", "java");
    json.writeStringField("mode", "copy");
    json.writeStringField("dtype", s.dtype().map(DType::name).orElse("keep"));
    json.writeNumberField("threads", s.threads());
    json.writeNumberField("concurrency", s.remote().concurrency());
    json.writeNumberField("range_bytes", s.remote().rangeBytes());
    json.writeNumberField("tensors", r.tensors());
    json.writeNumberField("files", r.files().size());
    json.writeNumberField("bytes", r.bytes());
    json.writeNumberField("bytes_read", r.bytesRead());
    json.writeFieldName("runs_seconds");
    json.writeArray(r.loadSeconds(), 0, r.loadSeconds().length);
    json.writeNumberField("median_seconds", LoadBenchmark.median(r.loadSeconds()));
    json.writeNumberField("median_gbps", r.medianLoadGbps());
    json.writeFieldName("open_seconds");
    json.writeArray(r.openSeconds(), 0, r.openSeconds().length);
    if (r.medianCurlGbps().isPresent()) {
      json.writeFieldName("curl_runs_seconds");
      json.writeArray(r.curlSeconds(), 0, r.curlSeconds().length);
      json.writeNumberField("curl_bytes", r.curlBytes());
      json.writeNumberField("curl_gbps", r.medianCurlGbps().get());
      json.writeFieldName("load_to_curl_runs");
      json.writeArray(r.ratios(), 0, r.ratios().length);
      json.writeNumberField("load_to_curl", LoadBenchmark.median(r.ratios()));
    } else {
      json.writeStringField("curl_missing", r.curlWhyNot());
    }
    json.writeEndObject();
  }
}
