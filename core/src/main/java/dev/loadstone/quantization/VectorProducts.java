package dev.loadstone.quantization;

import jdk.incubator.vector.FloatVector;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link RowEncoder#productRoundedToOdd} on whole vectors ({@code jdk.incubator.vector}), used
 * only when that module is present at run time: loading this class needs it, so nothing may
 * touch it unless {@link RowEncoder#VECTOR_PRODUCTS} is true. A vector with a product the fast
 * rule does not cover (tiny, huge or NaN) is done element by element by the scalar rule.
 */
final class VectorProducts {
  private VectorProducts() {}

  /** Lazily initialized: touching these constants needs the module. */
  private static final class Species {
    static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
    /** As many shorts as {@link #FLOATS} has lanes. */
    static final VectorSpecies<Short> SHORTS = ShortVector.SPECIES_PREFERRED.withShape(
        VectorShape.forBitSize(FLOATS.vectorBitSize() / 2));
  }

  /**
   * Writes {@code quantized[i] * scales[i]} rounded to odd into {@code into[i]}.
   *
   * @return how many elements were written (a multiple of the lane count); the caller does the
   *     rest
   */
  static int roundedToOdd(float[] quantized, float[] scales, boolean ordinary, float[] into, int count) {
    VectorSpecies<Float> species = Species.FLOATS;
    int bound = species.loopBound(count);
    for (int i = 0; i < bound; i += species.length()) {
      FloatVector q = FloatVector.fromArray(species, quantized, i);
      FloatVector s = FloatVector.fromArray(species, scales, i);
      IntVector odd = roundedToOdd(q, s, ordinary);
      if (odd == null) {
        for (int k = i; k < i + species.length(); k++) {
          into[k] = RowEncoder.productRoundedToOdd(quantized[k], scales[k]);
        }
      } else {
        odd.reinterpretAsFloats().intoArray(into, i);
      }
    }
    return bound;
  }

  /**
   * Writes {@code quantized[i] * scales[i]} as BF16, rounded once from the exact product, at
   * {@code offset + 2 i} bytes into {@code target} (memory of the process, not a file mapping).
   *
   * @return how many elements were written (a multiple of the lane count); the caller does the
   *     rest
   */
  static int bfloat16(float[] quantized, float[] scales, boolean ordinary, MemorySegment target, long offset, int count) {
    VectorSpecies<Float> species = Species.FLOATS;
    int bound = species.loopBound(count);
    for (int i = 0; i < bound; i += species.length()) {
      FloatVector q = FloatVector.fromArray(species, quantized, i);
      FloatVector s = FloatVector.fromArray(species, scales, i);
      IntVector odd = roundedToOdd(q, s, ordinary);
      if (odd == null) {
        for (int k = i; k < i + species.length(); k++) {
          float value = RowEncoder.productRoundedToOdd(quantized[k], scales[k]);
          target.set(RowEncoder.SHORT, offset + 2L * k, RowEncoder.bfloat16(value));
        }
        continue;
      }
      // Round to nearest even on the upper half (no NaN here: the fast rule covers finite products).
      IntVector rounded = odd.add(odd.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF)
          .lanewise(VectorOperators.LSHR, 16);
      rounded.convertShape(VectorOperators.I2S, Species.SHORTS, 0)
          .intoMemorySegment(target, offset + 2L * i, ByteOrder.LITTLE_ENDIAN);
    }
    return bound;
  }

  /**
   * The products rounded to odd, as float bits; null where the fast rule does not cover a lane
   * (never for {@code ordinary} factors, which it covers without a check).
   */
  private static IntVector roundedToOdd(FloatVector q, FloatVector s, boolean ordinary) {
    FloatVector product = q.mul(s);
    if (!ordinary && !covered(q, s, product)) {
      return null;
    }
    FloatVector error = q.fma(s, product.neg());
    IntVector bits = product.reinterpretAsInts();
    IntVector errorBits = error.reinterpretAsInts();
    VectorMask<Integer> inexactEven = error.compare(VectorOperators.NE, 0f).cast(bits.species())
        .and(bits.and(1).compare(VectorOperators.EQ, 0));
    // +1 (away from zero) where error and product share a sign, else -1.
    IntVector step = errorBits.lanewise(VectorOperators.XOR, bits).lanewise(VectorOperators.ASHR, 31).or(1);
    return bits.add(step, inexactEven);
  }

  /** Whether the fast rule covers every lane: not tiny, huge or NaN products, but exact zeros. */
  private static boolean covered(FloatVector q, FloatVector s, FloatVector product) {
    FloatVector magnitude = product.abs();
    return magnitude.compare(VectorOperators.GE, RowEncoder.SMALLEST_EXACT_ERROR_PRODUCT)
        .and(magnitude.compare(VectorOperators.LE, Float.MAX_VALUE))
        .or(q.compare(VectorOperators.EQ, 0f).or(s.compare(VectorOperators.EQ, 0f))
            .and(product.compare(VectorOperators.EQ, 0f)))   // exact zeros
        .allTrue();
  }
}
