package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.HubCache;
import dev.loadstone.checkpoint.HubDownloader;
import dev.loadstone.safetensors.RemoteOptions;
import java.io.PrintStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code loadstone pull ID-or-URL}: downloads a model from the Hugging Face hub into the local
 * Hugging Face cache ({@link HubDownloader}), so that every command, {@code Checkpoint.open(id)}
 * and the Python tools find it there.
 */
final class PullCommand implements Command {
  /** {@code /ORG/NAME}, then optionally {@code /tree/REV} or {@code /resolve/REV[/...]}. */
  private static final Pattern REPO_PATH = Pattern.compile("/([^/]+/[^/]+?)(?:/(?:tree|resolve)/([^/]+)(?:/.*)?)?/?");

  @Override
  public String name() {
    return "pull";
  }

  @Override
  public String synopsis() {
    return "ID-or-URL [--revision REV] [--endpoint URL] [--include GLOB]...";
  }

  @Override
  public String summary() {
    return "download a model into the Hugging Face cache";
  }

  @Override
  public String description() {
    return """
        Downloads a model's files from the Hugging Face hub into the local Hugging Face cache
        (HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else
        ~/.cache/huggingface/hub) in the layout huggingface_hub writes: blobs/ named by their
        etag (the SHA-256 of LFS files), snapshots/COMMIT/ of relative links into blobs/, and
        refs/REVISION holding the commit. Python tools, Checkpoint.open("ORG/NAME") and the
        other commands then find the model by its id.

        ID-or-URL: ORG/NAME, ORG/NAME@REVISION, or a URL of the model on a hub
        (https://huggingface.co/ORG/NAME[/tree/REV]), whose host is the endpoint unless
        --endpoint says otherwise. The revision defaults to main.

        Only files matching an --include pattern are pulled (fnmatch patterns, where * also
        matches /; default: *.safetensors, *.json, tokenizer.model, *.tiktoken, merges.txt,
        vocab.txt: the weights, the configuration and the tokenizer). Files already in the
        cache are not downloaded again. An interrupted pull leaves blobs/*.incomplete; the next
        pull resumes each from its last byte. Each LFS file's SHA-256 is checked against the
        hub's X-Linked-Etag while it downloads: a mismatch deletes the partial blob, names the
        file and both hashes, and exits 1.

        HF_TOKEN is sent as a bearer token to the endpoint's host only (never to the CDN it
        redirects to). HF_ENDPOINT sets the endpoint. Progress goes to stderr; the result line
        to stdout.
        """;
  }

  @Override
  public List<Option> options() {
    return List.of(
        Option.valued("--revision", "REV", "the branch, tag or commit (default main)"),
        Option.valued("--endpoint", "URL", "the hub (default HF_ENDPOINT, else https://huggingface.co)"),
        Option.repeatable("--include", "GLOB", "pull the files matching GLOB (repeatable; default: weights, configs, tokenizer)"));
  }

  /** What to pull: the model, its revision, and the hub's endpoint if the argument named one. */
  record Target(String modelId, String revision, Optional<URI> endpoint) {}

  /**
   * Reads {@code ORG/NAME[@REV]} or a hub URL of a model.
   *
   * @throws UsageException if it is neither, or names a revision other than {@code revision}
   */
  static Target target(String argument, Optional<String> revision) throws UsageException {
    String modelId;
    Optional<String> named = Optional.empty();
    Optional<URI> endpoint = Optional.empty();
    if (Checkpoint.isUrl(argument)) {
      URI url;
      try {
        url = new URI(argument);
      } catch (URISyntaxException e) {
        throw new UsageException("not a valid URL: '" + Text.oneLine(argument) + "' (" + e.getReason() + ")");
      }
      Matcher path = REPO_PATH.matcher(url.getRawPath() == null ? "" : url.getRawPath());
      if (url.getHost() == null || !path.matches()) {
        throw new UsageException("'" + Text.oneLine(argument) + "' is not the URL of a model on a hub"
            + " (https://HOST/ORG/NAME[/tree/REVISION])");
      }
      modelId = path.group(1);
      named = Optional.ofNullable(path.group(2)).map(r -> java.net.URLDecoder.decode(r, java.nio.charset.StandardCharsets.UTF_8));
      endpoint = Optional.of(URI.create(url.getScheme() + "://" + url.getRawAuthority()));
    } else {
      int at = argument.indexOf('@');
      modelId = at < 0 ? argument : argument.substring(0, at);
      named = at < 0 ? Optional.empty() : Optional.of(argument.substring(at + 1));
    }
    if (!HubCache.isModelId(modelId)) {
      throw new UsageException("'" + Text.oneLine(modelId) + "' is not a model id (ORG/NAME)");
    }
    if (named.isPresent() && revision.isPresent() && !named.get().equals(revision.get())) {
      throw new UsageException("the revision is given twice: " + Text.oneLine(named.get()) + " and --revision "
          + Text.oneLine(revision.get()));
    }
    String rev = named.or(() -> revision).orElse(HubCache.DEFAULT_REVISION);
    if (rev.isEmpty()) {
      throw new UsageException("an empty revision");
    }
    return new Target(modelId, rev, endpoint);
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws Exception {
    Target target = target(args.requireOne("ID-or-URL"), args.value("--revision"));
    RemoteOptions remote = RemoteOptions.defaults();
    Optional<URI> endpoint = args.value("--endpoint").map(PullCommand::endpoint).or(target::endpoint);
    if (endpoint.isPresent()) {
      if (endpoint.get().getHost() == null) {
        throw new UsageException("--endpoint needs a URL with a host, not '" + Text.oneLine(endpoint.get().toString()) + "'");
      }
      remote = remote.withEndpoint(endpoint.get());
    }
    List<String> include = args.values("--include").isEmpty() ? HubDownloader.DEFAULT_INCLUDE : args.values("--include");
    HubCache cache = HubCache.fromEnvironment();
    err.println("pulling " + target.modelId() + "@" + target.revision() + " from " + remote.endpoint() + " into "
        + cache.root());
    Map<String, Long> lastReport = new ConcurrentHashMap<>();
    HubDownloader.Result result = new HubDownloader(cache, remote).pull(target.modelId(), target.revision(), include,
        new HubDownloader.Listener() {
          @Override
          public void progress(String file, long done, long total) {
            long now = System.nanoTime();
            Long last = lastReport.get(file);
            if (last == null || now - last > 2_000_000_000L) {
              lastReport.put(file, now);
              err.printf("  %s: %s of %s bytes%n", Text.oneLine(file), Text.grouped(done), Text.grouped(total));
            }
          }

          @Override
          public void finished(String file, boolean downloaded, long bytes) {
            err.printf("  %s: %s (%s bytes)%n", Text.oneLine(file), downloaded ? "downloaded" : "in the cache",
                Text.grouped(bytes));
          }
        });
    out.println("OK " + result.modelId() + "@" + result.revision() + " (commit " + result.commit() + "): "
        + Text.count(result.downloaded().size(), "file") + " downloaded (" + Text.grouped(result.bytesDownloaded())
        + " bytes), " + result.cached().size() + " in the cache; " + result.snapshot());
    return Main.EXIT_OK;
  }

  private static URI endpoint(String value) {
    try {
      return new URI(value.strip());
    } catch (URISyntaxException e) {
      return URI.create("invalid:");
    }
  }
}
