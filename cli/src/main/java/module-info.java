/** The {@code loadstone} command line: inspect, verify and the other commands. */
module dev.loadstone.cli {
  requires dev.loadstone.core;
  requires dev.loadstone.llama;
  // s3:// checkpoints (its store is found by the service loader; S3Urls for bench's baseline).
  requires dev.loadstone.s3;
  requires com.fasterxml.jackson.core;
  // ExtendedOpenOption.DIRECT, for bench --cold's storage baseline.
  requires jdk.unsupported;
  // Static: only "bench --backend torch" uses libtorch (through LibtorchBenchmarkRun), so the other
  // commands need not resolve the torch module and the JavaCPP jars under it; the launcher adds
  // them for bench.
  requires static dev.loadstone.torch;
}
