package dev.loadstone.cli;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.llama.Generation;
import dev.loadstone.llama.Generator;
import dev.loadstone.llama.InvalidModelException;
import dev.loadstone.llama.LlamaConfig;
import dev.loadstone.llama.LlamaModel;
import dev.loadstone.llama.ReadBandwidth;
import dev.loadstone.llama.Sampler;
import dev.loadstone.llama.tokenizer.StreamingDecoder;
import dev.loadstone.llama.tokenizer.Tokenizer;
import dev.loadstone.checkpoint.HubCache;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * {@code loadstone generate}: runs a Llama model on a prompt and prints what it generates.
 */
final class GenerateCommand implements Command {
  static final int DEFAULT_MAX_NEW_TOKENS = 128;
  static final double DEFAULT_TEMPERATURE = 0.8;
  static final double DEFAULT_TOP_P = 0.95;
  /** The buffer that --bench reads to measure the memory's read bandwidth. */
  static final long BANDWIDTH_BYTES = 1L << 30;

  @Override
  public String name() {
    return "generate";
  }

  @Override
  public String synopsis() {
    return "--model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N] [--temperature T]"
        + " [--top-p P] [--seed S] [--threads N] [--print-ids] [--ignore-eos] [--bench]";
  }

  @Override
  public String summary() {
    return "generate text with a Llama model (LlamaForCausalLM; F32/F16/BF16, FP8 or 4-bit weights)";
  }

  @Override
  public String description() {
    return """
        DIR is a Hugging Face model directory: config.json and model.safetensors, or
        model.safetensors.index.json and its shards. F32, F16 and BF16 weights are read where
        they lie in the mapped files (an ALIAS load, no converted copy); other dtypes are copied
        into F32. A quantized checkpoint (config.json's quantization_config: FP8 with scales,
        GPTQ, AWQ, compressed-tensors) is dequantized on load into its logical dtype (BF16
        for the hub's models), the rest copied as stored.

        --prompt TEXT is encoded with DIR's tokenizer.json, after the beginning-of-sequence
        token of config.json (bos_token_id) when there is one, and the generated text is
        streamed to stdout as it is produced. --prompt-ids takes the token ids as they are
        (nothing is added). --print-ids prints only the generated ids, as one line of
        comma-separated integers; with --prompt-ids and --print-ids no tokenizer is needed.

        Generation stops after --max-new-tokens tokens (default %d), or at an end-of-sequence
        token of config.json (eos_token_id), which is then the last id printed; --ignore-eos
        goes on to the limit. --temperature 0 is greedy (largest logit); otherwise tokens are
        sampled at --temperature (default %s) from the smallest set of most likely tokens
        reaching --top-p (default %s), seeded by --seed (default: the clock).

        On stderr: the load time and mode, the prompt's tokens per second (one batched pass)
        and the decode speed (tokens per second after the first token). --bench adds the
        memory's read bandwidth, measured in the same process on the same number of threads
        over a 1 GiB buffer, the bound it sets on decoding (bandwidth / bytes of weights read
        per token) and the decode speed as a share of that bound.
        """.formatted(DEFAULT_MAX_NEW_TOKENS, DEFAULT_TEMPERATURE, DEFAULT_TOP_P);
  }

