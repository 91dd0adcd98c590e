package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.SafeTensorsException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code loadstone verify PATH}: checks a file against every rule of the format, or a model
 * directory (or index) against the rules of checkpoints and every shard against the format.
 * Valid: one {@code OK} line on stdout, exit 0. Invalid: one {@code INVALID} line on stderr
 * naming the file, the reason code and the rule, exit 1.
 */
final class VerifyCommand implements Command {

  @Override
  public String name() {
    return "verify";
  }

  @Override
  public String synopsis() {
    return "PATH";
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
        ~/.cache/huggingface/hub), or an http(s) URL of a file or model directory, of which only
        the headers (and the index) are read, with range requests.

        Valid: prints "OK PATH: N tensors, B bytes" on stdout (for a directory or index
        "OK PATH: N tensors in K files, B bytes") and exits 0.
        Invalid: prints "INVALID FILE: REASON: ... (rule: ...)" on stderr and exits 1.
        """;
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws IOException, UsageException {
    String location = Inputs.checkpointLocation(args.requireOne("PATH"));
    try (Checkpoint checkpoint = Checkpoint.open(location)) {
      checkpoint.checkTotalSize();
      int count = checkpoint.tensors().size();
      boolean plainFile = checkpoint.index().isEmpty() && namesFile(location);
      out.println("OK " + Text.oneLine(location) + ": " + Text.count(count, "tensor")
          + (plainFile ? "" : " in " + Text.count(checkpoint.files().size(), "file")) + ", "
          + Text.grouped(checkpoint.totalSize()) + " bytes");
      return Main.EXIT_OK;
    } catch (SafeTensorsException e) {   // a broken file or a broken directory
      err.println("INVALID " + Text.oneLine(e.getMessage()));
      return Main.EXIT_INVALID;
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
