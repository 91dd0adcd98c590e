package dev.loadstone.cli;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.StreamWriteFeature;
import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.quantization.Quantization;
import dev.loadstone.quantization.QuantizedWeight;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code loadstone inspect PATH [--json]}: the tensors of a checkpoint (a file, a model
 * directory or an index) in file order, with dtype, shape, size, data offsets and, for several
 * shards, the file; a summary and the metadata; or all of it as one JSON object.
 */
final class InspectCommand implements Command {
  private static final JsonFactory JSON = JsonFactory.builder()
      .disable(StreamWriteFeature.AUTO_CLOSE_TARGET)
      .build();

  @Override
  public String name() {
    return "inspect";
  }

  @Override
  public String synopsis() {
    return "PATH [--json]";
  }

  @Override
  public String summary() {
    return "list the tensors and metadata of a file or model directory";
  }

  @Override
  public String description() {
    return """
        PATH is a .safetensors file, a model directory (model.safetensors, or
        model.safetensors.index.json and its shards) or an index file; or a Hugging Face model
        id, ORG/NAME or ORG/NAME@REVISION, read offline from the local cache; or an http(s) or
        s3:// URL of a file or model directory, of which only the headers (and the index) are
        read.

        The tensors are listed in file order (shards in name order, each by data offset). Sizes
        are in bytes; data offsets are [begin, end) within the data section of the tensor's
        file, as written in its header. With several shards a FILE column names each tensor's
        shard. The metadata is the first shard's.

        A quantized checkpoint (config.json beside it with a quantization_config) lists its
        scheme and, per quantized weight, the logical name, dtype and shape [out, in] the
        unquantized model has, and the stored tensors it is made of. Tensors that look like a
        quantized weight's parts without a scheme to read them are listed too, as "unknown".
        A scheme Loadstone does not dequantize, or tensors that do not fit it, are an error.

        With --json, prints one JSON object:
          {"metadata": {...} or null, "total_bytes": N,
           "tensors": [{"name", "dtype", "shape", "data_offsets": [begin, end], "file"}, ...],
           "quantization": {"scheme": S or null, "weights": [{"name", "dtype", "shape",
                            "scheme", "tensors": [...]}, ...]}}
        where "file" is the name of the tensor's file (relative to the model directory), and
        "quantization" is present only for a checkpoint with quantized weights.
        """;
  }