  @Override
  public List<Option> options() {
    return List.of(
        Option.valued("--model", "DIR", "the model directory (config.json and safetensors weights)"),
        Option.valued("--prompt", "TEXT", "the prompt as text (needs DIR/tokenizer.json)"),
        Option.valued("--prompt-ids", "1,2,3", "the prompt as token ids"),
        Option.valued("--max-new-tokens", "N", "the most tokens to generate (default " + DEFAULT_MAX_NEW_TOKENS + ")"),
        Option.valued("--temperature", "T", "sampling temperature, 0 for greedy (default " + DEFAULT_TEMPERATURE + ")"),
        Option.valued("--top-p", "P", "nucleus sampling threshold in (0, 1] (default " + DEFAULT_TOP_P + ")"),
        Option.valued("--seed", "S", "random seed for sampling (default: the clock)"),
        Option.valued("--threads", "N", "threads that run the model (default: the number of cores)"),
        Option.flag("--print-ids", "print the generated token ids, comma-separated, instead of text"),
        Option.flag("--ignore-eos", "do not stop at an end-of-sequence token"),
        Option.flag("--bench", "also measure read bandwidth and report decode speed against its bound"),
        Option.flag("--prefetch", "read weights used in place into memory on all threads while loading"));
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws Exception {
    args.require();
    Path directory = modelDirectory(args);
    Optional<String> text = args.value("--prompt");
    Optional<String> idsText = args.value("--prompt-ids");
    if (text.isPresent() == idsText.isPresent()) {
      throw new UsageException("give the prompt as either --prompt TEXT or --prompt-ids 1,2,3");
    }
    int[] promptIds = idsText.isPresent() ? parseIds(idsText.get()) : null;
    int maxNewTokens = args.integer("--max-new-tokens", DEFAULT_MAX_NEW_TOKENS, 1);
    int threads = args.integer("--threads", Runtime.getRuntime().availableProcessors(), 1);
    double temperature = number(args, "--temperature", DEFAULT_TEMPERATURE);
    if (temperature < 0) {
      throw new UsageException("--temperature must be at least 0, not " + Text.number(temperature));
    }
    double topP = number(args, "--top-p", DEFAULT_TOP_P);
    if (!(topP > 0 && topP <= 1)) {
      throw new UsageException("--top-p must be in (0, 1], not " + Text.number(topP));
    }
    long seed = seed(args);
    boolean printIds = args.has("--print-ids");

    // Text in or out needs the tokenizer: check for it before loading the weights.
    Tokenizer tokenizer = null;
    if (text.isPresent() || !printIds) {
      Path file = directory.resolve("tokenizer.json");
      if (!Files.isRegularFile(file)) {
        err.println("loadstone generate: " + Text.oneLine(directory.toString()) + " has no tokenizer.json"
            + " for text: give the prompt as --prompt-ids and print the result with --print-ids");
        return Main.EXIT_USAGE;
      }
      tokenizer = Tokenizer.load(file);
    }

    LlamaModel model;
    try {
      LlamaModel.Options options = LlamaModel.Options.defaults().withThreads(threads);
      model = LlamaModel.load(directory, args.has("--prefetch") ? options.withPrefetch() : options);
    } catch (InvalidModelException | CheckpointException e) {
      err.println("loadstone generate: invalid model directory: " + Text.oneLine(e.getMessage()));
      return Main.EXIT_INVALID;
    } catch (UnsupportedOperationException e) {
      err.println("loadstone generate: " + Text.oneLine(e.getMessage()));
      return Main.EXIT_USAGE;
    }
    try (model) {
      LlamaConfig config = model.config();
      err.printf(Locale.ROOT, "loaded %s in %.3f s: %s, %s weights%s (%s), %d thread(s)%n", directory,
          model.loadSeconds(), model.loadMode(),
          model.weightTypes().stream().map(Enum::name).collect(Collectors.joining("+")),
          model.loadMode() == dev.loadstone.store.LoadMode.ALIAS ? " read in place" : " copied",
          Text.size(model.loadReport().bytesRead()), model.threads());
      if (promptIds == null) {
        int[] encoded = tokenizer.encode(text.get());
        promptIds = config.bosTokenId().isPresent() ? prepend(config.bosTokenId().getAsInt(), encoded) : encoded;
        if (promptIds.length == 0) {
          throw new UsageException("the prompt encodes to no tokens");
        }
      }
      for (int id : promptIds) {
        if (id >= config.vocabSize()) {
          throw new UsageException("--prompt-ids: token " + id + " is outside the vocabulary of "
              + config.vocabSize() + " tokens");
        }
      }
      Set<Integer> stop = args.has("--ignore-eos") ? Set.of() : new HashSet<>(config.eosTokenIds());
      Sampler sampler = temperature == 0 ? Sampler.greedy() : Sampler.of(temperature, topP, seed);
      StreamingDecoder stream = printIds ? null : tokenizer.streamingDecoder(true);
      Generation result = new Generator(model, sampler).generate(promptIds, maxNewTokens, stop, token -> {
          if (stream != null && !stop.contains(token)) {
            out.print(stream.next(token));
            out.flush();
          }
        });
      if (printIds) {
        out.println(Arrays.stream(result.tokens()).mapToObj(Integer::toString).collect(Collectors.joining(",")));
      } else {
        out.println(stream.finish());
      }
      out.flush();
      err.printf(Locale.ROOT, "prompt: %d tokens in %.3f s (%.1f tokens/s, one batched pass)%n",
          result.promptTokens(), result.prefillNanos() / 1e9, result.prefillTokensPerSecond());
      err.printf(Locale.ROOT, "generated %d tokens%s: decode %.2f tokens/s (%d steps in %.3f s)%n",
          result.tokens().length, result.stopped() ? " (stopped at end of sequence)" : "",
          result.decodeTokensPerSecond(), result.decodeSteps(), result.decodeNanos() / 1e9);
      if (args.has("--bench")) {
        bench(model, result, threads, err);
      }
    }
    return Main.EXIT_OK;
  }

  private static void bench(LlamaModel model, Generation result, int threads, PrintStream err) {
    double bandwidth = ReadBandwidth.measure(threads, BANDWIDTH_BYTES, 3);
    long perToken = model.weightBytesPerToken();
    double bound = bandwidth / perToken;
    double decode = result.decodeTokensPerSecond();
    err.printf(Locale.ROOT, "bench: read bandwidth %.1f GB/s (%d thread(s), %s buffer, best of 3 passes)%n",
        bandwidth / 1e9, threads, Text.size(BANDWIDTH_BYTES));
    err.printf(Locale.ROOT, "bench: weights read per token %.3f GB; bound %.2f tokens/s; decode %.2f tokens/s = %.0f%% of the bound%n",
        perToken / 1e9, bound, decode, 100 * decode / bound);
  }

  private static Path modelDirectory(Arguments args) throws UsageException, IOException {
    String value = args.value("--model").orElseThrow(() -> new UsageException("missing --model DIR"));
    if (HubCache.isModelId(value) && !Files.exists(Path.of(value), java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return Inputs.localCheckpoint(value, "generate");
    }
    Path path;
    try {
      path = Path.of(value);
    } catch (InvalidPathException e) {
      throw new UsageException("--model: not a valid path: '" + Text.oneLine(value) + "'");
    }
    if (!Files.exists(path)) {
      throw new NoSuchFileException(value);
    }
    if (!Files.isDirectory(path)) {
      throw new UsageException("--model names a model directory (config.json and weights), not a file: " + Text.oneLine(value));
    }
    return path;
  }

  static int[] parseIds(String value) throws UsageException {
    String[] parts = value.split(",", -1);
    int[] ids = new int[parts.length];
    for (int i = 0; i < parts.length; i++) {
      String part = parts[i].strip();
      try {
        ids[i] = Integer.parseInt(part);
      } catch (NumberFormatException e) {
        ids[i] = -1;
      }
      if (ids[i] < 0) {
        throw new UsageException("--prompt-ids is a comma-separated list of token ids (integers >= 0); '"
            + Text.oneLine(part) + "' is not one");
      }
    }
    return ids;
  }

  private static int[] prepend(int first, int[] rest) {
    int[] all = new int[rest.length + 1];
    all[0] = first;
    System.arraycopy(rest, 0, all, 1, rest.length);
    return all;
  }

  private static double number(Arguments args, String option, double fallback) throws UsageException {
    Optional<String> value = args.value(option);
    if (value.isEmpty()) {
      return fallback;
    }
    try {
      double parsed = Double.parseDouble(value.get().strip());
      if (Double.isFinite(parsed)) {
        return parsed;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new UsageException(option + " needs a number, not '" + Text.oneLine(value.get()) + "'");
  }

  private static long seed(Arguments args) throws UsageException {
    Optional<String> value = args.value("--seed");
    if (value.isEmpty()) {
      return System.nanoTime();
    }
    try {
      return Long.parseLong(value.get().strip());
    } catch (NumberFormatException e) {
      throw new UsageException("--seed needs a whole number, not '" + Text.oneLine(value.get()) + "'");
    }
  }
}
