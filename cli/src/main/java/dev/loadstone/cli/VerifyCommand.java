package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.FileHashes;
import dev.loadstone.checkpoint.FileHashes.FileHash;
import dev.loadstone.safetensors.SafeTensorsException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code loadstone verify PATH}: checks a file against every rule of the format, or a model
 * directory (or index) against the rules of checkpoints and every shard against the format.
 * Valid: one {@code OK} line on stdout, exit 0. Invalid: one {@code INVALID} line on stderr
 * naming the file, the reason code and the rule, exit 1. With {@code --sha256}, each file's
 * SHA-256 is checked too ({@link FileHashes}).
 */
final class VerifyCommand implements Command {
  /** A line of {@code sha256sum}'s output: the hash, two spaces or a space and {@code *}, the name. */
  private static final Pattern SHA256SUM_LINE = Pattern.compile("([0-9a-fA-F]{64}) [ *](.+)");

  @Override
  public String name() {
    return "verify";
  }

  @Override
  public String synopsis() {
    return "PATH [--sha256] [--expected-sha256 NAME=HEX]... [--sha256-file FILE] [--threads N]";
  }

  @Override
  public List<Option> options() {
    return List.of(
        Option.flag("--sha256", "also check each file's SHA-256 (the cache's blob name, the hub's X-Linked-Etag)"),
        Option.repeatable("--expected-sha256", "NAME=HEX", "the SHA-256 file NAME must have (implies --sha256; repeatable)"),
        Option.valued("--sha256-file", "FILE", "expected SHA-256s in sha256sum's format (implies --sha256)"),
        Option.valued("--threads", "N", "files hashed at once (default: the number of cores)"));
  }

  @Override
  public String summary() {
    return "check a file or model directory against every rule";
  }

