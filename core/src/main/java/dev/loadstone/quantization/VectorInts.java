package dev.loadstone.quantization;

import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Unpacks integers packed into int32 words, least significant bits first, on whole vectors
 * ({@code jdk.incubator.vector}): each lane gathers its word and shifts its slot out. Used only
 * when that module is present at run time (loading this class needs it, so nothing may touch it
 * unless {@link RowEncoder#VECTOR_PRODUCTS} is true).
 */
final class VectorInts {
  private VectorInts() {}

  /** Lazily initialized: touching these constants needs the module. */
  private static final class Species {
    static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
  }

  /**
   * Writes integer {@code c} of {@code bits} bits, {@code (words[first + (c / perWord) * stride]
   * >>> (bits * (c % perWord))) & mask} with {@code perWord = 32 / bits}, into {@code into[c]}
   * for the leading {@code c < count}.
   *
   * @return how many leading integers were written (whole vectors; none where a vector does not
   *     hold whole words); the caller unpacks the rest
   */
  static int unpack(int[] words, int first, int stride, int bits, int[] into, int count) {
    VectorSpecies<Integer> species = Species.INTS;
    int lanes = species.length();
    int perWord = 32 / bits;
    if (lanes % perWord != 0) {
      return 0;
    }
    int[] wordOfLane = new int[lanes];
    int[] shiftOfLane = new int[lanes];
    for (int j = 0; j < lanes; j++) {
      wordOfLane[j] = (j / perWord) * stride;
      shiftOfLane[j] = bits * (j % perWord);
    }
    IntVector shifts = IntVector.fromArray(species, shiftOfLane, 0);
    int mask = (1 << bits) - 1;
    int wordsPerVector = lanes / perWord;
    int bound = species.loopBound(count);
    if (wordsPerVector <= 2) {
      // One or two words a vector: broadcast them (a gather would fetch each word per lane).
      VectorMask<Integer> secondWord = species.indexInRange(perWord, lanes).not();
      for (int c = 0, word = first; c < bound; c += lanes, word += wordsPerVector * stride) {
        IntVector v = IntVector.broadcast(species, words[word]);
        if (wordsPerVector == 2) {
          v = v.blend(words[word + stride], secondWord);
        }
        v.lanewise(VectorOperators.LSHR, shifts).and(mask).intoArray(into, c);
      }
      return bound;
    }
    for (int c = 0, word = first; c < bound; c += lanes, word += wordsPerVector * stride) {
      IntVector.fromArray(species, words, word, wordOfLane, 0)
          .lanewise(VectorOperators.LSHR, shifts).and(mask).intoArray(into, c);
    }
    return bound;
  }
}
