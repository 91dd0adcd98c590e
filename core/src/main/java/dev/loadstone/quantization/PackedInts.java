package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.TensorView;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A weight of 2-, 4- or 8-bit unsigned integers packed into int32 words, least significant
 * bits first, with a scale and a zero point per (output row, group of input columns): value
 * {@code [r, c]} is {@code (q[r, c] - zero[r, g]) * scale[r, g]} with {@code g} the group of
 * column {@code c} ({@link GroupIndex}). The three layouts in use differ in which dimension is
 * packed and in what order ({@link Layout}), and in how zero points are stored ({@link Zeros}).
 */
final class PackedInts implements Dequantizer {

  /** How the integers lie in the words of the packed weight. */
  enum Layout {
    /** GPTQ's {@code qweight}: {@code [columns / perWord, rows]}, word {@code (c / perWord, r)}, slot {@code c % perWord}. */
    GPTQ,
    /**
     * AWQ's {@code qweight}: {@code [columns, rows / 8]}, word {@code (c, r / 8)}; within the
     * word, row {@code r % 8} is in slot {@code AWQ_SLOT[r % 8]} (the packer wrote rows in the
     * order 0, 2, 4, 6, 1, 3, 5, 7).
     */
    AWQ,
    /**
     * compressed-tensors' {@code weight_packed}: {@code [rows, ceil(columns / perWord)]}, word
     * {@code (r, c / perWord)}, slot {@code c % perWord}; the last word of a row padded with zeros.
     */
    COMPRESSED_TENSORS
  }

  /** How the zero points are stored. */
  enum Zeros {
    /** None: the integers are stored offset by {@code 2^(bits-1)} (compressed-tensors' symmetric). */
    MIDPOINT,
    /** GPTQ's {@code qzeros} {@code [groups, rows / perWord]}, each stored as zero - 1 (the original format). */
    GPTQ_MINUS_ONE,
    /** GPTQ's {@code qzeros} {@code [groups, rows / perWord]}, stored as they are ({@code gptq_v2}). */
    GPTQ,
    /** AWQ's {@code qzeros} {@code [groups, rows / 8]}, in AWQ's slot order. */
    AWQ,
    /** compressed-tensors' {@code weight_zero_point} packed along the rows: {@code [ceil(rows / perWord), groups]}. */
    COMPRESSED_TENSORS_PACKED,
    /** compressed-tensors' {@code weight_zero_point} as signed I8 {@code [rows, groups]}, relative to the midpoint. */
    COMPRESSED_TENSORS_SIGNED
  }

  /** The slot of row {@code r % 8} in an AWQ word: the inverse of the packing order 0, 2, 4, 6, 1, 3, 5, 7. */
  static final int[] AWQ_SLOT = {0, 4, 1, 5, 2, 6, 3, 7};

  private final int bits;
  private final int perWord;
  private final int mask;
  private final int columns;
  private final TensorView packed;
  private final Layout layout;
  private final TensorView scales;
  private final boolean scalesByGroup;
  private final Optional<TensorView> zeroTensor;
  private final Zeros zeros;
  private final GroupIndex groups;
  private final Path file;

  /**
   * @param scalesByGroup whether the scales are {@code [groups, rows]} (GPTQ, AWQ) rather than
   *     {@code [rows, groups]} (compressed-tensors)
   */
  PackedInts(int bits, int columns, TensorView packed, Layout layout, TensorView scales, boolean scalesByGroup,
      Optional<TensorView> zeroTensor, Zeros zeros, GroupIndex groups, Path file) {
    this.bits = bits;
    this.perWord = 32 / bits;
    this.mask = (1 << bits) - 1;
    this.columns = columns;
    this.packed = packed;
    this.layout = layout;
    this.scales = scales;
    this.scalesByGroup = scalesByGroup;
    this.zeroTensor = zeroTensor;
    this.zeros = zeros;
    this.groups = groups;
    this.file = file;
  }

