package dev.loadstone.cli;

import dev.loadstone.llama.Generation;
import dev.loadstone.llama.Generator;
import dev.loadstone.llama.LlamaModel;
import dev.loadstone.llama.Sampler;
import dev.loadstone.llama.tokenizer.StreamingDecoder;
import dev.loadstone.llama.tokenizer.Tokenizer;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.ReadMode;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * {@code loadstone demo}: what Loadstone is for, in under a minute on a fresh machine with
 * nothing downloaded. It writes (once, then reuses) a checkpoint of realistic size — random
 * weights shaped like Llama-3.2-1B — and loads it zero-copy and by copy with speed and memory
 * side by side; then it generates text with the small trained Llama shipped in the repository.
 */
final class DemoCommand implements Command {
  /** The trained example model shipped in the repository. */
  static final String EXAMPLE_MODEL = "examples/fortune-llama";
  /** Where the synthetic checkpoint is cached, under {@code loadstone.home}. */
  static final String CACHE = ".cache/demo/synthetic-llama-3.2-1b";

  private static final String PROMPT = "The meaning of life";

  @Override
  public String name() {
    return "demo";
  }

  @Override
  public String synopsis() {
    return "[--cache DIR] [--skip-load]";
  }

  @Override
  public String summary() {
    return "load a 2.5 GB checkpoint zero-copy and by copy, then generate text";
  }

  @Override
  public String description() {
    return """
        1. Writes a synthetic Llama-3.2-1B-shaped BF16 checkpoint (146 tensors, 2.47 GB of
           random weights) into ${loadstone.home}/%s, once; later runs reuse it.
        2. Loads it into a VarStore zero-copy (ALIAS) and by copy (COPY), and the naive way
           (heap read, then copy), with time, speed and memory added, beside a memcpy.
        3. Generates text with the trained example model in %s (a 4.5 M parameter
           Llama trained on fortune cookies), its BF16 weights bound zero-copy.
        --skip-load runs step 3 only.
        """.formatted(CACHE, EXAMPLE_MODEL);
  }

  @Override
  public List<Option> options() {
    return List.of(
        Option.valued("--cache", "DIR", "where to keep the synthetic checkpoint"),
        Option.flag("--skip-load", "skip the 2.5 GB load comparison; only generate text"));
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws Exception {
    args.require();
    Path home = home();
    out.println("Loadstone demo: zero-copy loading of .safetensors weights on the JVM");
    if (!args.has("--skip-load")) {
      Path cache = args.value("--cache").map(Path::of).orElse(home.resolve(CACHE));
      compareLoads(cache, out, err);
    }
    generate(home.resolve(EXAMPLE_MODEL), out);
    return Main.EXIT_OK;
  }

  private static Path home() {
    String home = System.getProperty("loadstone.home");
    return home == null || home.isBlank() ? Path.of("") : Path.of(home);
  }

  private static void compareLoads(Path cache, PrintStream out, PrintStream err) throws IOException {
    out.println();
    out.println("1. A checkpoint of realistic size: random weights shaped like Llama-3.2-1B (BF16)");
    if (SyntheticLlama.existsIn(cache)) {
      out.println("   reusing " + cache);
    } else {
      long needed = 2_600_000_000L;
      Files.createDirectories(cache);
      FileStore store = Files.getFileStore(cache);
      if (store.getUsableSpace() < needed) {
        out.println("   skipped: " + cache + " has " + Text.size(store.getUsableSpace())
            + " free, the checkpoint needs 2.5 GB (use --cache DIR)");
        return;
      }
      long start = System.nanoTime();
      SyntheticLlama.write(cache, 1234);
      out.printf(Locale.ROOT, "   written to %s in %.1f s (kept for the next run)%n", cache,
          (System.nanoTime() - start) / 1e9);
    }
    int threads = Runtime.getRuntime().availableProcessors();
    LoadBenchmark.Result alias = LoadBenchmark.run(new LoadBenchmark.Settings(cache, LoadMode.ALIAS,
        Optional.empty(), threads, 3, false, LoadBenchmark.Backend.JAVA, false, false, ReadMode.AUTO, false), err);
    LoadBenchmark.Result copy = LoadBenchmark.run(new LoadBenchmark.Settings(cache, LoadMode.COPY,
        Optional.empty(), threads, 3, true, LoadBenchmark.Backend.JAVA, false, false, ReadMode.AUTO, false), err);
    out.printf(Locale.ROOT, "   %d tensors, %s, read into the page cache first%s%n", copy.tensors(),
        Text.size(copy.bytes()), copy.hugePageFraction().isPresent()
            ? String.format(Locale.ROOT, " (%.0f%% of it in 2 MiB pages)", 100 * copy.hugePageFraction().getAsDouble())
            : "");
    out.println();
    out.printf(Locale.ROOT, "2. Loading it into a VarStore (%d threads):%n", threads);
    out.println("                                   time       speed         memory added");
    out.printf(Locale.ROOT, "   ALIAS  zero-copy (open + bind) %8.1f ms  %-12s  %s%n",
        alias.medianSeconds() * 1e3, "-", Text.size(Math.max(0, alias.peakAnonBytes() - alias.baselineAnonBytes())));
    out.printf(Locale.ROOT, "   COPY   one copy, BF16 -> BF16  %8.3f s   %5.1f GB/s    %s (%.2fx the weights)%n",
        copy.medianSeconds(), copy.medianGbps(), Text.size(copy.peakAnonBytes() - copy.baselineAnonBytes()),
        (double) (copy.peakAnonBytes() - copy.baselineAnonBytes()) / copy.bytes());
    double naive = copy.naiveSeconds().orElse(Double.NaN);
    out.printf(Locale.ROOT, "   naive  heap read, then copy    %8.3f s   %5.1f GB/s    plus a heap copy of each tensor%n",
        naive, copy.bytes() / naive / 1e9);
    out.printf(Locale.ROOT, "   memcpy of the same bytes       %8.3f s   %5.1f GB/s%n",
        copy.bytes() / copy.medianMemcpyGbps() / 1e9, copy.medianMemcpyGbps());
  }

  private static void generate(Path directory, PrintStream out) throws IOException {
    out.println();
    out.println("3. Generating text with the example model " + directory.getFileName()
        + " (a small Llama trained on fortune cookies):");
    Tokenizer tokenizer = Tokenizer.load(directory.resolve("tokenizer.json"));
    try (LlamaModel model = LlamaModel.load(directory, LlamaModel.Options.defaults())) {
      out.printf(Locale.ROOT, "   loaded in %.0f ms, %s, %s of weights bound in place%n",
          model.loadSeconds() * 1e3, model.loadMode(), Text.size(model.loadReport().bytesRead()));
      int[] prompt = tokenizer.encode(PROMPT, true);
      Set<Integer> stop = new HashSet<>(model.config().eosTokenIds());
      StreamingDecoder decoder = tokenizer.streamingDecoder(true);
      StringBuilder text = new StringBuilder();
      out.println("   prompt: \"" + PROMPT + "\"");
      out.println();
      out.print(PROMPT);
      Generation result = new Generator(model, Sampler.of(0.8, 0.95, 42)).generate(prompt, 60, stop, token -> {
        String piece = decoder.next(token);
        text.append(piece);
        out.print(piece);
        out.flush();
      });
      text.append(decoder.finish());
      if (text.isEmpty() || text.charAt(text.length() - 1) != '\n') {
        out.println();
      }
      out.printf(Locale.ROOT, "   %d tokens, %.0f tokens/s (temperature 0.8, top-p 0.95, seed 42)%n",
          result.tokens().length, result.decodeTokensPerSecond());
    }
  }
}
