package dev.loadstone.torch;

import static dev.loadstone.torch.Fixtures.assertSameValues;
import static dev.loadstone.torch.Fixtures.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.LoadReport.Conversion;
import dev.loadstone.store.LoadReport.Mismatch;
import dev.loadstone.store.NameMapping;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class TorchLoaderTest {
  @TempDir Path dir;

  /** An embedding, a linear layer and an integer buffer, as a small model would have them. */
  private static Module model() {
    Libtorch.load();
    Module model = new Module();
    model.register_module("embed", new EmbeddingImpl(10, 4));
    model.register_module("proj", new LinearImpl(4, 3));
    model.register_buffer("position_ids", torch.zeros(new long[] {6}, new TensorOptions(ScalarType.Long)));
    return model;
  }

  private Path checkpoint(DType floats, TensorView... extra) throws IOException {
    List<TensorView> tensors = new ArrayList<>(List.of(
        Fixtures.floats("embed.weight", floats, 1, 10, 4),
        Fixtures.floats("proj.weight", floats, 2, 3, 4),
        Fixtures.floats("proj.bias", floats, 3, 3),
        Fixtures.random("position_ids", DType.I64, 4, 6)));
    tensors.addAll(List.of(extra));
    return Fixtures.write(dir.resolve("model.safetensors"), tensors.toArray(TensorView[]::new));
  }

  private static Tensor tensor(Module module, String name) {
    return TorchModules.namedTensors(module).get(name);
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "BF16", "F16", "F64"})
  void loadsEveryParameterAndBufferConvertingToTheirDType(DType fileDType) throws IOException {
    Module model = model();
    try (Checkpoint checkpoint = Checkpoint.open(checkpoint(fileDType))) {
      LoadReport report = TorchLoader.load(model, checkpoint, LoadOptions.defaults());
      assertTrue(report.isComplete(), report.summary());
      assertEquals(List.of("embed.weight", "proj.weight", "proj.bias", "position_ids"), report.loaded());
      assertEquals(List.of(), report.unexpected());
      for (String name : report.loaded()) {
        TensorView source = checkpoint.tensor(name);
        double[] expected = values(source);
        if (source.dtype() == DType.F64) {
          for (int i = 0; i < expected.length; i++) {
            expected[i] = (float) expected[i];
          }
        }
        assertSameValues(expected, values(tensor(model, name)), name);
      }
      List<Conversion> conversions = fileDType == DType.F32 ? List.of() : List.of(
          new Conversion("embed.weight", fileDType, DType.F32),
          new Conversion("proj.weight", fileDType, DType.F32),
          new Conversion("proj.bias", fileDType, DType.F32));
      assertEquals(conversions, report.conversions());
      long floats = 40 + 12 + 3;
      assertEquals(fileDType.byteSize(floats) + 48, report.bytesRead());
      assertEquals(4 * floats + 48, report.bytesWritten());
      assertEquals(LoadMode.COPY, report.mode());
    }
    assertTrue(tensor(model, "proj.weight").requires_grad(), "still a trainable parameter");
  }

  @Test
  void theModuleItselfSeesTheLoadedValues() throws IOException {
    LinearImpl linear = new LinearImpl(4, 3);
    Path file = Fixtures.write(dir.resolve("linear.safetensors"),
        Fixtures.floats("weight", DType.BF16, 7, 3, 4), Fixtures.floats("bias", DType.BF16, 8, 3));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      TorchLoader.load(linear, checkpoint, LoadOptions.defaults());
      assertSameValues(values(checkpoint.tensor("weight")), values(linear.weight()), "weight");
      assertSameValues(values(checkpoint.tensor("bias")), values(linear.bias()), "bias");
    }
  }

  @Test
  void aPartitionOfSeveralRanksIsRefusedSayingWhatToDoInstead() throws IOException {
    LinearImpl linear = new LinearImpl(4, 4);
    Path file = Fixtures.write(dir.resolve("linear.safetensors"),
        Fixtures.floats("weight", DType.BF16, 7, 4, 4), Fixtures.floats("bias", DType.BF16, 8, 4));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TorchLoader.load(linear,
          checkpoint, LoadOptions.defaults().withPartition(new dev.loadstone.store.Partition(0, 2,
              dev.loadstone.store.PartitionRules.none().with("weight", dev.loadstone.store.Split.along(0))))));
      assertTrue(e.getMessage().contains("loadstone slice"), e.getMessage());
      // A world of one is a whole load.
      TorchLoader.load(linear, checkpoint, LoadOptions.defaults().withPartition(new dev.loadstone.store.Partition(0, 1,
          dev.loadstone.store.PartitionRules.llama())));
      assertSameValues(values(checkpoint.tensor("weight")), values(linear.weight()), "weight");
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"BF16", "F16", "F32", "F64"}) // Loadstone's copy for the first three, copy_ for F64
  void tensorsLargerThanAChunkArriveWhole(DType fileDType) throws IOException {
    // 3 * 1,000,003 elements: 12 MB as float32, more than one chunk, not a multiple of one.
    Module module = new Module();
    module.register_parameter("big", torch.zeros(new long[] {3, 1_000_003}, new TensorOptions(ScalarType.Float)));
    Path file = Fixtures.write(dir.resolve("big.safetensors"), Fixtures.floats("big", fileDType, 9, 3, 1_000_003));
    List<Long> progress = java.util.Collections.synchronizedList(new ArrayList<>());
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      LoadReport report = TorchLoader.load(module, checkpoint, LoadOptions.defaults().withThreads(2)
          .withProgress((done, total, name) -> progress.add(done)));
      assertTrue(report.isComplete());
      assertSameValues(values(checkpoint.tensor("big")), values(tensor(module, "big")), "big");
      long chunkElements = (8L << 20) / Math.max(4, fileDType.bits() / 8); // 8 MiB of the wider dtype
      assertEquals((3L * 1_000_003 + chunkElements - 1) / chunkElements, progress.size(), "one call per chunk");
      assertEquals(fileDType.byteSize(3L * 1_000_003), progress.stream().mapToLong(Long::longValue).max().orElseThrow());
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"BF16", "F64"}) // Loadstone's copy for BF16, copy_ (from the staging buffer) for F64
  void directReadsFillTheSameValues(DType fileDType) throws IOException {
    Module module = new Module();
    module.register_parameter("big", torch.zeros(new long[] {3, 1_000_003}, new TensorOptions(ScalarType.Float)));
    module.register_parameter("w", torch.zeros(new long[] {3, 2}, new TensorOptions(ScalarType.Float)).t());
    Path file = Fixtures.write(dir.resolve("big.safetensors"), Fixtures.floats("big", fileDType, 9, 3, 1_000_003),
        Fixtures.floats("w", fileDType, 3, 2, 3));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      LoadReport report = TorchLoader.load(module, checkpoint,
          LoadOptions.defaults().withThreads(2).withReadMode(dev.loadstone.store.ReadMode.DIRECT));
      assertTrue(report.isComplete());
      assertEquals(List.of(file), report.readDirectly());
      assertSameValues(values(checkpoint.tensor("big")), values(tensor(module, "big")), "big");
      assertSameValues(values(checkpoint.tensor("w")), values(tensor(module, "w")), "w (strided, whole)");
    }
  }

  @Test
  void aStridedParameterIsFilledByItsShape() throws IOException {
    Module module = new Module();
    Tensor transposed = torch.zeros(new long[] {3, 2}, new TensorOptions(ScalarType.Float)).t();
    module.register_parameter("w", transposed);
    assertFalse(tensor(module, "w").is_contiguous());
    Path file = Fixtures.write(dir.resolve("w.safetensors"), Fixtures.floats("w", DType.F16, 3, 2, 3));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      TorchLoader.load(module, checkpoint, LoadOptions.defaults());
      assertSameValues(values(checkpoint.tensor("w")), values(tensor(module, "w")), "w");
    }
  }

  @Test
  void strictModeRefusesBeforeWritingAnything() throws IOException {
    Module model = model();
    Path file = Fixtures.write(dir.resolve("model.safetensors"),
        Fixtures.floats("embed.weight", DType.F32, 1, 10, 4),
        Fixtures.floats("proj.weight", DType.F32, 2, 3, 4),
        Fixtures.floats("extra", DType.F32, 3, 2));
    double[] before = values(tensor(model, "embed.weight"));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      LoadException e = assertThrows(LoadException.class,
          () -> TorchLoader.load(model, checkpoint, LoadOptions.defaults()));
      LoadReport report = e.report();
      assertEquals(List.of("proj.bias", "position_ids"), report.missing());
      assertEquals(List.of("extra"), report.unexpected());
      assertEquals(List.of(), report.loaded());
      assertEquals(0, report.bytesWritten());
      assertTrue(e.getMessage().contains("proj.bias"), e.getMessage());
    }
    assertSameValues(before, values(tensor(model, "embed.weight")), "untouched");
  }

  @Test
  void partialModeLoadsWhatFitsAndReportsTheRest() throws IOException {
    Module model = model();
    Path file = Fixtures.write(dir.resolve("model.safetensors"),
        Fixtures.floats("embed.weight", DType.BF16, 1, 10, 4),
        Fixtures.floats("proj.weight", DType.BF16, 2, 4, 3),      // transposed: a shape mismatch
        Fixtures.random("proj.bias", DType.C64, 3, 3),           // complex: no conversion to real
        Fixtures.floats("lm_head.weight", DType.BF16, 4, 2));
    double[] weight = values(tensor(model, "proj.weight"));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      LoadReport report = TorchLoader.load(model, checkpoint, LoadOptions.defaults().partial());
      assertFalse(report.isComplete());
      assertEquals(List.of("embed.weight"), report.loaded());
      assertEquals(List.of("position_ids"), report.missing());
      assertEquals(List.of("lm_head.weight"), report.unexpected());
      assertEquals(2, report.mismatches().size());
      Mismatch shape = report.mismatches().get(0);
      assertEquals(List.of("proj.weight", "proj.weight", Mismatch.Kind.SHAPE, "[3, 4]", "[4, 3]"),
          List.of(shape.variable(), shape.tensor(), shape.kind(), shape.expected(), shape.found()));
      assertEquals(file.getFileName(), shape.file().getFileName());
      Mismatch dtype = report.mismatches().get(1);
      assertEquals(Mismatch.Kind.DTYPE, dtype.kind());
      assertEquals("proj.bias", dtype.variable());
      assertEquals("F32", dtype.expected());
      assertTrue(dtype.found().startsWith("C64"), dtype.found());
      assertSameValues(values(checkpoint.tensor("embed.weight")), values(tensor(model, "embed.weight")), "loaded");
      assertSameValues(weight, values(tensor(model, "proj.weight")), "the mismatched one is untouched");
    }
  }

  @Test
  void shapesAreNeverBroadcast() throws IOException {
    Module module = new Module();
    module.register_parameter("w", torch.zeros(new long[] {4, 3}, new TensorOptions(ScalarType.Float)));
    module.register_parameter("v", torch.zeros(new long[] {6}, new TensorOptions(ScalarType.Float)));
    Path file = Fixtures.write(dir.resolve("m.safetensors"),
        Fixtures.floats("w", DType.F32, 1, 1, 3),        // copy_ would broadcast this row
        Fixtures.floats("v", DType.F32, 2, 2, 3));       // same count, other shape
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      LoadException e = assertThrows(LoadException.class,
          () -> TorchLoader.load(module, checkpoint, LoadOptions.defaults()));
      assertEquals(List.of("w", "v"), e.report().mismatches().stream().map(Mismatch::variable).toList());
      assertTrue(e.report().mismatches().stream().allMatch(m -> m.kind() == Mismatch.Kind.SHAPE));
    }
    assertSameValues(new double[12], values(tensor(module, "w")), "untouched");
  }

  @Test
  void namesAreMappedAndRenamesReported() throws IOException {
    LinearImpl linear = new LinearImpl(4, 3);
    Path file = Fixtures.write(dir.resolve("m.safetensors"),
        Fixtures.floats("model.proj.weight", DType.F32, 1, 3, 4),
        Fixtures.floats("model.proj.bias", DType.F32, 2, 3),
        Fixtures.floats("model.other.weight", DType.F32, 3, 2));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      LoadOptions options = LoadOptions.defaults().withNames(NameMapping.identity()
          .rename(n -> n.startsWith("model.proj.") ? n.substring("model.proj.".length()) : null));
      LoadReport report = TorchLoader.load(linear, checkpoint, options);
      assertEquals(List.of("weight", "bias"), report.loaded());
      assertEquals(List.of("model.other.weight"), report.unexpected());
      assertEquals(Map.of("model.proj.weight", "weight", "model.proj.bias", "bias"), report.renamed());
      assertSameValues(values(checkpoint.tensor("model.proj.bias")), values(linear.bias()), "bias");
    }
  }

  @Test
  void twoTensorsForOneParameterAreAnError() throws IOException {
    LinearImpl linear = new LinearImpl(2, 1);
    Path file = Fixtures.write(dir.resolve("m.safetensors"),
        Fixtures.floats("a.bias", DType.F32, 1, 1), Fixtures.floats("b.bias", DType.F32, 2, 1),
        Fixtures.floats("a.weight", DType.F32, 3, 1, 2));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      LoadOptions options = LoadOptions.defaults().withNames(NameMapping.identity().rename(n -> n.substring(2)));
      LoadException e = assertThrows(LoadException.class, () -> TorchLoader.load(linear, checkpoint, options));
      assertTrue(e.getMessage().contains("both map to 'bias'"), e.getMessage());
    }
  }

  @Test
  void theLoadUsesTheOptionsThreadsAndRestoresLibtorchs() throws IOException {
    int before = torch.get_num_threads();
    LinearImpl linear = new LinearImpl(2, 1);
    Path file = Fixtures.write(dir.resolve("m.safetensors"),
        Fixtures.floats("weight", DType.F32, 1, 1, 2), Fixtures.floats("bias", DType.F32, 2, 1));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      TorchLoader.load(linear, checkpoint, LoadOptions.defaults().withThreads(1));
    }
    assertEquals(before, torch.get_num_threads());
  }

  @Test
  void devicesAreCheckedFirstAndCpuWorks() throws IOException {
    LinearImpl linear = new LinearImpl(2, 1);
    Path file = Fixtures.write(dir.resolve("m.safetensors"),
        Fixtures.floats("weight", DType.BF16, 1, 1, 2), Fixtures.floats("bias", DType.BF16, 2, 1));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      assertTrue(TorchLoader.load(linear, checkpoint, LoadOptions.defaults(), "cpu").isComplete());
      assertSameValues(values(checkpoint.tensor("weight")), values(linear.weight()), "weight");
      IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
          () -> TorchLoader.load(linear, checkpoint, LoadOptions.defaults(), "tpu:0"));
      assertTrue(unknown.getMessage().contains("unknown device 'tpu:0'"), unknown.getMessage());
      String gpu = "cuda:" + Libtorch.cudaDevices();    // one past the last device libtorch sees
      IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
          () -> TorchLoader.load(linear, checkpoint, LoadOptions.defaults(), gpu));
      assertTrue(missing.getMessage().contains("device " + gpu + " requested, but libtorch sees"), missing.getMessage());
    }
  }

  @Test
  void aliasModeIsNotOffered() throws IOException {
    LinearImpl linear = new LinearImpl(2, 1);
    Path file = Fixtures.write(dir.resolve("m.safetensors"),
        Fixtures.floats("weight", DType.F32, 1, 1, 2), Fixtures.floats("bias", DType.F32, 2, 1));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      assertThrows(IllegalArgumentException.class, () -> TorchLoader.load(linear, checkpoint,
          LoadOptions.defaults().withMode(LoadMode.ALIAS)));
    }
  }

  @Test
  void aClosedCheckpointFailsTheLoadCleanly() throws IOException {
    LinearImpl linear = new LinearImpl(2, 1);
    Path file = Fixtures.write(dir.resolve("m.safetensors"),
        Fixtures.floats("weight", DType.F32, 1, 1, 2), Fixtures.floats("bias", DType.F32, 2, 1));
    Checkpoint checkpoint = Checkpoint.open(file);
    checkpoint.close();
    LoadException e = assertThrows(LoadException.class,
        () -> TorchLoader.load(linear, checkpoint, LoadOptions.defaults()));
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
    assertEquals(List.of(), e.report().loaded());
  }

  @Test
  void aCheckpointClosedMidLoadStopsTheLoadBeforeLibtorchReadsUnmappedMemory() throws IOException {
    Module module = new Module();
    module.register_parameter("big", torch.zeros(new long[] {3, 1_000_003}, new TensorOptions(ScalarType.Float)));
    Path file = Fixtures.write(dir.resolve("big.safetensors"), Fixtures.floats("big", DType.BF16, 9, 3, 1_000_003));
    Checkpoint checkpoint = Checkpoint.open(file);
    LoadOptions closeAfterTheFirstChunk = LoadOptions.defaults().withThreads(1)
        .withProgress((done, total, name) -> checkpoint.close());
    LoadException e = assertThrows(LoadException.class, () -> TorchLoader.load(module, checkpoint, closeAfterTheFirstChunk));
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
    assertEquals(List.of(), e.report().loaded());
  }

  @Test
  void integerTensorsLoadBitExactly() throws IOException {
    Module module = new Module();
    module.register_buffer("ids", torch.zeros(new long[] {5, 7}, new TensorOptions(ScalarType.Int)));
    module.register_buffer("mask", torch.zeros(new long[] {9}, new TensorOptions(ScalarType.Bool)));
    TensorView ids = Fixtures.random("ids", DType.I32, 1, 5, 7);
    Path file = Fixtures.write(dir.resolve("m.safetensors"), ids, Fixtures.random("mask", DType.U8, 2, 9));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      LoadReport report = TorchLoader.load(module, checkpoint, LoadOptions.defaults());
      assertEquals(List.of(new Conversion("mask", DType.U8, DType.BOOL)), report.conversions());
      assertSameValues(values(checkpoint.tensor("ids")), values(tensor(module, "ids")), "ids");
      double[] mask = values(checkpoint.tensor("mask"));
      assertArrayEquals(java.util.Arrays.stream(mask).map(v -> v != 0 ? 1 : 0).toArray(),
          values(tensor(module, "mask")));
    }
  }
}
