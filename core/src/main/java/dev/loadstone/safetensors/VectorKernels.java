package dev.loadstone.safetensors;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Conversion loops written with the Vector API ({@code jdk.incubator.vector}), used only when
 * that module is present at run time (the launcher adds it; otherwise {@link ConvertingCopy} keeps
 * its scalar loops). Loading this class needs the module (the verifier resolves the vector
 * types), so nothing may touch it unless {@link ConvertingCopy#VECTOR_KERNELS} is true.
 */
final class VectorKernels {
  private VectorKernels() {}

  /** Lazily initialized: touching these constants needs the module. */
  private static final class Species {
    static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
    static final int LANES = INTS.length();
    /** Interleaves lanes 0..n/2-1 of two vectors: a0 b0 a1 b1 ... */
    static final VectorShuffle<Integer> ZIP_LOW = zip(0);
    /** Interleaves lanes n/2..n-1 of two vectors. */
    static final VectorShuffle<Integer> ZIP_HIGH = zip(LANES / 2);

    private static VectorShuffle<Integer> zip(int from) {
      int[] indices = new int[LANES];
      for (int k = 0; k < LANES / 2; k++) {
        indices[2 * k] = from + k;
        indices[2 * k + 1] = LANES + from + k;
      }
      return VectorShuffle.fromArray(INTS, indices, 0);
    }
  }

  /**
   * BF16 to F32 (see {@link #bf16ToF32Direct}); a file mapping is read through {@link FaultSafeStaging}.
   *
   * @return how many elements were converted (a multiple of twice the lane count); the caller
   *     converts the rest
   */
  static long bf16ToF32(MemorySegment source, long sourceOffset, MemorySegment target, long targetOffset, long count) {
    return FaultSafeStaging.convert(source, sourceOffset, 2, target, targetOffset, 4, count, VectorKernels::bf16ToF32Direct);
  }

  /**
   * BF16 to F32 on memory that cannot fault: each int of the source holds two bfloat16
   * (little-endian: element 2k in the low half), so shifting left by 16 gives the even elements
   * as floats and masking the low half gives the odd ones; a two-vector shuffle interleaves them
   * back into order.
   *
   * @return how many elements were converted (a multiple of twice the lane count)
   */
  private static long bf16ToF32Direct(MemorySegment source, long sourceOffset, MemorySegment target, long targetOffset, long count) {
    VectorSpecies<Integer> ints = Species.INTS;
    int perStep = 2 * Species.LANES;
    long bound = count - count % perStep;
    for (long i = 0; i < bound; i += perStep) {
      IntVector pairs = IntVector.fromMemorySegment(ints, source, sourceOffset + 2 * i, ByteOrder.LITTLE_ENDIAN);
      IntVector even = pairs.lanewise(VectorOperators.LSHL, 16);
      IntVector odd = pairs.and(0xFFFF_0000);
      long out = targetOffset + 4 * i;
      even.rearrange(Species.ZIP_LOW, odd).intoMemorySegment(target, out, ByteOrder.LITTLE_ENDIAN);
      even.rearrange(Species.ZIP_HIGH, odd).intoMemorySegment(target, out + 4L * Species.LANES, ByteOrder.LITTLE_ENDIAN);
    }
    return bound;
  }
}
