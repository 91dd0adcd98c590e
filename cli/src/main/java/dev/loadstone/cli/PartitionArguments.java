package dev.loadstone.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.loadstone.store.Partition;
import dev.loadstone.store.PartitionRules;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The options {@code --rank R --world N [--rules llama|FILE]} that {@code slice} and
 * {@code bench} share: one rank's {@link Partition} of a checkpoint.
 */
final class PartitionArguments {
  static final Option RANK = Option.valued("--rank", "R", "this rank, from 0 (with --world)");
  static final Option WORLD = Option.valued("--world", "N", "the number of ranks (with --rank)");
  static final Option RULES = Option.valued("--rules", "llama|FILE",
      "how tensors are cut: the Llama preset (default; head counts from config.json) or a rules file");

  /** The options, for a command's list. */
  static final List<Option> OPTIONS = List.of(RANK, WORLD, RULES);

  /** The help text's paragraph on them. */
  static final String HELP = """
      --rank R --world N loads rank R's slice of N (tensor parallelism): --rules llama (the
      default) cuts Llama-style names as vLLM does (q/k/v, gate/up, embeddings and lm_head
      along dimension 0, o_proj and down_proj along dimension 1, fused qkv_proj and
      gate_up_proj part by part, the rest replicated), in whole heads when config.json beside
      the checkpoint gives the head counts; --rules FILE reads rules, one 'PATTERN SPLIT' per
      line (see docs/partition.md).
      """;

  private PartitionArguments() {}

  /**
   * The partition the arguments ask for, or empty without {@code --rank} and {@code --world}.
   *
   * @param checkpoint the checkpoint's file or directory (its config.json gives the Llama preset its head counts)
   * @throws UsageException if only one of them is given, the rank is not below the world, or the rules are malformed
   */
  static Optional<Partition> parse(Arguments args, Path checkpoint) throws UsageException, IOException {
    boolean any = args.value("--rank").isPresent() || args.value("--world").isPresent();
    if (!any) {
      if (args.value("--rules").isPresent()) {
        throw new UsageException("--rules cuts tensors for --rank R --world N: give them too");
      }
      return Optional.empty();
    }
    if (args.value("--rank").isEmpty() || args.value("--world").isEmpty()) {
      throw new UsageException("give both --rank R and --world N");
    }
    int world = args.integer("--world", 1, 1);
    int rank = args.integer("--rank", 0, 0);
    if (rank >= world) {
      throw new UsageException("--rank is from 0 to " + (world - 1) + " in a world of " + world + ", not " + rank);
    }
    return Optional.of(new Partition(rank, world, rules(args.value("--rules").orElse("llama"), checkpoint)));
  }

  /** The rules {@code --rules} names. */
  static PartitionRules rules(String value, Path checkpoint) throws UsageException, IOException {
    if (value.equalsIgnoreCase("llama")) {
      return llama(checkpoint);
    }
    Path file = Inputs.path(value);
    if (!Files.isRegularFile(file)) {
      throw new UsageException("--rules is llama or a rules file, and '" + Text.oneLine(value) + "' is neither");
    }
    try {
      return PartitionRules.read(file);
    } catch (IllegalArgumentException e) {
      throw new UsageException(Text.oneLine(e.getMessage()));
    }
  }

  /**
   * The Llama preset, in whole heads when {@code config.json} beside the checkpoint names
   * {@code num_attention_heads} (and {@code num_key_value_heads}, {@code head_dim} or
   * {@code hidden_size}).
   */
  private static PartitionRules llama(Path checkpoint) throws IOException {
    Path directory = Files.isDirectory(checkpoint) ? checkpoint : checkpoint.toAbsolutePath().getParent();
    Path config = directory == null ? null : directory.resolve("config.json");
    if (config == null || !Files.isRegularFile(config) || Files.size(config) > (16 << 20)) {
      return PartitionRules.llama();
    }
    Map<String, Long> numbers = new HashMap<>();
    try (JsonParser json = new JsonFactory().createParser(config.toFile())) {
      if (json.nextToken() != JsonToken.START_OBJECT) {
        return PartitionRules.llama();
      }
      while (json.nextToken() == JsonToken.FIELD_NAME) {
        String name = json.currentName();
        JsonToken value = json.nextToken();
        if (value == JsonToken.VALUE_NUMBER_INT) {
          numbers.put(name, json.getLongValue());
        } else {
          json.skipChildren();
        }
      }
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      return PartitionRules.llama();   // not this command's file to judge; whole rows then
    }
    Long heads = numbers.get("num_attention_heads");
    if (heads == null || heads < 1 || heads > Integer.MAX_VALUE) {
      return PartitionRules.llama();
    }
    long kvHeads = numbers.getOrDefault("num_key_value_heads", heads);
    Long headDim = numbers.get("head_dim");
    if (headDim == null && numbers.containsKey("hidden_size") && numbers.get("hidden_size") % heads == 0) {
      headDim = numbers.get("hidden_size") / heads;
    }
    if (headDim == null || headDim < 1 || kvHeads < 1 || headDim > Integer.MAX_VALUE || kvHeads > Integer.MAX_VALUE) {
      return PartitionRules.llama();
    }
    return PartitionRules.llama(heads.intValue(), (int) kvHeads, headDim.intValue());
  }

  /** What a partition does to a checkpoint's bytes: those of the tensors it cuts, and of those it replicates. */
  record Shares(long sliced, long replicated, int world) {
    /** The ideal bytes one rank reads: its share of the cut tensors and all the replicated ones. */
    long ideal() {
      return Math.ceilDiv(sliced, world) + replicated;
    }

    static Shares of(dev.loadstone.checkpoint.Checkpoint checkpoint, Partition partition) {
      long sliced = 0;
      long replicated = 0;
      for (var tensor : checkpoint.tensors()) {
        boolean cut;
        try {
          cut = partition.sliceOf(tensor.name(), tensor.shape()).isPresent();
        } catch (IllegalArgumentException e) {
          cut = false;   // the load refuses it, naming the rule
        }
        if (cut) {
          sliced += tensor.byteSize();
        } else {
          replicated += tensor.byteSize();
        }
      }
      return new Shares(sliced, replicated, partition.world());
    }
  }
}
