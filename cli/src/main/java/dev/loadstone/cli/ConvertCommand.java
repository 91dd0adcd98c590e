package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.CheckpointWriter;
import dev.loadstone.internal.AtomicFile;
import dev.loadstone.quantization.Quantization;
import dev.loadstone.quantization.QuantizedWeight;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorSpec;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.safetensors.TensorWriter;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code loadstone convert IN OUT [--dtype F32|F16|BF16] [--dequantize] [--max-shard-size SIZE]}: rewrites a
 * checkpoint (file, model directory or index) with every floating-point tensor converted to one
 * dtype, integer, BOOL and complex tensors unchanged, and the metadata kept. OUT is one
 * {@code .safetensors} file, or with {@code --max-shard-size} a model directory written as
 * Hugging Face writes one (shards and an index).
 *
 * <p>The data streams through in chunks of at most 16 MiB ({@link #CHUNK_BYTES}): unchanged
 * tensors straight from the input's mapping to the output, converted ones through one reusable
 * off-heap buffer; so memory stays small whatever the size of the checkpoint. The output is
 * written atomically (temporary files renamed into place once complete). With
 * {@code --dequantize} a quantized checkpoint ({@link Quantization}) is written dense: each
 * quantized weight as one tensor of its logical name and shape, computed a few rows at a time.
 */
final class ConvertCommand implements Command {
  /** The most bytes written in one step, and the size of the conversion buffer. */
  static final int CHUNK_BYTES = 16 << 20;

  private final int chunkBytes;

  ConvertCommand() {
    this(CHUNK_BYTES);
  }

  /** A command that streams in chunks of {@code chunkBytes} (at least 64); tests use small ones. */
  ConvertCommand(int chunkBytes) {
    if (chunkBytes < 64) {
      throw new IllegalArgumentException("chunks of at least 64 bytes, not " + chunkBytes);
    }
    this.chunkBytes = chunkBytes;
  }

  @Override
  public String name() {
    return "convert";
  }

  @Override
  public String synopsis() {
    return "IN OUT [--dtype DTYPE] [--dequantize] [--max-shard-size SIZE]";
  }

  @Override
  public String summary() {
    return "rewrite a checkpoint, converting its float tensors, optionally sharded";
  }

  @Override
  public String description() {
    return """
        IN is a .safetensors file, a model directory or an index file. The tensors and the
        metadata (of the first shard, for a sharded IN) are written to OUT in the canonical
        layout of the safetensors reference implementation.

        --dtype converts every floating-point tensor (F64, F32, F16, BF16 and the 8-, 6- and
        4-bit floats) to F32, F16 or BF16, rounding to nearest even; integer, BOOL and C64
        tensors are copied unchanged. Without --dtype no value changes, so converting a file
        writes the canonical serialization of its tensors.

        Without --max-shard-size OUT is one .safetensors file; if OUT is an existing directory
        or ends with '/', the file is OUT/model.safetensors. With --max-shard-size OUT is a
        model directory (created if missing): shards model-00001-of-0000N.safetensors of at
        most SIZE bytes of tensor data each (a larger tensor gets a shard of its own) and
        model.safetensors.index.json, or model.safetensors alone if everything fits in one.
        Files of an earlier checkpoint in OUT that would contradict the new one are deleted.
        SIZE is e.g. 5GB, 500MB (powers of 1000), 2GiB (powers of 1024) or a number of bytes.

        --dequantize writes a quantized checkpoint (config.json beside IN with a
        quantization_config: fp8, compressed-tensors, gptq or awq) dense: each quantized weight
        becomes one tensor of its logical name and shape [out, in], in DTYPE or else the
        model's dtype (config.json's torch_dtype, or the scales'), its packed values, scales,
        zero points and group indices dropped. When OUT is a directory, IN's config.json is
        copied there without its quantization_config. Converting a quantized checkpoint with
        --dtype but without --dequantize is refused: it would convert FP8 weights or scales
        without applying them.

        OUT may not be IN, nor (when OUT is a directory) the directory that holds IN's files.
        Output files appear only once complete. On a terminal, a progress bar on stderr follows
        inputs over 64 MiB; at the end one summary line goes to stdout.
        """;
  }

  @Override
  public List<Option> options() {
    return List.of(
        Option.valued("--dtype", "DTYPE", "convert floating-point tensors to F32, F16 or BF16"),
        Option.flag("--dequantize", "write a quantized checkpoint's weights dense"),
        Option.valued("--max-shard-size", "SIZE", "write a sharded model directory, shards of at most SIZE"));
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws IOException, UsageException {
    List<String> positional = args.require("IN", "OUT");
    Optional<DType> dtype = args.floatDType("--dtype");
    Optional<Long> maxShardSize = args.value("--max-shard-size").isPresent()
        ? Optional.of(ByteSize.parse("--max-shard-size", args.value("--max-shard-size").get()))
        : Optional.empty();
    String outArgument = positional.get(1);
    Path out0 = Inputs.path(outArgument);
    Path in = Inputs.localCheckpoint(positional.get(0), "convert");
    boolean outIsDirectory = maxShardSize.isPresent() || Files.isDirectory(out0)
        || outArgument.endsWith("/") || outArgument.endsWith(File.separator);

    long begin = System.nanoTime();
    try (Checkpoint checkpoint = Checkpoint.open(in)) {
      Path target;
      if (maxShardSize.isPresent()) {
        if (Files.exists(out0) && !Files.isDirectory(out0)) {
          throw new UsageException("OUT '" + Text.oneLine(outArgument)
              + "' is a file; with --max-shard-size OUT is a directory");
        }
        target = out0;
      } else {
        target = outIsDirectory ? out0.resolve(Checkpoint.SINGLE_FILE_NAME) : out0;
      }
      refuseInPlace(checkpoint, outIsDirectory ? out0 : target, outIsDirectory, outArgument);

      boolean dequantize = args.has("--dequantize");
      Quantization quantization = dequantize || dtype.isPresent() ? Quantization.of(checkpoint) : null;
      if (quantization != null && !dequantize && !quantization.isEmpty()) {
        throw new UsageException("IN is quantized (" + quantization.scheme().orElse("scheme unknown") + ", "
            + Text.count(quantization.weights().size(), "quantized weight") + "): --dtype alone would convert "
            + Text.oneLine(quantization.weights().getFirst().tensors().getFirst().name())
            + " without applying its scales; add --dequantize to write dense weights");
      }
      Map<String, QuantizedWeight> dequantized = new HashMap<>();
      List<TensorSpec> specs = new ArrayList<>(checkpoint.tensors().size());
      int converted = 0;
      long bytesIn = 0;
      for (TensorView tensor : checkpoint.tensors()) {
        Optional<QuantizedWeight> weight = dequantize ? quantization.holding(tensor.name()) : Optional.empty();
        if (weight.isPresent()) {
          QuantizedWeight w = weight.get();
          if (w.problem().isPresent()) {
            throw new UsageException("cannot dequantize " + Text.oneLine(w.name()) + ": " + Text.oneLine(w.problem().get()));
          }
          if (w.tensors().getFirst() == tensor) {
            specs.add(new TensorSpec(w.name(), dtype.orElse(w.dtype()), w.shape()));
            dequantized.put(w.name(), w);
            converted++;
          }
          bytesIn += tensor.byteSize();
          continue;
        }
        DType to = tensor.dtype().convertingFloatsTo(dtype);
        if (to != tensor.dtype()) {
          converted++;
        }
        specs.add(new TensorSpec(tensor.name(), to, tensor.shape()));
        bytesIn += tensor.byteSize();
      }
      Map<String, String> metadata = checkpoint.metadata().orElse(null);

      TensorWriter output;
      if (maxShardSize.isPresent()) {
        output = CheckpointWriter.create(target, metadata, specs, maxShardSize.get());
      } else {
        if (outIsDirectory) {
          Files.createDirectories(out0);
        } else {
          Path parent = target.toAbsolutePath().getParent();
          if (parent != null && !Files.isDirectory(parent)) {
            throw new NoSuchFileException(outArgument, null, "the output's directory does not exist");
          }
        }
        output = SafeTensorsWriter.create(target, metadata, specs);
      }
      long bytesOut;
      ProgressBar progress = ProgressBar.forTerminal(err, "converting", bytesIn);
      try (output) {
        bytesOut = copy(checkpoint, dequantized, output, progress);
        output.commit();
      } finally {
        progress.finish();
      }
      if (dequantize && outIsDirectory && quantization.configFile().isPresent()) {
        AtomicFile.write(out0.resolve(Quantization.CONFIG_FILE), withoutQuantizationConfig(quantization.configFile().get()));
      }

      long nanos = System.nanoTime() - begin;
      String changed = dequantize ? dequantized.size() + " dequantized" + dtype.map(d -> " to " + d).orElse("")
          : dtype.isEmpty() ? "data unchanged"
          : converted == 0 ? "none to convert to " + dtype.get()
          : converted + " converted to " + dtype.get();
      List<String> files = output.files();
      String where = maxShardSize.isPresent()
          ? Text.oneLine(target.toString()) + " (" + Text.count(files.size(), "file")
              + (files.size() > 1 ? " + " + Checkpoint.INDEX_FILE_NAME : "") + ")"
          : Text.oneLine(target.toString());
      out.println("Wrote " + where + ": " + Text.count(specs.size(), "tensor") + " (" + changed
          + "), " + Text.grouped(bytesIn) + " -> " + Text.grouped(bytesOut)
          + " bytes of tensor data in " + Text.seconds(nanos));
    }
    return Main.EXIT_OK;
  }

  /** Streams a quantized weight's values into the output, a few rows at a time; returns the bytes written. */
  private long dequantize(QuantizedWeight weight, TensorSpec spec, TensorWriter output, ProgressBar progress,
      Arena arena) throws IOException {
    long rows = weight.shape()[0];
    long rowBytes = spec.dtype().byteSize(weight.shape()[1]);
    long rowsPerChunk = Math.max(1, chunkBytes / Math.max(1, rowBytes));
    MemorySegment buffer = arena.allocate(Math.max(1, rowsPerChunk * rowBytes), 64);
    long stored = weight.storedByteSize();
    for (long first = 0; first < rows; first += rowsPerChunk) {
      long count = Math.min(rowsPerChunk, rows - first);
      weight.dequantize(first, count, buffer, 0, spec.dtype());
      output.write(spec.name(), buffer.asSlice(0, count * rowBytes));
      progress.add(stored * (first + count) / rows - stored * first / rows);
    }
    return spec.byteSize();
  }

  /** A model config without its {@code quantization_config}, every other member as it was (re-indented). */
  static byte[] withoutQuantizationConfig(Path config) throws IOException {
    JsonFactory factory = new JsonFactory();
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (JsonParser in = factory.createParser(Files.readAllBytes(config));
         JsonGenerator out = factory.createGenerator(bytes).useDefaultPrettyPrinter()) {
      if (in.nextToken() != JsonToken.START_OBJECT) {
        throw new IOException(config + ": not a JSON object");
      }
      out.writeStartObject();
      while (in.nextToken() == JsonToken.FIELD_NAME) {
        String name = in.currentName();
        in.nextToken();
        if (name.equals("quantization_config")) {
          in.skipChildren();
          continue;
        }
        out.writeFieldName(name);
        out.copyCurrentStructure(in);
      }
      out.writeEndObject();
    }
    bytes.write('\n');
    return bytes.toByteArray();
  }

  /**
   * Refuses to write over the input: OUT may not be one of the input's files, nor, when OUT is
   * a directory, the directory that holds one of them (the output's files would replace, or a
   * sharded writer delete, the files being read).
   */
  static void refuseInPlace(Checkpoint checkpoint, Path out, boolean directory,
      String outArgument) throws IOException, UsageException {
    if (!Files.exists(out)) {
      return;
    }
    List<Path> inputs = new ArrayList<>(checkpoint.files());
    checkpoint.index().ifPresent(inputs::add);
    for (Path input : inputs) {
      if (directory) {
        Path parent = input.toAbsolutePath().getParent();
        if (parent != null && Files.isSameFile(parent, out)) {
          throw new UsageException("OUT '" + Text.oneLine(outArgument) + "' is the directory of the"
              + " input (" + Text.oneLine(input.getFileName().toString())
              + "); converting in place is not supported, write to another directory");
        }
      } else if (Files.isSameFile(input, out)) {
        throw new UsageException("OUT '" + Text.oneLine(outArgument) + "' is the input file"
            + "; converting in place is not supported, write to another file");
      }
    }
  }

  /**
   * Streams every tensor's bytes into the output in its order, converting where the dtypes
   * differ.
   *
   * @return the bytes of tensor data written
   */
  private long copy(Checkpoint checkpoint, Map<String, QuantizedWeight> dequantized, TensorWriter output,
      ProgressBar progress) throws IOException {
    long written = 0;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment buffer = null;
      for (TensorSpec spec : output.tensors()) {
        QuantizedWeight weight = dequantized.get(spec.name());
        if (weight != null) {
          written += dequantize(weight, spec, output, progress, arena);
          continue;
        }
        TensorView source = checkpoint.tensor(spec.name());
        DType from = source.dtype();
        DType to = spec.dtype();
        if (from == to) {
          MemorySegment data = source.segment();
          long size = data.byteSize();
          for (long offset = 0; offset < size; offset += chunkBytes) {
            long length = Math.min(chunkBytes, size - offset);
            output.write(spec.name(), data.asSlice(offset, length));
            progress.add(length);
          }
          written += size;
          continue;
        }
        if (buffer == null) {
          buffer = arena.allocate(chunkBytes, 64);
        }
        int width = to.bits() / 8;
        // A multiple of 8 elements, so that every chunk starts on a byte of a sub-byte source.
        long perChunk = chunkBytes / width & ~7L;
        long count = source.elementCount();
        for (long first = 0; first < count; first += perChunk) {
          long n = Math.min(perChunk, count - first);
          source.copyRangeTo(first, n, buffer, 0, to);
          output.write(spec.name(), buffer.asSlice(0, n * width));
          progress.add(n * from.bits() / 8);
        }
        written += spec.byteSize();
      }
    }
    return written;
  }
}
