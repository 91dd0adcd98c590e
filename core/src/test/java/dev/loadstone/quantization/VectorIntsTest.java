package dev.loadstone.quantization;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Vector unpacking gives each integer of packed words as the packing defines it (slot
 * {@code c % perWord} of word {@code c / perWord}, least significant bits first), for every
 * width, with words side by side or a stride apart, and leaves only a remainder to the caller.
 */
class VectorIntsTest {

  @ParameterizedTest(name = "{0} bits, stride {1}")
  @CsvSource({"2, 1", "2, 5", "4, 1", "4, 3", "8, 1", "8, 9"})
  void everyIntegerIsItsSlotOfItsWord(int bits, int stride) {
    assertTrue(RowEncoder.VECTOR_PRODUCTS, "the tests run with the Vector API module");
    SplittableRandom random = new SplittableRandom(bits * 31L + stride);
    int perWord = 32 / bits;
    int count = 1000 * perWord / 8 + 3 * perWord;   // not a whole number of vectors
    int wordCount = (count + perWord - 1) / perWord;
    int first = 2;
    int[] words = new int[first + wordCount * stride];
    for (int i = 0; i < words.length; i++) {
      words[i] = random.nextInt();
    }
    int[] into = new int[count];
    int done = VectorInts.unpack(words, first, stride, bits, into, count);
    if (jdk.incubator.vector.IntVector.SPECIES_PREFERRED.length() % perWord != 0) {
      assertEquals(0, done, "a vector that does not hold whole words leaves everything to the caller");
      return;
    }
    assertTrue(done > count - 64 && done <= count, "whole vectors unpacked: " + done + " of " + count);
    for (int c = 0; c < done; c++) {
      int expected = (words[first + (c / perWord) * stride] >>> (bits * (c % perWord))) & ((1 << bits) - 1);
      assertEquals(expected, into[c], "integer " + c);
    }
  }
}
