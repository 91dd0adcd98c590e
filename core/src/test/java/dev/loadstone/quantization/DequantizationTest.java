package dev.loadstone.quantization;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.VarStore;
import dev.loadstone.store.Variable;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every dequantized element of every fixture, against the values the fixture generator computed
 * in float64 from the scheme's definition: exactly equal in F64, and in F32, F16 and BF16 the
 * representable value nearest to it (ties to even), checked here by comparing with the
 * neighbouring values rather than by rounding the same way the loader does.
 */
class DequantizationTest {

  static Stream<Arguments> casesAndDTypes() {
    return QuantizedFixtures.CASES.keySet().stream().sorted()
        .flatMap(c -> Stream.of(DType.F64, DType.F32, DType.F16, DType.BF16).map(d -> Arguments.of(c, d)));
  }

  static Stream<String> cases() {
    return QuantizedFixtures.CASES.keySet().stream().sorted();
  }

  @ParameterizedTest(name = "{0} into {1}")
  @MethodSource("casesAndDTypes")
  void loadDequantizesEveryWeightIntoVariablesOfItsLogicalShape(String name, DType dtype) throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(QuantizedFixtures.dir(name));
         SafeTensors expected = QuantizedFixtures.expected(name);
         VarStore store = new VarStore()) {
      Set<String> plain = new HashSet<>(checkpoint.names());
      Quantization quantization = Quantization.of(checkpoint);
      for (QuantizedWeight weight : quantization.weights()) {
        weight.tensors().forEach(t -> plain.remove(t.name()));
      }
      for (TensorView values : expected.tensors()) {
        store.root().zeros(values.name(), dtype, values.shape());
      }
      for (String tensor : plain) {
        TensorView stored = checkpoint.tensor(tensor);
        store.root().zeros(tensor, stored.dtype(), stored.shape());
      }

      LoadReport report = store.load(checkpoint, LoadOptions.defaults().withThreads(2));

      assertTrue(report.isComplete(), report.summary());
      assertEquals(List.of(), report.unexpected(), "companions are consumed, not unexpected");
      assertEquals(expected.names().stream().sorted().toList(),
          report.dequantized().stream().map(LoadReport.Dequantized::variable).sorted().toList());
      for (LoadReport.Dequantized d : report.dequantized()) {
        assertTrue(QuantizedFixtures.CASES.get(name).contains(d.scheme()), d.scheme());
        assertEquals(dtype, d.to());
      }
      for (TensorView values : expected.tensors()) {
        assertNearest(values, store.variable(values.name()).view(), dtype);
      }
      for (String tensor : plain) {
        Variable variable = store.variable(tensor);
        assertEquals(-1L, checkpoint.tensor(tensor).segment().mismatch(variable.segment()), tensor + " loads as it is");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void anyRangeOfRowsDequantizesAsTheWholeDoes(String name) throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(QuantizedFixtures.dir(name));
         SafeTensors expected = QuantizedFixtures.expected(name);
         Arena arena = Arena.ofConfined()) {
      Quantization quantization = Quantization.of(checkpoint);
      for (TensorView values : expected.tensors()) {
        QuantizedWeight weight = quantization.weight(values.name()).orElseThrow();
        long rows = weight.shape()[0];
        long columns = weight.shape()[1];
        // Ranges that start and end inside a packed word of rows (8 per int32) and a block.
        for (long first = 0; first < rows; first += 3) {
          for (long count : new long[] {1, 2, 5, rows - first}) {
            if (first + count > rows) {
              continue;
            }
            MemorySegment out = arena.allocate(count * columns * 8 + 16);
            weight.dequantize(first, count, out, 16, DType.F64);
            for (long r = 0; r < count; r++) {
              for (long c = 0; c < columns; c++) {
                double want = values.getDouble((first + r) * columns + c);
                double got = out.get(java.lang.foreign.ValueLayout.JAVA_DOUBLE_UNALIGNED, 16 + 8 * (r * columns + c));
                if (Double.doubleToRawLongBits(want) != Double.doubleToRawLongBits(got)) {
                  fail(values.name() + "[" + (first + r) + ", " + c + "] from rows [" + first + ", " + (first + count)
                      + "): expected " + want + ", got " + got);
                }
              }
            }
          }
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void recognitionGivesEachWeightItsLogicalShapeDTypeAndScheme(String name) throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(QuantizedFixtures.dir(name));
         SafeTensors expected = QuantizedFixtures.expected(name)) {
      Quantization quantization = Quantization.of(checkpoint);
      assertEquals(QuantizedFixtures.CASES.get(name), quantization.scheme().orElseThrow());
      assertEquals(expected.names().stream().sorted().toList(),
          quantization.weights().stream().map(QuantizedWeight::name).sorted().toList());
      DType model = name.startsWith("gptq") || name.startsWith("awq") ? DType.F16 : DType.BF16;   // torch_dtype
      for (QuantizedWeight weight : quantization.weights()) {
        assertTrue(Arrays.equals(expected.tensor(weight.name()).shape(), weight.shape()), weight.toString());
        assertEquals(model, weight.dtype(), weight.toString());
        assertFalse(weight.problem().isPresent(), weight.toString());
        for (TensorView part : weight.tensors()) {
          assertEquals(weight, quantization.holding(part.name()).orElseThrow());
        }
      }
    }
  }

  /**
   * Asserts that every element of {@code actual} ({@code dtype}) is the {@code dtype} value
   * nearest to the exact value in {@code exact} (F64), ties to the even encoding.
   */
  static void assertNearest(TensorView exact, TensorView actual, DType dtype) {
    assertTrue(Arrays.equals(exact.shape(), actual.shape()), exact.name());
    for (long i = 0; i < exact.elementCount(); i++) {
      double want = exact.getDouble(i);
      long bits = actual.getBits(i);
      double got = actual.getDouble(i);
      boolean ok;
      if (dtype == DType.F64) {
        ok = Double.doubleToRawLongBits(want) == bits;
      } else {
        double below = Math.abs(neighbour(dtype, bits, -1) - want);
        double above = Math.abs(neighbour(dtype, bits, +1) - want);
        double error = Math.abs(got - want);
        boolean tie = error != 0 && (error == below || error == above);
        ok = error <= below && error <= above && (!tie || (bits & 1) == 0);
      }
      if (!ok) {
        fail(exact.name() + "[" + i + "] as " + dtype + ": exact " + want + ", got " + got
            + " (bits 0x" + Long.toHexString(bits) + ")");
      }
    }
  }

  /** The value of the encoding next to {@code bits} in magnitude order ({@code step} -1: towards -inf). */
  private static double neighbour(DType dtype, long bits, int step) {
    int width = dtype.bits();
    long sign = 1L << (width - 1);
    boolean negative = (bits & sign) != 0;
    long magnitude = bits & (sign - 1);
    long next;
    if (magnitude == 0) {
      next = step > 0 ? 1 : sign | 1;   // the smallest subnormals around zero
    } else if (negative == (step < 0)) {
      next = bits + 1;                   // away from zero
    } else {
      next = bits - 1;                   // towards zero
    }
    double result = dtype.decodeDouble(next & ((1L << width) - 1));
    return Double.isNaN(result) ? (step > 0 ? Double.POSITIVE_INFINITY : Double.NEGATIVE_INFINITY) : result;
  }
}