  @Override
  public List<Option> options() {
    return List.of(Option.flag("--json", "print one JSON object instead of a table"));
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws IOException, UsageException {
    String location = Inputs.checkpointLocation(args.requireOne("PATH"));
    try (Checkpoint checkpoint = Checkpoint.open(location)) {
      Quantization quantization = Quantization.of(checkpoint);
      if (args.has("--json")) {
        writeJson(checkpoint, quantization, out);
      } else {
        writeText(checkpoint, quantization, out);
      }
    }
    return Main.EXIT_OK;
  }

  /**
   * The name of each of the checkpoint's files as it should be shown: relative to the index's
   * directory for a sharded checkpoint (as the index names it), else the file's name.
   */
  static Map<SafeTensors, String> fileNames(Checkpoint checkpoint) {
    Map<SafeTensors, String> names = new IdentityHashMap<>();
    Path directory = checkpoint.index()
        .map(index -> index.toAbsolutePath().normalize().getParent())
        .orElse(null);
    for (SafeTensors shard : checkpoint.shards()) {
      Path file = shard.path();
      String name;
      if (directory != null && file.isAbsolute() && file.startsWith(directory)) {
        name = directory.relativize(file).toString();
        if (!file.getFileSystem().getSeparator().equals("/")) {
          name = name.replace(file.getFileSystem().getSeparator(), "/");
        }
      } else {
        name = String.valueOf(file.getFileName());
      }
      names.put(shard, name);
    }
    return names;
  }

  private static void writeText(Checkpoint checkpoint, Quantization quantization, PrintStream out) throws IOException {
    boolean sharded = checkpoint.shards().size() > 1;
    Map<SafeTensors, String> fileNames = fileNames(checkpoint);
    out.println(Text.oneLine(checkpoint.path().toString())
        + (checkpoint.index().isPresent() ? " (" + Text.count(checkpoint.shards().size(), "shard") + ")" : ""));
    out.println();
    List<String[]> rows = new ArrayList<>();
    rows.add(sharded
        ? new String[] {"NAME", "DTYPE", "SHAPE", "BYTES", "FILE", "DATA OFFSETS"}
        : new String[] {"NAME", "DTYPE", "SHAPE", "BYTES", "DATA OFFSETS"});
    for (SafeTensors shard : checkpoint.shards()) {
      String fileName = Text.oneLine(fileNames.get(shard));
      for (TensorView tensor : shard.tensors()) {
        long[] offsets = tensor.dataOffsets();
        String name = Text.oneLine(tensor.name());
        String dtype = tensor.dtype().name();
        String shape = Text.shape(tensor.shape());
        String bytes = Text.grouped(tensor.byteSize());
        String range = "[" + offsets[0] + ", " + offsets[1] + "]";
        rows.add(sharded
            ? new String[] {name, dtype, shape, bytes, fileName, range}
            : new String[] {name, dtype, shape, bytes, range});
      }
    }
    Text.table(rows, "", 3).forEach(out::println);
    out.println();
    long total = checkpoint.totalSize();
    int count = checkpoint.tensors().size();
    if (checkpoint.shards().size() == 1 && checkpoint.index().isEmpty()) {
      SafeTensors file = checkpoint.shards().getFirst();
      out.println(Text.count(count, "tensor") + ", " + Text.grouped(total) + " bytes of tensor data ("
          + Text.size(total) + "), header " + Text.grouped(file.headerLength()) + " bytes, file "
          + Text.grouped(file.fileSize()) + " bytes");
    } else {
      long onDisk = 0;
      for (SafeTensors shard : checkpoint.shards()) {
        onDisk += shard.fileSize();
      }
      String declared = "";
      if (checkpoint.declaredTotalSize().isPresent()) {
        long stated = checkpoint.declaredTotalSize().getAsLong();
        declared = stated == total ? ", index total_size agrees"
            : ", index total_size " + Text.grouped(stated) + " DIFFERS";
      }
      out.println(Text.count(count, "tensor") + ", " + Text.grouped(total) + " bytes of tensor data ("
          + Text.size(total) + ") in " + Text.count(checkpoint.shards().size(), "file") + " of "
          + Text.grouped(onDisk) + " bytes" + declared);
    }
    out.println();
    if (!quantization.isEmpty()) {
      writeQuantization(quantization, out);
      out.println();
    }
    Map<String, String> metadata = checkpoint.metadata().orElse(null);
    if (metadata == null) {
      out.println("Metadata: none");
    } else if (metadata.isEmpty()) {
      out.println("Metadata: {}");
    } else {
      out.println("Metadata:");
      metadata.forEach((key, value) -> out.println("  " + Text.oneLine(key) + " = " + Text.oneLine(value)));
    }
  }

  /** The scheme, then one row per quantized weight: its logical name, dtype and shape, and what it is made of. */
  private static void writeQuantization(Quantization quantization, PrintStream out) {
    String scheme = quantization.scheme()
        .map(s -> Text.oneLine(s) + quantization.configFile().map(f -> " (" + Text.oneLine(String.valueOf(f.getFileName())) + ")").orElse(""))
        .orElse("no scheme (no quantization_config)");
    out.println("Quantization: " + scheme + ", " + Text.count(quantization.weights().size(), "quantized weight"));
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"WEIGHT", "DTYPE", "SHAPE", "SCHEME", "FROM"});
    for (QuantizedWeight weight : quantization.weights()) {
      boolean known = weight.problem().isEmpty();
      rows.add(new String[] {Text.oneLine(weight.name()), known ? weight.dtype().name() : "?",
          known ? Text.shape(weight.shape()) : "?", Text.oneLine(weight.scheme()),
          Text.oneLine(String.join(", ", weight.tensors().stream().map(TensorView::name).toList()))});
    }
    Text.table(rows, "  ").forEach(out::println);
    for (QuantizedWeight weight : quantization.weights()) {
      weight.problem().ifPresent(problem -> out.println("  unknown: " + Text.oneLine(problem)));
    }
  }

  private static void writeJson(Checkpoint checkpoint, Quantization quantization, PrintStream out) throws IOException {
    Map<SafeTensors, String> fileNames = fileNames(checkpoint);
    try (JsonGenerator json = JSON.createGenerator(out, JsonEncoding.UTF8)) {
      json.writeStartObject();
      json.writeFieldName("metadata");
      Map<String, String> metadata = checkpoint.metadata().orElse(null);
      if (metadata == null) {
        json.writeNull();
      } else {
        json.writeStartObject();
        for (Map.Entry<String, String> entry : metadata.entrySet()) {
          json.writeStringField(entry.getKey(), entry.getValue());
        }
        json.writeEndObject();
      }
      json.writeNumberField("total_bytes", checkpoint.totalSize());
      json.writeArrayFieldStart("tensors");
      for (SafeTensors shard : checkpoint.shards()) {
        String fileName = fileNames.get(shard);
        for (TensorView tensor : shard.tensors()) {
          json.writeStartObject();
          json.writeStringField("name", tensor.name());
          json.writeStringField("dtype", tensor.dtype().name());
          long[] shape = tensor.shape();
          json.writeFieldName("shape");
          json.writeArray(shape, 0, shape.length);
          long[] offsets = tensor.dataOffsets();
          json.writeFieldName("data_offsets");
          json.writeArray(offsets, 0, offsets.length);
          json.writeStringField("file", fileName);
          json.writeEndObject();
        }
      }
      json.writeEndArray();
      if (!quantization.isEmpty()) {
        json.writeObjectFieldStart("quantization");
        json.writeFieldName("scheme");
        if (quantization.scheme().isPresent()) {
          json.writeString(quantization.scheme().get());
        } else {
          json.writeNull();
        }
        json.writeArrayFieldStart("weights");
        for (QuantizedWeight weight : quantization.weights()) {
          json.writeStartObject();
          json.writeStringField("name", weight.name());
          boolean known = weight.problem().isEmpty();
          json.writeFieldName("dtype");
          if (known) {
            json.writeString(weight.dtype().name());
          } else {
            json.writeNull();
          }
          json.writeFieldName("shape");
          if (known) {
            long[] shape = weight.shape();
            json.writeArray(shape, 0, shape.length);
          } else {
            json.writeNull();
          }
          json.writeStringField("scheme", weight.scheme());
          json.writeArrayFieldStart("tensors");
          for (TensorView tensor : weight.tensors()) {
            json.writeString(tensor.name());
          }
          json.writeEndArray();
          if (!known) {
            json.writeStringField("problem", weight.problem().get());
          }
          json.writeEndObject();
        }
        json.writeEndArray();
        json.writeEndObject();
      }
      json.writeEndObject();
    }
    out.println();
  }
}
