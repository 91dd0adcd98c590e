package dev.loadstone.torch;

import static dev.loadstone.torch.Fixtures.assertSameValues;
import static dev.loadstone.torch.Fixtures.values;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.NameMapping;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TorchModulesTest {
  @TempDir Path dir;

  private Path llamaLike() throws IOException {
    return Fixtures.write(dir.resolve("model.safetensors"),
        Fixtures.floats("model.embed_tokens.weight", DType.BF16, 1, 16, 8),
        Fixtures.floats("model.layers.0.self_attn.q_proj.weight", DType.BF16, 2, 8, 8),
        Fixtures.floats("model.layers.0.input_layernorm.weight", DType.BF16, 3, 8),
        Fixtures.floats("model.norm.weight", DType.BF16, 4, 8),
        Fixtures.random("model.rotary.inv_freq_ids", DType.I64, 5, 4));
  }

  @Test
  void namedTensorsListParametersThenBuffersByDottedName() {
    Module model = new Module();
    model.register_module("layer", new LinearImpl(2, 3));
    model.register_buffer("steps", torch.zeros(new long[] {1}, new TensorOptions(ScalarType.Long)));
    assertEquals(List.of("layer.weight", "layer.bias", "steps"), List.copyOf(TorchModules.namedTensors(model).keySet()));
  }

  @Test
  void aModuleMadeFromACheckpointHoldsItsValues() throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(llamaLike())) {
      Module model = TorchLoader.fromCheckpoint(checkpoint,
          LoadOptions.defaults().withCreateDType(DType.F32).withNames(NameMapping.identity().stripPrefix("model.")), "cpu");
      Map<String, Tensor> tensors = TorchModules.namedTensors(model);
      assertEquals(java.util.Set.of("embed_tokens.weight", "layers.0.self_attn.q_proj.weight",
          "layers.0.input_layernorm.weight", "norm.weight", "rotary.inv_freq_ids"), tensors.keySet());
      for (TensorView source : checkpoint.tensors()) {
        Tensor tensor = tensors.get(source.name().substring("model.".length()));
        DType expected = source.dtype() == DType.I64 ? DType.I64 : DType.F32;
        assertEquals(expected, TorchTensors.dtype(tensor.scalar_type()).orElseThrow(), source.name());
        assertSameValues(values(source), values(tensor), source.name());
      }
      assertTrue(tensors.get("norm.weight").requires_grad(), "floats are parameters");
      assertEquals(1, model.named_buffers(true).size(), "integers are buffers");
      assertEquals(4, model.named_children().size(), "embed_tokens, layers, norm, rotary");
    }
  }

  @Test
  void createdModulesAreZeroFilledAndKeepTheFileDType() throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(llamaLike())) {
      Module model = TorchModules.create(checkpoint, LoadOptions.defaults(), "cpu");
      Tensor norm = TorchModules.namedTensors(model).get("model.norm.weight");
      assertEquals(DType.BF16, TorchTensors.dtype(norm.scalar_type()).orElseThrow());
      assertSameValues(new double[8], values(norm), "zeros");
    }
  }

  @Test
  void badNamesAreReportedWithTheTensor() throws IOException {
    Path file = Fixtures.write(dir.resolve("bad.safetensors"), Fixtures.floats("a..b", DType.F32, 1, 2));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> TorchModules.create(checkpoint, LoadOptions.defaults(), "cpu"));
      assertTrue(e.getMessage().contains("'a..b'"), e.getMessage());
    }
  }

  @Test
  void savedModulesReadBackBitForBit() throws IOException {
    Module model = new Module();
    LinearImpl proj = model.register_module("proj", new LinearImpl(5, 3));
    model.register_module("embed", new EmbeddingImpl(7, 5));
    model.register_buffer("half", torch.randn(new long[] {4}, new TensorOptions(ScalarType.BFloat16)));
    model.register_buffer("strided", torch.randn(new long[] {3, 2}, new TensorOptions(ScalarType.Float)).t());
    Path file = dir.resolve("saved.safetensors");
    TorchModules.save(model, file, Map.of("format", "pt"));
    try (SafeTensors saved = SafeTensors.open(file)) {
      assertEquals(List.of("embed.weight", "half", "proj.bias", "proj.weight", "strided"),
          saved.names().stream().sorted().toList());
      assertEquals(DType.BF16, saved.tensor("half").dtype());
      assertEquals(Map.of("format", "pt"), saved.metadata().orElseThrow());
      assertSameValues(values(proj.weight()), values(saved.tensor("proj.weight")), "weight");
      Map<String, Tensor> tensors = TorchModules.namedTensors(model);
      for (String name : saved.names()) {
        assertSameValues(values(tensors.get(name)), values(saved.tensor(name)), name);
      }
      assertEquals(List.of(2L, 3L), java.util.Arrays.stream(saved.tensor("strided").shape()).boxed().toList());
    }
  }

  @Test
  void aSavedModuleLoadsIntoAFreshOneThroughShards() throws IOException {
    LinearImpl original = new LinearImpl(64, 32);
    Path directory = dir.resolve("sharded");
    TorchModules.save(original, directory, null, 4096);
    assertTrue(Files.exists(directory.resolve(Checkpoint.INDEX_FILE_NAME)));
    LinearImpl copy = new LinearImpl(64, 32);
    assertFalse(torch.equal(copy.weight(), original.weight()));
    try (Checkpoint checkpoint = Checkpoint.open(directory)) {
      assertTrue(checkpoint.files().size() > 1);
      assertTrue(TorchLoader.load(copy, checkpoint, LoadOptions.defaults()).isComplete());
    }
    assertTrue(torch.equal(copy.weight(), original.weight()));
    assertTrue(torch.equal(copy.bias(), original.bias()));
  }
}
