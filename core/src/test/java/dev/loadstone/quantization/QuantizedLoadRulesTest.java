package dev.loadstone.quantization;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.SafeTensorsException;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.LoadReport.Mismatch;
import dev.loadstone.store.NameMapping;
import dev.loadstone.store.VarStore;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.nio.file.Path;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a user relies on around quantized checkpoints: a quantized weight is never loaded with
 * its quantization ignored, and every refusal names the file, the tensor and the rule.
 */
class QuantizedLoadRulesTest {
  private static final String DOWN = "model.layers.0.mlp.down_proj.weight";
  private static final String UP = "model.layers.0.mlp.up_proj.weight";
  private static final String O_PROJ = "model.layers.0.self_attn.o_proj.";

  @TempDir Path dir;

  private static <T extends Throwable> T findCause(Throwable thrown, Class<T> type) {
    for (Throwable t = thrown; t != null; t = t.getCause()) {
      if (type.isInstance(t)) {
        return type.cast(t);
      }
    }
    throw new AssertionError("no " + type.getSimpleName() + " in " + thrown, thrown);
  }

  private static CheckpointException recognitionFails(Path checkpoint) {
    return assertThrows(CheckpointException.class, () -> {
      try (Checkpoint opened = Checkpoint.open(checkpoint)) {
        Quantization.of(opened);
      }
    });
  }

  /** A store with the fp8-block fixture's weights as BF16 variables of their logical shape, and its norm. */
  private static VarStore fp8Store() {
    VarStore store = new VarStore();
    store.root().zeros(DOWN, DType.BF16, 20, 40);
    store.root().zeros(UP, DType.BF16, 17, 33);
    store.root().zeros("model.norm.weight", DType.BF16, 8);
    return store;
  }

  @Test
  void fp8WeightsWithoutAConfigAreRefusedNamingTheirScales() throws IOException {
    Path copy = QuantizedFixtures.copy("fp8-block", dir.resolve("no-config"), UnaryOperator.identity(), c -> null);
    try (Checkpoint checkpoint = Checkpoint.open(copy); VarStore store = fp8Store()) {
      LoadException e = assertThrows(LoadException.class, () -> store.load(checkpoint, LoadOptions.defaults()));
      List<Mismatch> mismatches = e.report().mismatches();
      assertEquals(2, mismatches.size(), e.report().summary());
      Mismatch down = mismatches.stream().filter(m -> m.variable().equals(DOWN)).findFirst().orElseThrow();
      assertEquals(Mismatch.Kind.QUANTIZATION, down.kind());
      assertTrue(down.found().contains(DOWN + "_scale_inv"), down.found());
      assertTrue(down.found().contains("config.json"), down.found());
      assertTrue(e.getMessage().contains(copy.resolve("model.safetensors").toString()), e.getMessage());
      assertFalse(store.variable(DOWN).isLoaded());
    }
  }