  @Override
  public void dequantize(long firstRow, int rows, RowSink sink) {
    int[] groupOf = groups.groupOfColumn();
    int[] runEnds = groups.runEnds();
    int groupCount = groups.groups();
    float[] scale = stageScales(firstRow, rows, groupCount);
    // Differences of integers below 2^9: ordinary values whenever the scales are.
    boolean ordinary = RowEncoder.ordinaryScales(scale, scale.length);
    int[] zero = stageZeros(firstRow, rows, groupCount);
    int[] words = stageWords(firstRow, rows);
    int[] q = new int[columns];
    float[] quantized = new float[columns];
    float[] scaleOfColumn = new float[columns];
    for (int r = 0; r < rows; r++) {
      unpackRow(words, firstRow, r, rows, q);
      int base = r * groupCount;
      int start = 0;
      for (int end : runEnds) {   // a run of columns of one group: one zero point, one scale
        int g = base + groupOf[start];
        int z = zero[g];
        for (int c = start; c < end; c++) {
          quantized[c] = q[c] - z;   // a difference of small integers: exact
        }
        java.util.Arrays.fill(scaleOfColumn, start, end, scale[g]);
        start = end;
      }
      sink.row(firstRow + r, quantized, scaleOfColumn, ordinary);
    }
  }

  /** The scales of the rows, {@code [rows][groups]}. */
  private float[] stageScales(long firstRow, int rows, int groupCount) {
    float[] staged = new float[rows * groupCount];
    if (!scalesByGroup) {
      Staging.floats(scales, firstRow * groupCount, staged, 0, rows * groupCount);
      return staged;
    }
    long allRows = scales.dim(1);
    float[] line = new float[rows];
    for (int g = 0; g < groupCount; g++) {
      Staging.floats(scales, g * allRows + firstRow, line, 0, rows);
      for (int r = 0; r < rows; r++) {
        staged[r * groupCount + g] = line[r];
      }
    }
    return staged;
  }

  /** The zero points of the rows, {@code [rows][groups]}, on the scale of the stored integers. */
  private int[] stageZeros(long firstRow, int rows, int groupCount) {
    int[] staged = new int[rows * groupCount];
    int midpoint = 1 << (bits - 1);
    switch (zeros) {
      case MIDPOINT -> java.util.Arrays.fill(staged, midpoint);
      case COMPRESSED_TENSORS_SIGNED -> {
        byte[] stored = new byte[rows * groupCount];
        Staging.bytes(zeroTensor.get(), firstRow * groupCount, stored, 0, rows * groupCount);
        for (int i = 0; i < stored.length; i++) {
          staged[i] = stored[i] + midpoint;
        }
      }
      case COMPRESSED_TENSORS_PACKED -> {
        long firstWordRow = firstRow / perWord;
        int wordRows = (int) ((firstRow + rows - 1) / perWord - firstWordRow + 1);
        int[] stored = new int[wordRows * groupCount];
        Staging.ints(zeroTensor.get(), firstWordRow * groupCount, stored, 0, stored.length);
        for (int r = 0; r < rows; r++) {
          long row = firstRow + r;
          int shift = bits * (int) (row % perWord);
          for (int g = 0; g < groupCount; g++) {
            staged[r * groupCount + g] = (stored[(int) (row / perWord - firstWordRow) * groupCount + g] >>> shift) & mask;
          }
        }
      }
      case GPTQ, GPTQ_MINUS_ONE, AWQ -> {
        TensorView tensor = zeroTensor.get();
        long wordsPerGroup = tensor.dim(1);
        long firstWord = firstRow / perWord;
        int wordCount = (int) ((firstRow + rows - 1) / perWord - firstWord + 1);
        int[] stored = new int[wordCount];
        for (int g = 0; g < groupCount; g++) {
          Staging.ints(tensor, g * wordsPerGroup + firstWord, stored, 0, wordCount);
          for (int r = 0; r < rows; r++) {
            long row = firstRow + r;
            int slot = (int) (row % perWord);
            int shift = bits * (zeros == Zeros.AWQ ? AWQ_SLOT[slot] : slot);
            int value = (stored[(int) (row / perWord - firstWord)] >>> shift) & mask;
            if (zeros == Zeros.GPTQ_MINUS_ONE) {
              if (value == mask) {
                throw invalid(tensor, "the zero point of row " + row + ", group " + g + " is stored as " + mask
                    + ", which in the gptq (v1) format means " + (mask + 1) + ", outside 0.." + mask
                    + " (v1 writers could not store a zero point of 0: the checkpoint is damaged or is gptq_v2)");
              }
              value++;
            }
            staged[r * groupCount + g] = value;
          }
        }
      }
    }
    return staged;
  }

