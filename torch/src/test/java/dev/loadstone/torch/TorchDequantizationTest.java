package dev.loadstone.torch;

import static dev.loadstone.torch.Fixtures.assertSameValues;
import static dev.loadstone.torch.Fixtures.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.VarStore;
import dev.loadstone.store.Variable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The libtorch backend dequantizes quantized checkpoints as the Java one does: core's quantized
 * fixtures (made by an independent float64 reference), loaded into libtorch tensors of their
 * logical shape, hold exactly the values {@link VarStore} computes (which core's
 * {@code DequantizationTest} checks element by element against that reference).
 */
class TorchDequantizationTest {
  private static final Path FIXTURES = Path.of("../core/src/test/resources/dev/loadstone/quantization");

  @ParameterizedTest
  @ValueSource(strings = {"fp8-block", "compressed-fp8", "gptq-v1", "gptq-v2-desc-act", "awq-gemm", "compressed-int4"})
  void fromCheckpointDequantizesIntoTensorsOfTheLogicalShape(String fixture) throws IOException {
    for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
      LoadOptions options = LoadOptions.defaults().withCreateDType(dtype).withThreads(2);
      try (Checkpoint checkpoint = Checkpoint.open(FIXTURES.resolve(fixture));
           VarStore expected = VarStore.fromCheckpoint(checkpoint, options);
           Module module = TorchLoader.fromCheckpoint(checkpoint, options, "cpu")) {
        Map<String, Tensor> tensors = TorchModules.namedTensors(module);
        assertEquals(expected.variables().size(), tensors.size(), fixture + ": one tensor per variable");
        int dequantized = 0;
        for (Variable variable : expected.variables()) {
          Tensor tensor = tensors.get(variable.name());
          assertArrayEquals(variable.shape(), TorchTensors.shape(tensor), variable.name());
          assertEquals(variable.dtype(), TorchTensors.dtype(tensor.scalar_type()).orElseThrow(), variable.name());
          assertSameValues(values(variable.view()), values(tensor), fixture + " " + variable.name() + " as " + dtype);
          dequantized += variable.name().endsWith("weight") ? 1 : 0;
        }
        assertTrue(dequantized > 0, fixture + ": has weights");
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"fp8-block", "gptq-v1"})
  void aLoadReportsEachDequantizedWeight(String fixture) throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(FIXTURES.resolve(fixture));
         VarStore expected = VarStore.fromCheckpoint(checkpoint, LoadOptions.defaults());
         Module module = TorchModules.create(checkpoint, LoadOptions.defaults(), "cpu")) {
      LoadReport report = TorchLoader.load(module, checkpoint, LoadOptions.defaults());
      assertTrue(report.isComplete(), report.summary());
      assertFalse(report.dequantized().isEmpty(), report.summary());
      assertEquals(expected.load(checkpoint, LoadOptions.defaults()).dequantized().stream()
          .map(LoadReport.Dequantized::toString).toList(),
          report.dequantized().stream().map(LoadReport.Dequantized::toString).toList());
    }
  }
}
