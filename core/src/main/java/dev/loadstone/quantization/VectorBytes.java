package dev.loadstone.quantization;

import dev.loadstone.safetensors.DType;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Decodes 8-bit stored values (F8_E4M3, F8_E5M2, I8) to floats on whole vectors
 * ({@code jdk.incubator.vector}), exactly, by integer arithmetic on the bits rather than a table
 * look-up per element; used only when that module is present at run time (loading this class
 * needs it, so nothing may touch it unless {@link RowEncoder#VECTOR_PRODUCTS} is true). No
 * intermediate is a subnormal float, which some CPUs compute slowly: an 8-bit subnormal is its
 * integer mantissa times a power of two. A vector holding a NaN or infinity is left to the
 * caller's table.
 */
final class VectorBytes {
  private VectorBytes() {}

  /** Lazily initialized: touching these constants needs the module. */
  private static final class Species {
    static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
    /** As many bytes as {@link #FLOATS} has lanes. */
    static final VectorSpecies<Byte> BYTES = ByteVector.SPECIES_PREFERRED.withShape(
        VectorShape.forBitSize(Math.max(64, FLOATS.vectorBitSize() / 4)));
  }

  /** Whether {@link #decode} decodes {@code dtype}. */
  static boolean decodes(DType dtype) {
    return dtype == DType.F8_E4M3 || dtype == DType.F8_E5M2 || dtype == DType.I8;
  }

  /**
   * Writes the values of {@code stored[0, count)} (raw {@code dtype} bits) as floats into
   * {@code into}.
   *
   * @return how many leading elements were written (the rest, and a vector with a NaN or an
   *     infinity, are the caller's)
   */
  static int decode(DType dtype, byte[] stored, float[] into, int count) {
    VectorSpecies<Byte> bytes = Species.BYTES;
    if (bytes.length() != Species.FLOATS.length()) {
      return 0;   // a vector shape this kernel was not written for
    }
    int lanes = bytes.length();
    int bound = Species.FLOATS.loopBound(count);
    // Mantissa bits; exponent bias difference to float's; the first exponent field of a NaN or infinity.
    int mantissaBits = dtype == DType.F8_E4M3 ? 3 : 2;
    int rebias = dtype == DType.F8_E4M3 ? 127 - 7 : 127 - 15;
    float subnormalUnit = dtype == DType.F8_E4M3 ? 0x1p-9f : 0x1p-16f;
    int firstSpecial = dtype == DType.F8_E4M3 ? 0x7F : 0x7C;
    int i = 0;
    for (; i < bound; i += lanes) {
      IntVector raw = (IntVector) ByteVector.fromArray(bytes, stored, i).convertShape(VectorOperators.B2I, Species.INTS, 0);
      if (dtype == DType.I8) {
        raw.convert(VectorOperators.I2F, 0).reinterpretAsFloats().intoArray(into, i);
        continue;
      }
      IntVector magnitude = raw.and(0x7F);
      if (magnitude.compare(VectorOperators.GE, firstSpecial).anyTrue()) {
        break;
      }
      // Normal: the bits moved into float's fields and the exponent re-biased; subnormal (exponent
      // field zero, magnitude below 1 << mantissaBits): the mantissa times the smallest step.
      IntVector normal = magnitude.lanewise(VectorOperators.LSHL, 23 - mantissaBits).add(rebias << 23);
      IntVector subnormal = magnitude.convert(VectorOperators.I2F, 0).reinterpretAsFloats().mul(subnormalUnit)
          .reinterpretAsInts();
      VectorMask<Integer> small = magnitude.compare(VectorOperators.LT, 1 << mantissaBits);
      IntVector sign = raw.and(0x80).lanewise(VectorOperators.LSHL, 24);
      normal.blend(subnormal, small).or(sign).reinterpretAsFloats().intoArray(into, i);
    }
    return i;
  }
}
