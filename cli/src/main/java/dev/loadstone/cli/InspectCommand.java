package dev.loadstone.cli;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.StreamWriteFeature;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code loadstone inspect PATH [--json]}: the tensors of a file in file order, with dtype,
 * shape, size and data offsets, a summary and the metadata; or all of it as one JSON object.
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
    return "list the tensors, sizes and metadata of a .safetensors file";
  }

  @Override
  public String description() {
    return """
        The tensors are listed in file order (by data offset). Sizes are in bytes; data offsets
        are [begin, end) within the data section, as written in the header.

        With --json, prints one JSON object:
          {"metadata": {...} or null, "total_bytes": N,
           "tensors": [{"name", "dtype", "shape", "data_offsets": [begin, end], "file"}, ...]}
        """;
  }

  @Override
  public List<Option> options() {
    return List.of(Option.flag("--json", "print one JSON object instead of a table"));
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws IOException, UsageException {
    Path path = Inputs.safetensorsFile(args.requireOne("PATH"));
    try (SafeTensors file = SafeTensors.open(path)) {
      if (args.has("--json")) {
        writeJson(file, out);
      } else {
        writeText(file, out);
      }
    }
    return Main.EXIT_OK;
  }

  private static void writeText(SafeTensors file, PrintStream out) {
    out.println(Text.oneLine(file.path().toString()));
    out.println();
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"NAME", "DTYPE", "SHAPE", "BYTES", "DATA OFFSETS"});
    long total = 0;
    for (TensorView tensor : file.tensors()) {
      long[] offsets = tensor.dataOffsets();
      rows.add(new String[] {
          Text.oneLine(tensor.name()),
          tensor.dtype().name(),
          Text.shape(tensor.shape()),
          Text.grouped(tensor.byteSize()),
          "[" + offsets[0] + ", " + offsets[1] + "]"});
      total += tensor.byteSize();
    }
    Text.table(rows, "", 3).forEach(out::println);
    out.println();
    out.println(file.tensors().size() + (file.tensors().size() == 1 ? " tensor, " : " tensors, ")
        + Text.grouped(total) + " bytes of tensor data (" + Text.size(total) + "), header "
        + Text.grouped(file.headerLength()) + " bytes, file " + Text.grouped(file.fileSize()) + " bytes");
    out.println();
    Map<String, String> metadata = file.metadata().orElse(null);
    if (metadata == null) {
      out.println("Metadata: none");
    } else if (metadata.isEmpty()) {
      out.println("Metadata: {}");
    } else {
      out.println("Metadata:");
      metadata.forEach((key, value) -> out.println("  " + Text.oneLine(key) + " = " + Text.oneLine(value)));
    }
  }

  private static void writeJson(SafeTensors file, PrintStream out) throws IOException {
    String fileName = file.path().getFileName().toString();
    try (JsonGenerator json = JSON.createGenerator(out, JsonEncoding.UTF8)) {
      json.writeStartObject();
      json.writeFieldName("metadata");
      Map<String, String> metadata = file.metadata().orElse(null);
      if (metadata == null) {
        json.writeNull();
      } else {
        json.writeStartObject();
        for (Map.Entry<String, String> entry : metadata.entrySet()) {
          json.writeStringField(entry.getKey(), entry.getValue());
        }
        json.writeEndObject();
      }
      long total = 0;
      for (TensorView tensor : file.tensors()) {
        total += tensor.byteSize();
      }
      json.writeNumberField("total_bytes", total);
      json.writeArrayFieldStart("tensors");
      for (TensorView tensor : file.tensors()) {
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
      json.writeEndArray();
      json.writeEndObject();
    }
    out.println();
  }
}
