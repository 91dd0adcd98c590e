package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.Partition;
import dev.loadstone.store.VarStore;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code loadstone slice IN OUT --rank R --world N [--rules llama|FILE] [--max-shard-size SIZE]}:
 * writes one rank's share of a checkpoint (tensor parallelism) as a checkpoint of its own,
 * which then loads with a plain COPY or ALIAS, each tensor already of its slice's shape.
 *
 * <p>The rank's slices are loaded exactly as {@code LoadOptions.withPartition} loads them (only
 * their bytes read), then written by the core's writers, atomically; so memory holds one rank's
 * share while it runs.
 */
final class SliceCommand implements Command {
  /** The metadata keys the output records its partition under. */
  static final String RANK_KEY = "loadstone.partition.rank";
  static final String WORLD_KEY = "loadstone.partition.world";
  static final String RULES_KEY = "loadstone.partition.rules";

  @Override
  public String name() {
    return "slice";
  }

  @Override
  public String synopsis() {
    return "IN OUT --rank R --world N [--rules llama|FILE] [--max-shard-size SIZE]";
  }

  @Override
  public String summary() {
    return "write one rank's slice of a checkpoint (tensor parallelism)";
  }

  @Override
  public String description() {
    return """
        IN is a .safetensors file, a model directory or an index file. OUT receives rank R's
        share of it: every tensor the rules cut, as its slice (the shape the rank holds), the
        others whole, with IN's metadata and three more keys (loadstone.partition.rank,
        .world and .rules). OUT is one .safetensors file (OUT/model.safetensors when OUT is a
        directory or ends with '/'), or with --max-shard-size a sharded model directory.
        Output files appear only once complete. Quantized weights cannot be cut (refused:
        replicate them with a rule, or convert --dequantize first).

        """ + PartitionArguments.HELP;
  }

  @Override
  public List<Option> options() {
    return List.of(PartitionArguments.RANK, PartitionArguments.WORLD, PartitionArguments.RULES,
        Option.valued("--max-shard-size", "SIZE", "write a sharded model directory, shards of at most SIZE"));
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws IOException, UsageException {
    List<String> positional = args.require("IN", "OUT");
    Path in = Inputs.localCheckpoint(positional.get(0), "slice");
    Optional<Partition> partition = PartitionArguments.parse(args, in);
    if (partition.isEmpty()) {
      throw new UsageException("slice needs --rank R and --world N");
    }
    Optional<Long> maxShardSize = args.value("--max-shard-size").isPresent()
        ? Optional.of(ByteSize.parse("--max-shard-size", args.value("--max-shard-size").get()))
        : Optional.empty();
    String outArgument = positional.get(1);
    Path out0 = Inputs.path(outArgument);
    boolean outIsDirectory = maxShardSize.isPresent() || Files.isDirectory(out0)
        || outArgument.endsWith("/") || outArgument.endsWith(File.separator);
    long begin = System.nanoTime();
    try (Checkpoint checkpoint = Checkpoint.open(in)) {
      Path target = outIsDirectory && maxShardSize.isEmpty() ? out0.resolve(Checkpoint.SINGLE_FILE_NAME) : out0;
      ConvertCommand.refuseInPlace(checkpoint, outIsDirectory ? out0 : target, outIsDirectory, outArgument);
      if (maxShardSize.isPresent() && Files.exists(out0) && !Files.isDirectory(out0)) {
        throw new UsageException("OUT '" + Text.oneLine(outArgument) + "' is a file; with --max-shard-size OUT is a directory");
      }
      Path parent = target.toAbsolutePath().getParent();
      if (outIsDirectory) {
        Files.createDirectories(out0);
      } else if (parent != null && !Files.isDirectory(parent)) {
        throw new NoSuchFileException(outArgument, null, "the output's directory does not exist");
      }
      Partition p = partition.get();
      Map<String, String> metadata = new LinkedHashMap<>(checkpoint.metadata().orElse(Map.of()));
      metadata.put(RANK_KEY, Integer.toString(p.rank()));
      metadata.put(WORLD_KEY, Integer.toString(p.world()));
      metadata.put(RULES_KEY, p.rules().toString());
      try (VarStore store = VarStore.fromCheckpoint(checkpoint, LoadOptions.defaults().withPartition(p))) {
        if (maxShardSize.isPresent()) {
          store.save(out0, metadata, maxShardSize.get());
        } else {
          store.save(target, metadata);
        }
        PartitionArguments.Shares shares = PartitionArguments.Shares.of(checkpoint, p);
        out.println("Wrote rank " + p.rank() + " of " + p.world() + " to " + Text.oneLine(target.toString()) + ": "
            + Text.count(store.variables().size(), "tensor") + ", " + Text.grouped(store.byteSize())
            + " bytes of tensor data (of " + Text.grouped(shares.sliced()) + " cut and " + Text.grouped(shares.replicated())
            + " replicated) in " + Text.seconds(System.nanoTime() - begin));
      }
    }
    return Main.EXIT_OK;
  }
}