  @Test
  void partialLoadReportsTheTrapAndLoadsTheRest() throws IOException {
    Path copy = QuantizedFixtures.copy("fp8-block", dir.resolve("no-config"), UnaryOperator.identity(), c -> null);
    try (Checkpoint checkpoint = Checkpoint.open(copy); VarStore store = fp8Store()) {
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().partial());
      assertEquals(List.of("model.norm.weight"), report.loaded());
      assertEquals(2, report.mismatches().size());
      assertFalse(store.variable(DOWN).isLoaded());
      assertEquals(0f, store.variable(DOWN).view().getFloat(0), "nothing was written into the trap's variable");
    }
  }

  @Test
  void anFp8WeightLoadedAsItIsNeedsItsScaleLoadedToo() throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(QuantizedFixtures.dir("fp8-block")); VarStore store = new VarStore()) {
      store.root().zeros(DOWN, DType.F8_E4M3, 20, 40);
      LoadException e = assertThrows(LoadException.class,
          () -> store.load(checkpoint, LoadOptions.defaults().withNames(NameMapping.identity())));
      Mismatch mismatch = e.report().mismatches().getFirst();
      assertEquals(Mismatch.Kind.QUANTIZATION, mismatch.kind());
      assertEquals(DOWN, mismatch.tensor());
      assertTrue(mismatch.found().contains(DOWN + "_scale_inv"), mismatch.found());
    }
  }

  @Test
  void everyStoredTensorWithAVariableLoadsAsItIs() throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(QuantizedFixtures.dir("fp8-block")); VarStore store = new VarStore()) {
      store.root().zeros(DOWN, DType.F8_E4M3, 20, 40);
      store.root().zeros(DOWN + "_scale_inv", DType.F32, 3, 3);
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().partial());
      assertEquals(List.of(DOWN, DOWN + "_scale_inv"), report.loaded());
      assertEquals(List.of(), report.dequantized());
      assertEquals(-1L, checkpoint.tensor(DOWN).segment().mismatch(store.variable(DOWN).segment()));
    }
  }

  @Test
  void gptqTensorsLoadedOneByOneNeedAllTheirCompanions() throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(QuantizedFixtures.dir("gptq-v1")); VarStore store = new VarStore()) {
      store.root().zeros(O_PROJ + "qweight", DType.I32, 8, 16);
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().partial());
      Mismatch mismatch = report.mismatches().getFirst();
      assertEquals(Mismatch.Kind.QUANTIZATION, mismatch.kind());
      assertTrue(mismatch.found().contains(O_PROJ + "qzeros") && mismatch.found().contains(O_PROJ + "scales"),
          mismatch.found());
      assertEquals(List.of(), report.loaded());
    }
  }

  @Test
  void aliasModeCannotDequantize() throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(QuantizedFixtures.dir("fp8-block")); VarStore store = fp8Store()) {
      LoadException e = assertThrows(LoadException.class,
          () -> store.load(checkpoint, LoadOptions.defaults().withMode(LoadMode.ALIAS)));
      Mismatch mismatch = e.report().mismatches().getFirst();
      assertEquals(Mismatch.Kind.QUANTIZATION, mismatch.kind());
      assertTrue(mismatch.found().contains("ALIAS"), mismatch.found());
    }
  }

  @Test
  void aVariableOfAnotherShapeIsAShapeMismatchNamingTheLogicalShape() throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(QuantizedFixtures.dir("gptq-v1")); VarStore store = new VarStore()) {
      store.root().zeros(O_PROJ + "weight", DType.F32, 64, 16);   // [in, out]: transposed
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().partial());
      Mismatch mismatch = report.mismatches().getFirst();
      assertEquals(Mismatch.Kind.SHAPE, mismatch.kind());
      assertEquals("[64, 16]", mismatch.expected());
      assertTrue(mismatch.found().startsWith("[16, 64]"), mismatch.found());
    }
  }

  @Test
  void namesMapFromTheLogicalName() throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(QuantizedFixtures.dir("awq-gemm"));
         SafeTensors expected = QuantizedFixtures.expected("awq-gemm");
         VarStore store = new VarStore()) {
      store.root().zeros("layers.0.mlp.gate_proj.weight", DType.F64, 24, 32);
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().partial()
          .withNames(NameMapping.identity().stripPrefix("model.")));
      assertEquals(List.of("layers.0.mlp.gate_proj.weight"), report.loaded());
      assertEquals("layers.0.mlp.gate_proj.weight", report.renamed().get("model.layers.0.mlp.gate_proj.weight"));
      DequantizationTest.assertNearest(expected.tensor("model.layers.0.mlp.gate_proj.weight"),
          store.variable("layers.0.mlp.gate_proj.weight").view(), DType.F64);
    }
  }

  @Test
  void fromCheckpointCreatesDenseVariablesInTheModelsDType() throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(QuantizedFixtures.dir("gptq-v2-desc-act"));
         SafeTensors expected = QuantizedFixtures.expected("gptq-v2-desc-act");
         VarStore store = VarStore.fromCheckpoint(checkpoint, LoadOptions.defaults())) {
      for (TensorView values : expected.tensors()) {
        assertEquals(DType.F16, store.variable(values.name()).dtype());   // torch_dtype float16
        DequantizationTest.assertNearest(values, store.variable(values.name()).view(), DType.F16);
      }
      assertTrue(store.find(O_PROJ + "qweight").isEmpty());
      assertTrue(store.find(O_PROJ + "bias").isPresent());
    }
  }

  @Test
  void aMissingScaleIsAnErrorNamingTheWeightAndTheScale() throws IOException {
    Path copy = QuantizedFixtures.copy("fp8-block", dir.resolve("c"),
        t -> QuantizedFixtures.without(t, DOWN + "_scale_inv"), UnaryOperator.identity());
    CheckpointException e = recognitionFails(copy);
    assertEquals(Reason.MISSING_QUANTIZATION_COMPANION, e.reason());
    assertEquals(DOWN, e.tensor().orElseThrow());
    assertTrue(e.getMessage().contains(DOWN + "_scale_inv"), e.getMessage());
    assertTrue(e.getMessage().contains(copy.resolve("model.safetensors").toString()), e.getMessage());
  }

  @Test
  void aMissingZeroPointTensorIsAnErrorNamingIt() throws IOException {
    Path copy = QuantizedFixtures.copy("gptq-v1", dir.resolve("c"),
        t -> QuantizedFixtures.without(t, O_PROJ + "qzeros"), UnaryOperator.identity());
    CheckpointException e = recognitionFails(copy);
    assertEquals(Reason.MISSING_QUANTIZATION_COMPANION, e.reason());
    assertEquals(O_PROJ + "qweight", e.tensor().orElseThrow());
    assertTrue(e.getMessage().contains(O_PROJ + "qzeros"), e.getMessage());
  }

  @Test
  void descActWithoutGIdxIsAnErrorNamingIt() throws IOException {
    Path copy = QuantizedFixtures.copy("gptq-v2-desc-act", dir.resolve("c"),
        t -> QuantizedFixtures.without(t, O_PROJ + "g_idx"), UnaryOperator.identity());
    CheckpointException e = recognitionFails(copy);
    assertEquals(Reason.MISSING_QUANTIZATION_COMPANION, e.reason());
    assertTrue(e.getMessage().contains(O_PROJ + "g_idx"), e.getMessage());
  }

  @Test
  void aScaleGridThatDoesNotCoverTheRaggedEdgeIsInconsistent() throws IOException {
    Path copy = QuantizedFixtures.copy("fp8-block", dir.resolve("c"),
        t -> QuantizedFixtures.reshaped(t, DOWN + "_scale_inv", 2, 3), UnaryOperator.identity());
    CheckpointException e = recognitionFails(copy);
    assertEquals(Reason.INCONSISTENT_QUANTIZED_TENSORS, e.reason());
    assertEquals(DOWN + "_scale_inv", e.tensor().orElseThrow());
    assertTrue(e.getMessage().contains("[3, 3]"), e.getMessage());
  }

  @Test
  void scalesOfTheWrongGroupCountAreInconsistent() throws IOException {
    Path copy = QuantizedFixtures.copy("gptq-v1", dir.resolve("c"),
        t -> QuantizedFixtures.reshaped(t, O_PROJ + "scales", 3, 16), UnaryOperator.identity());
    CheckpointException e = recognitionFails(copy);
    assertEquals(Reason.INCONSISTENT_QUANTIZED_TENSORS, e.reason());
    assertEquals(O_PROJ + "scales", e.tensor().orElseThrow());
  }

  @Test
  void anUnknownSchemeIsRefusedNamingIt() throws IOException {
    Path copy = QuantizedFixtures.copy("gptq-v1", dir.resolve("c"), UnaryOperator.identity(),
        c -> c.replace("\"quant_method\": \"gptq\"", "\"quant_method\": \"bitsandbytes\""));
    CheckpointException e = recognitionFails(copy);
    assertEquals(Reason.UNSUPPORTED_QUANTIZATION, e.reason());
    assertTrue(e.getMessage().contains("bitsandbytes"), e.getMessage());
    assertTrue(e.getMessage().contains(copy.resolve("config.json").toString()), e.getMessage());
    try (Checkpoint checkpoint = Checkpoint.open(copy); VarStore store = new VarStore()) {
      store.root().zeros("model.norm.weight", DType.BF16, 8);
      LoadException refused = assertThrows(LoadException.class,
          () -> store.load(checkpoint, LoadOptions.defaults().partial()));
      assertTrue(refused.getMessage().contains("bitsandbytes"), refused.getMessage());
      assertFalse(store.variable("model.norm.weight").isLoaded());
    }
  }

  @Test
  void unsupportedSettingsAreRefusedNamingThem() throws IOException {
    List<List<String>> cases = List.of(
        List.of("gptq-v1", "\"bits\": 4", "\"bits\": 3", "3 bits"),
        List.of("gptq-v1", "\"checkpoint_format\": \"gptq\"", "\"checkpoint_format\": \"marlin\"", "marlin"),
        List.of("awq-gemm", "\"version\": \"gemm\"", "\"version\": \"gemv\"", "gemv"),
        List.of("compressed-int4", "\"format\": \"pack-quantized\"", "\"format\": \"marlin-24\"", "marlin-24"));
    int i = 0;
    for (List<String> c : cases) {
      Path copy = QuantizedFixtures.copy(c.get(0), dir.resolve("c" + i++), UnaryOperator.identity(),
          config -> {
            assertTrue(config.contains(c.get(1)), c.get(1));
            return config.replace(c.get(1), c.get(2));
          });
      CheckpointException e = recognitionFails(copy);
      assertEquals(Reason.UNSUPPORTED_QUANTIZATION, e.reason(), e.getMessage());
      assertTrue(e.getMessage().contains(c.get(3)), e.getMessage());
    }
  }

  @Test
  void malformedConfigJsonIsAnErrorNamingTheFile() throws IOException {
    Path copy = QuantizedFixtures.copy("gptq-v1", dir.resolve("c"), UnaryOperator.identity(), c -> c.substring(0, 40));
    CheckpointException e = recognitionFails(copy);
    assertEquals(Reason.INVALID_QUANTIZATION_CONFIG, e.reason());
    assertEquals(copy.resolve("config.json"), e.file().orElseThrow());
  }

  @Test
  void aV1ZeroPointStoredAsFifteenIsAnErrorNamingTheTensor() throws IOException {
    Path copy = QuantizedFixtures.copy("gptq-v1", dir.resolve("c"),
        t -> QuantizedFixtures.withInt(t, O_PROJ + "qzeros", 0, 0x7777777F), UnaryOperator.identity());
    try (Checkpoint checkpoint = Checkpoint.open(copy); VarStore store = new VarStore()) {
      store.root().zeros(O_PROJ + "weight", DType.F32, 16, 64);
      LoadException e = assertThrows(LoadException.class, () -> store.load(checkpoint, LoadOptions.defaults().partial()));
      SafeTensorsException cause = findCause(e, SafeTensorsException.class);
      assertEquals(Reason.INVALID_QUANTIZED_VALUE, cause.reason());
      assertEquals(O_PROJ + "qzeros", cause.tensor().orElseThrow());
      assertTrue(e.getMessage().contains(copy.resolve("model.safetensors").toString()), e.getMessage());
      assertTrue(e.getMessage().contains(O_PROJ + "qzeros"), e.getMessage());
      assertFalse(store.variable(O_PROJ + "weight").isLoaded());
    }
  }

  @Test
  void aGroupIndexOutOfRangeIsAnErrorNamingTheTensor() throws IOException {
    Path copy = QuantizedFixtures.copy("gptq-v2-desc-act", dir.resolve("c"),
        t -> QuantizedFixtures.withInt(t, O_PROJ + "g_idx", 5, 4), UnaryOperator.identity());   // 4 groups: 0..3
    try (Checkpoint checkpoint = Checkpoint.open(copy); VarStore store = new VarStore()) {
      store.root().zeros(O_PROJ + "weight", DType.BF16, 16, 64);
      LoadException e = assertThrows(LoadException.class, () -> store.load(checkpoint, LoadOptions.defaults().partial()));
      SafeTensorsException cause = findCause(e, SafeTensorsException.class);
      assertEquals(Reason.INVALID_QUANTIZED_VALUE, cause.reason());
      assertEquals(O_PROJ + "g_idx", cause.tensor().orElseThrow());
      assertTrue(cause.getMessage().contains("g_idx[5] is 4"), cause.getMessage());
    }
  }

  @Test
  void aGroupIndexThatDisagreesWithTheGroupSizeWithoutDescActIsAnError() throws IOException {
    Path copy = QuantizedFixtures.copy("gptq-v1", dir.resolve("c"),
        t -> QuantizedFixtures.withInt(t, O_PROJ + "g_idx", 0, 3), UnaryOperator.identity());
    try (Checkpoint checkpoint = Checkpoint.open(copy); VarStore store = new VarStore()) {
      store.root().zeros(O_PROJ + "weight", DType.BF16, 16, 64);
      LoadException e = assertThrows(LoadException.class, () -> store.load(checkpoint, LoadOptions.defaults().partial()));
      assertEquals(Reason.INVALID_QUANTIZED_VALUE, findCause(e, SafeTensorsException.class).reason());
      assertTrue(e.getMessage().contains("desc_act"), e.getMessage());
    }
  }

  @Test
  void aLargeWeightLoadsInChunksOnSeveralThreadsWithProgress() throws IOException {
    // 4100 x 2050 FP8 in 128 x 128 blocks (ragged both ways): about 32 MiB of F32, four chunks.
    long rows = 4100;
    long columns = 2050;
    Random random = new Random(7);
    Arena arena = Arena.ofAuto();
    MemorySegment codes = arena.allocate(rows * columns);
    for (long i = 0; i < codes.byteSize(); i++) {
      int code = random.nextInt(256);
      codes.set(ValueLayout.JAVA_BYTE, i, (byte) ((code & 0x7F) == 0x7F ? 0x7E : code));
    }
    MemorySegment scales = arena.allocate(33 * 17 * 4);
    for (long i = 0; i < 33 * 17; i++) {
      scales.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, 1e-3f + random.nextFloat() * 1e-2f);
    }
    Path model = Files.createDirectories(dir.resolve("large"));
    Files.writeString(model.resolve("config.json"),
        "{\"quantization_config\": {\"quant_method\": \"fp8\", \"weight_block_size\": [128, 128]}}");
    dev.loadstone.safetensors.SafeTensorsWriter.write(model.resolve("model.safetensors"), Map.of(), List.of(
        TensorView.of("w.weight", DType.F8_E4M3, new long[] {rows, columns}, codes),
        TensorView.of("w.weight_scale_inv", DType.F32, new long[] {33, 17}, scales)));
    AtomicLong done = new AtomicLong();
    AtomicLong total = new AtomicLong();
    try (Checkpoint checkpoint = Checkpoint.open(model); VarStore store = new VarStore()) {
      store.root().zeros("w.weight", DType.F32, rows, columns);
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().withThreads(2)
          .withProgress((bytes, of, tensor) -> {
            done.accumulateAndGet(bytes, Math::max);
            total.set(of);
          }));
      assertEquals(List.of("w.weight"), report.loaded());
      long stored = rows * columns + 33 * 17 * 4;
      assertEquals(stored, report.bytesRead());
      assertEquals(rows * columns * 4, report.bytesWritten());
      assertEquals(stored, total.get());
      assertEquals(stored, done.get());
      MemorySegment whole = arena.allocate(rows * columns * 4);
      Quantization.of(checkpoint).weight("w.weight").orElseThrow().dequantize(0, rows, whole, 0, DType.F32);
      assertEquals(-1L, whole.mismatch(store.variable("w.weight").segment()));
      // Spot checks against the definition: code * scale of the element's block.
      for (long[] at : new long[][] {{0, 0}, {127, 128}, {4099, 2049}, {4096, 2048}, {2000, 1000}}) {
        long i = at[0] * columns + at[1];
        double expected = DType.F8_E4M3.decodeDouble(codes.get(ValueLayout.JAVA_BYTE, i) & 0xFF)
            * scales.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, (at[0] / 128) * 17 + at[1] / 128);
        assertEquals((float) expected, store.variable("w.weight").view().getFloat(i), "element " + at[0] + ", " + at[1]);
      }
    }
  }
}
