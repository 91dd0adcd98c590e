package dev.loadstone.quantization;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The quantized checkpoints of {@code src/test/resources/dev/loadstone/quantization}, written by
 * {@code src/test/python/make_quantized_fixtures.py} (numpy, offline; the tests need no Python):
 * each case has {@code config.json}, {@code model.safetensors} and {@code expected.safetensors},
 * the latter holding every quantized weight's values as F64, computed in float64 from the
 * integers, codes, zero points and scales before they were packed.
 */
final class QuantizedFixtures {
  static final Path ROOT = Path.of("src/test/resources/dev/loadstone/quantization");

  /** Every case, with the scheme description its config gives. */
  static final Map<String, String> CASES = Map.of(
      "fp8-block", "fp8 blocks of 8x16",
      "compressed-fp8", "compressed-tensors float-quantized fp8, per tensor, sym; compressed-tensors float-quantized fp8, per channel, sym",
      "compressed-int4", "compressed-tensors pack-quantized int4, groups of 16, sym",
      "compressed-int4-asym", "compressed-tensors pack-quantized int4, groups of 16, asym",
      "gptq-v1", "gptq 4-bit, groups of 16, sym, gptq (v1)",
      "gptq-v2-desc-act", "gptq 4-bit, groups of 16, desc_act, asym, gptq_v2",
      "gptq-v1-8bit-one-group", "gptq 8-bit, one group, sym, gptq (v1)",
      "awq-gemm", "awq 4-bit gemm, groups of 16");

  private QuantizedFixtures() {}

  static Path dir(String name) {
    return ROOT.resolve(name);
  }

  /** The expected values of a case: one F64 tensor per quantized weight, by logical name. */
  static SafeTensors expected(String name) throws IOException {
    return SafeTensors.open(dir(name).resolve("expected.safetensors"));
  }

  /**
   * A copy of a case in {@code into}: its tensors changed by {@code tensors}, its
   * {@code config.json} by {@code config} ({@code null} from it: no config.json written).
   */
  static Path copy(String name, Path into, UnaryOperator<List<TensorView>> tensors, UnaryOperator<String> config)
      throws IOException {
    Files.createDirectories(into);
    String text = config.apply(Files.readString(dir(name).resolve("config.json")));
    if (text != null) {
      Files.writeString(into.resolve("config.json"), text);
    }
    try (Checkpoint original = Checkpoint.open(dir(name))) {
      List<TensorView> copies = new ArrayList<>();
      Arena arena = Arena.ofAuto();
      for (TensorView tensor : original.tensors()) {
        MemorySegment data = arena.allocate(Math.max(1, tensor.byteSize()), 8).asSlice(0, tensor.byteSize());
        data.copyFrom(tensor.segment());
        copies.add(TensorView.of(tensor.name(), tensor.dtype(), tensor.shape(), data));
      }
      SafeTensorsWriter.write(into.resolve(Checkpoint.SINGLE_FILE_NAME), Map.of("format", "pt"),
          tensors.apply(copies));
    }
    return into;
  }

  /** {@code tensors} without the one named {@code name}. */
  static List<TensorView> without(List<TensorView> tensors, String name) {
    return tensors.stream().filter(t -> !t.name().equals(name)).toList();
  }

  /** {@code tensors} with the one named {@code name} replaced by a copy whose int32 element {@code index} is {@code value}. */
  static List<TensorView> withInt(List<TensorView> tensors, String name, long index, int value) {
    return tensors.stream().map(t -> {
      if (!t.name().equals(name)) {
        return t;
      }
      MemorySegment data = Arena.ofAuto().allocate(t.byteSize(), 8);
      data.copyFrom(t.segment());
      data.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), index * 4, value);
      return TensorView.of(t.name(), t.dtype(), t.shape(), data);
    }).toList();
  }

  /** {@code tensors} with the one named {@code name} given another shape (its bytes cut or zero-extended). */
  static List<TensorView> reshaped(List<TensorView> tensors, String name, long... shape) {
    return tensors.stream().map(t -> {
      if (!t.name().equals(name)) {
        return t;
      }
      long elements = 1;
      for (long dim : shape) {
        elements *= dim;
      }
      MemorySegment data = Arena.ofAuto().allocate(Math.max(1, t.dtype().byteSize(elements)), 8)
          .asSlice(0, t.dtype().byteSize(elements));
      MemorySegment.copy(t.segment(), 0, data, 0, Math.min(data.byteSize(), t.byteSize()));
      return TensorView.of(t.name(), t.dtype(), shape, data);
    }).toList();
  }
}