  /** The words that hold the rows' integers, as {@link #unpackRow} reads them. */
  private int[] stageWords(long firstRow, int rows) {
    return switch (layout) {
      case GPTQ -> {
        // [columns / perWord, allRows]: for each word row, the rows' words side by side.
        long allRows = packed.dim(1);
        int wordRows = (int) packed.dim(0);
        int[] staged = new int[wordRows * rows];
        for (int w = 0; w < wordRows; w++) {
          Staging.ints(packed, w * allRows + firstRow, staged, w * rows, rows);
        }
        yield staged;
      }
      case AWQ -> {
        // [columns, allRows / 8]: for each column, the words that cover the rows.
        long wordsPerColumn = packed.dim(1);
        long firstWord = firstRow / 8;
        int wordCount = (int) ((firstRow + rows - 1) / 8 - firstWord + 1);
        int[] staged = new int[columns * wordCount];
        for (int c = 0; c < columns; c++) {
          Staging.ints(packed, c * wordsPerColumn + firstWord, staged, c * wordCount, wordCount);
        }
        yield staged;
      }
      case COMPRESSED_TENSORS -> {
        int wordsPerRow = (int) packed.dim(1);
        int[] staged = new int[rows * wordsPerRow];
        Staging.ints(packed, firstRow * wordsPerRow, staged, 0, staged.length);
        yield staged;
      }
    };
  }

  /** The integers of row {@code firstRow + r} into {@code q}. */
  private void unpackRow(int[] words, long firstRow, int r, int rows, int[] q) {
    switch (layout) {
      case GPTQ -> {
        int done = RowEncoder.VECTOR_PRODUCTS ? VectorInts.unpack(words, r, rows, bits, q, columns) : 0;
        for (int w = done / perWord, c = w * perWord; c < columns; w++) {
          unpackWord(words[w * rows + r], q, c);
          c += perWord;
        }
      }
      case AWQ -> {
        long row = firstRow + r;
        int wordCount = words.length / columns;
        int word = (int) (row / 8 - firstRow / 8);
        int shift = bits * AWQ_SLOT[(int) (row % 8)];
        for (int c = 0; c < columns; c++) {
          q[c] = (words[c * wordCount + word] >>> shift) & mask;
        }
      }
      case COMPRESSED_TENSORS -> {
        int wordsPerRow = words.length / rows;
        int base = r * wordsPerRow;
        int done = RowEncoder.VECTOR_PRODUCTS ? VectorInts.unpack(words, base, 1, bits, q, columns) : 0;
        for (int w = done / perWord, c = w * perWord; c < columns; w++) {
          unpackWord(words[base + w], q, c);
          c += perWord;
        }
      }
    }
  }

  /** The integers of one word, least significant first, into {@code q[at, at + perWord)} (fewer at the row's end). */
  private void unpackWord(int word, int[] q, int at) {
    int end = Math.min(q.length, at + perWord);
    for (int c = at, shift = 0; c < end; c++, shift += bits) {
      q[c] = (word >>> shift) & mask;
    }
  }

  private UncheckedIOException invalid(TensorView tensor, String detail) {
    CheckpointException e = new CheckpointException(Reason.INVALID_QUANTIZED_VALUE, tensor.file().orElse(file),
        tensor.name(), detail);
    return new UncheckedIOException(e.getMessage(), e);
  }
}
