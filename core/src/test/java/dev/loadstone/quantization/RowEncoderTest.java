package dev.loadstone.quantization;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.loadstone.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** Values are rounded once, from the exact double, not twice (through a float rounded to nearest). */
class RowEncoderTest {

  private static double written(double value, DType dtype) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(8);
      new RowEncoder(dtype, 1).write(new double[] {value}, 1, out, 0);
      return dtype.decodeDouble(dtype == DType.F32 ? out.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0)
          : out.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 0));
    }
  }

  @Test
  void aValueJustAboveAHalfwayPointRoundsUpThoughItsFloatIsTheHalfwayPoint() {
    // 1 + 2^-8 is halfway between the BF16 values 1 and 1 + 2^-7; the 2^-30 above it is lost in
    // a float (which then rounds to even: 1), but not in the exact value.
    double value = 1 + 0x1p-8 + 0x1p-30;
    assertEquals(1 + 0x1p-7, written(value, DType.BF16));
    assertEquals(1 + 0x1p-7, written(-value, DType.BF16) * -1);
    // F16: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
    assertEquals(1 + 0x1p-10, written(1 + 0x1p-11 + 0x1p-40, DType.F16));
  }

  @Test
  void exactHalfwayPointsGoToEven() {
    assertEquals(1.0, written(1 + 0x1p-8, DType.BF16));
    assertEquals(1 + 0x1p-6, written(1 + 0x1p-7 + 0x1p-8, DType.BF16));
    assertEquals((float) (1 + 0x1p-24), written(1 + 0x1p-24, DType.F32));
  }
}
