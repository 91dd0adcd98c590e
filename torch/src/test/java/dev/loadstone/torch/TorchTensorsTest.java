package dev.loadstone.torch;

import static dev.loadstone.torch.Fixtures.assertSameValues;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class TorchTensorsTest {
  @TempDir Path dir;

  /**
   * The loader writes contiguous CPU targets itself where its conversion gives libtorch's bits:
   * for every 16-bit input, the widening to float32 must agree with copy_.
   */
  @ParameterizedTest
  @EnumSource(names = {"BF16", "F16"})
  void libtorchWidensEverySixteenBitFloatAsLoadstoneDoes(DType from) {
    int count = 1 << 16;
    try (Arena arena = Arena.ofConfined(); PointerScope scope = new PointerScope()) {
      MemorySegment source = arena.allocate(2L * count, 64);
      for (int i = 0; i < count; i++) {
        source.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) i);
      }
      MemorySegment loadstone = arena.allocate(4L * count, 64);
      TensorView.of("t", from, new long[] {count}, source).copyTo(loadstone, DType.F32);
      Tensor widened = torch.zeros(new long[] {count}, new TensorOptions(ScalarType.Float));
      widened.copy_(TorchTensors.wrap(source, TorchTensors.scalarType(from).orElseThrow(), new long[] {count}));
      MemorySegment libtorch = MemorySegment.ofAddress(widened.data_ptr().address()).reinterpret(4L * count);
      for (int i = 0; i < count; i++) {
        int expected = libtorch.getAtIndex(ValueLayout.JAVA_INT, i);
        int actual = loadstone.getAtIndex(ValueLayout.JAVA_INT, i);
        if (expected != actual) {
          assertEquals(Integer.toHexString(expected), Integer.toHexString(actual), from + " code " + Integer.toHexString(i));
        }
      }
    }
  }

  @Test
  void everyDTypeLibtorchHasMapsBothWays() {
    for (DType dtype : DType.values()) {
      var type = TorchTensors.scalarType(dtype);
      boolean expected = !List.of(DType.F6_E2M3, DType.F6_E3M2, DType.F4).contains(dtype);
      assertEquals(expected, type.isPresent(), dtype.name());
      type.ifPresent(t -> assertEquals(dtype, TorchTensors.dtype(t).orElseThrow()));
    }
    assertEquals(ScalarType.BFloat16, TorchTensors.scalarType(DType.BF16).orElseThrow());
    assertEquals(ScalarType.Float8_e4m3fn, TorchTensors.scalarType(DType.F8_E4M3).orElseThrow());
    assertTrue(TorchTensors.dtype(ScalarType.QInt8).isEmpty());
  }

  /** The view reads exactly what the core reader decodes, for each dtype libtorch can widen to double. */
  @ParameterizedTest
  @EnumSource(names = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL",
      "F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ"})
  void viewIsZeroCopyAndReadsTheFileValues(DType dtype) throws IOException {
    Path file = Fixtures.write(dir.resolve("t.safetensors"),
        Fixtures.random("x", dtype, dtype.ordinal(), 3, 17));
    try (SafeTensors tensors = SafeTensors.open(file);
        MappedTensor view = TorchTensors.view(tensors.tensor("x"))) {
      TensorView source = tensors.tensor("x");
      Tensor tensor = view.tensor();
      assertEquals(source.segment().address(), tensor.data_ptr().address(), "no copy");
      assertEquals(List.of(3L, 17L), Arrays.stream(TorchTensors.shape(tensor)).boxed().toList());
      assertEquals(dtype, TorchTensors.dtype(tensor.scalar_type()).orElseThrow());
      double[] expected = Fixtures.values(source);
      if (dtype == DType.BOOL) {
        expected = Arrays.stream(expected).map(v -> v != 0 ? 1 : 0).toArray();
      }
      assertSameValues(expected, Fixtures.values(tensor), dtype.name());
    }
  }

  @Test
  void aViewOfAClosedCheckpointCannotBeRead() throws IOException {
    Path file = Fixtures.write(dir.resolve("model.safetensors"), Fixtures.random("w", DType.F32, 1, 4, 4));
    MappedTensor view;
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      view = TorchTensors.view(checkpoint.tensor("w"));
      assertTrue(view.isReadable());
      assertEquals(16, view.tensor().numel());
    }
    assertFalse(view.isReadable());
    IllegalStateException e = assertThrows(IllegalStateException.class, view::tensor);
    assertTrue(e.getMessage().contains("closed") && e.getMessage().contains("'w'"), e.getMessage());
    view.close();
    view.close();
  }

  @Test
  void closingTheHandleDetachesItsTensorFromTheMapping() throws IOException {
    Path file = Fixtures.write(dir.resolve("model.safetensors"), Fixtures.random("w", DType.F32, 1, 8));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      MappedTensor view = TorchTensors.view(checkpoint.tensor("w"));
      Tensor shared = new Tensor(view.tensor());
      view.close();
      assertEquals(0, shared.numel(), "a tensor sharing the handle's implementation is emptied");
      assertThrows(IllegalStateException.class, view::tensor);
    }
  }

  @Test
  void viewsNeedALibtorchDTypeAndNativeMemory() {
    TensorView f6 = Fixtures.random("f6", DType.F6_E2M3, 1, 8);
    assertThrows(IllegalArgumentException.class, () -> TorchTensors.view(f6));
    TensorView heap = TensorView.of("heap", DType.F32, new long[] {2}, MemorySegment.ofArray(new float[2]));
    assertThrows(IllegalArgumentException.class, () -> TorchTensors.view(heap));
  }

  @Test
  void convertibilityIsAskedOfLibtorch() {
    assertTrue(TorchTensors.canCopy(DType.BF16, DType.F32));
    assertTrue(TorchTensors.canCopy(DType.F8_E4M3, DType.F32));
    assertTrue(TorchTensors.canCopy(DType.I64, DType.F16));
    assertFalse(TorchTensors.canCopy(DType.C64, DType.F32), "would drop the imaginary part");
    assertFalse(TorchTensors.canCopy(DType.F6_E2M3, DType.F32));
    assertFalse(TorchTensors.canCopy(DType.F32, DType.F4));
  }
}