  @Override
  public String description() {
    return """
        For a file: checks the header (length, UTF-8, JSON, metadata, every tensor entry) and
        the layout of the data (tensors in order, no gaps, no overlaps, no trailing bytes).

        For a model directory or an index file (model.safetensors.index.json): checks every
        shard as above, and the index against the shards: it is well-formed, every shard it
        names stays inside the directory and exists, every tensor it lists is in its shard,
        every tensor of every shard is listed once, and metadata.total_size (when present)
        equals the tensors' total bytes. A directory with neither model.safetensors nor an
        index is invalid (NO_WEIGHTS).

        PATH may also be a Hugging Face model id, ORG/NAME or ORG/NAME@REVISION, read offline
        from the local cache (HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub or
        ~/.cache/huggingface/hub), or an http(s) or s3:// URL (s3://BUCKET/PREFIX/ or
        s3://BUCKET/KEY.safetensors) of a file or model directory, of which only the headers
        (and the index) are read, with range requests.

        Valid: prints "OK PATH: N tensors, B bytes" on stdout (for a directory or index
        "OK PATH: N tensors in K files, B bytes") and exits 0.
        Invalid: prints "INVALID FILE: REASON: ... (rule: ...)" on stderr and exits 1.

        --sha256 also hashes every file (the index, then the shards; several files at once, on
        --threads threads) and checks each against the SHA-256 expected of it: the one given
        with --expected-sha256 NAME=HEX or in a --sha256-file (lines "HEX  NAME" or
        "HEX *NAME", as sha256sum writes them; NAME relative to the checkpoint's folder), else,
        in the Hugging Face cache, the name of the blob the snapshot's link points to (LFS files
        are stored under their SHA-256), else, for a URL, the hub's X-Linked-Etag header
        (streamed with range requests to hash it). A file with none of these is hashed and
        reported "unchecked", not passed. Each file gets a line on stdout,
        "SHA256 HEX  NAME  ok (SOURCE)" or "SHA256 HEX  NAME  unchecked (no expected hash)";
        a mismatch prints "INVALID FILE: SHA256_MISMATCH: SHA-256 ACTUAL, expected EXPECTED
        (SOURCE) ..." on stderr and exits 1.
        """;
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws IOException, UsageException {
    String location = Inputs.checkpointLocation(args.requireOne("PATH"));
    Map<String, String> expected = expectedHashes(args);
    boolean hashing = args.has("--sha256") || !expected.isEmpty() || args.value("--sha256-file").isPresent();
    int threads = args.integer("--threads", Runtime.getRuntime().availableProcessors(), 1);
    try (Checkpoint checkpoint = Checkpoint.open(location)) {
      checkpoint.checkTotalSize();
      String hashSummary = "";
      if (hashing) {
        List<FileHash> hashes;
        try {
          hashes = FileHashes.sha256(checkpoint, expected, threads);
        } catch (IllegalArgumentException e) {
          throw new UsageException(e.getMessage());
        }
        int mismatched = 0;
        int unchecked = 0;
        for (FileHash hash : hashes) {
          if (hash.mismatched()) {
            mismatched++;
            err.println("INVALID " + Text.oneLine(hash.mismatch().getMessage()));
          } else {
            unchecked += hash.checked() ? 0 : 1;
            out.println("SHA256 " + hash.sha256() + "  " + Text.oneLine(hash.name()) + "  "
                + (hash.checked() ? "ok (" + hash.expectedFrom() + ")" : "unchecked (no expected hash)"));
          }
        }
        if (mismatched > 0) {
          return Main.EXIT_INVALID;
        }
        hashSummary = "; SHA-256: " + (hashes.size() - unchecked) + " checked, " + unchecked + " unchecked";
      }
      int count = checkpoint.tensors().size();
      boolean plainFile = checkpoint.index().isEmpty() && namesFile(location);
      out.println("OK " + Text.oneLine(location) + ": " + Text.count(count, "tensor")
          + (plainFile ? "" : " in " + Text.count(checkpoint.files().size(), "file")) + ", "
          + Text.grouped(checkpoint.totalSize()) + " bytes" + hashSummary);
      return Main.EXIT_OK;
    } catch (SafeTensorsException e) {   // a broken file or a broken directory
      err.println("INVALID " + Text.oneLine(e.getMessage()));
      return Main.EXIT_INVALID;
    }
  }

  /** The hashes of --expected-sha256 and --sha256-file, by file name. */
  private static Map<String, String> expectedHashes(Arguments args) throws UsageException, IOException {
    Map<String, String> expected = new LinkedHashMap<>();
    if (args.value("--sha256-file").isPresent()) {
      Path list = Inputs.path(args.value("--sha256-file").get());
      List<String> lines = Files.readAllLines(list, StandardCharsets.UTF_8);
      for (int i = 0; i < lines.size(); i++) {
        if (lines.get(i).isBlank()) {
          continue;
        }
        Matcher line = SHA256SUM_LINE.matcher(lines.get(i).strip());
        if (!line.matches()) {
          throw new UsageException(list + ":" + (i + 1) + ": not a line of sha256sum's output (HEX  NAME): '"
              + Text.oneLine(lines.get(i)) + "'");
        }
        put(expected, line.group(2), line.group(1));
      }
    }
    for (String pair : args.values("--expected-sha256")) {
      int equals = pair.lastIndexOf('=');
      if (equals <= 0) {
        throw new UsageException("--expected-sha256 takes NAME=HEX, not '" + Text.oneLine(pair) + "'");
      }
      put(expected, pair.substring(0, equals), pair.substring(equals + 1));
    }
    return expected;
  }

  private static void put(Map<String, String> expected, String name, String hex) throws UsageException {
    String previous = expected.put(name, hex.strip());
    if (previous != null && !previous.equalsIgnoreCase(hex.strip())) {
      throw new UsageException("two different SHA-256s given for '" + Text.oneLine(name) + "'");
    }
  }

  /** Whether the location names one file (not a directory, a model id or a directory URL). */
  private static boolean namesFile(String location) {
    if (Checkpoint.isUrl(location)) {
      return location.endsWith(".safetensors");
    }
    try {
      Path path = Path.of(location);
      return Files.exists(path) && !Files.isDirectory(path);
    } catch (java.nio.file.InvalidPathException e) {
      return false;
    }
  }
}
