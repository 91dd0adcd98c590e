package dev.loadstone.quantization;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.TensorView;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Which group of scales and zero points each input column of a weight uses: column /
 * group size, or as a {@code g_idx} tensor says (GPTQ's {@code desc_act}, compressed-tensors'
 * {@code actorder}), read once, on first use, and checked.
 */
final class GroupIndex {
  private final Optional<TensorView> gIdx;
  private final boolean followGIdx;
  private final int columns;
  private final int groupSize;
  private final int groups;
  private final Path file;
  private volatile int[] groupOfColumn;
  private volatile int[] runEnds;

  /**
   * @param gIdx the {@code g_idx} tensor, if the checkpoint has one ({@code [columns]}, I32 or I64)
   * @param followGIdx whether the scheme's groups are the g_idx's; if not, a g_idx present must
   *     agree with column / group size
   * @param groupSize columns per group; 0 or less for one group
   */
  GroupIndex(Optional<TensorView> gIdx, boolean followGIdx, int columns, int groupSize, int groups, Path file) {
    this.gIdx = gIdx;
    this.followGIdx = followGIdx;
    this.columns = columns;
    this.groupSize = groupSize;
    this.groups = groups;
    this.file = file;
  }

  /** The number of groups for {@code columns} input columns in groups of {@code groupSize} (0 or less: one). */
  static int groupCount(int columns, int groupSize) {
    return groupSize <= 0 ? 1 : (int) Scheme.ceilDiv(columns, groupSize);
  }

  int groups() {
    return groups;
  }

  /**
   * The group of each input column.
   *
   * @throws UncheckedIOException wrapping a {@link CheckpointException}
   *     ({@code INVALID_QUANTIZED_VALUE}) for a g_idx that names a group out of range, or
   *     disagrees with column / group size where the scheme does not follow it
   */
  int[] groupOfColumn() {
    int[] known = groupOfColumn;
    if (known != null) {
      return known;
    }
    synchronized (this) {
      if (groupOfColumn == null) {
        groupOfColumn = compute();
      }
      return groupOfColumn;
    }
  }

  /**
   * Where each run of consecutive columns of one group ends (exclusive), in order: column /
   * group size gives one run per group, a {@code g_idx} permutation may give many.
   */
  int[] runEnds() {
    int[] known = runEnds;
    if (known != null) {
      return known;
    }
    int[] group = groupOfColumn();
    int[] ends = new int[columns];
    int count = 0;
    for (int c = 1; c <= columns; c++) {
      if (c == columns || group[c] != group[c - 1]) {
        ends[count++] = c;
      }
    }
    runEnds = java.util.Arrays.copyOf(ends, count);
    return runEnds;
  }

  private int[] compute() {
    int[] result = new int[columns];
    for (int i = 0; i < columns; i++) {
      result[i] = groupSize <= 0 ? 0 : i / groupSize;
    }
    if (gIdx.isEmpty()) {
      return result;
    }
    TensorView tensor = gIdx.get();
    long[] stored = Staging.integers(tensor);
    for (int i = 0; i < columns; i++) {
      long group = stored[i];
      if (group < 0 || group >= groups) {
        throw invalid(tensor, "g_idx[" + i + "] is " + group + ", but the weight has " + groups + " group(s)");
      }
      if (followGIdx) {
        result[i] = (int) group;
      } else if (group != result[i]) {
        throw invalid(tensor, "g_idx[" + i + "] is " + group + ", but without desc_act (act-order) column "
            + i + " is in group " + i + " / " + groupSize + " = " + result[i]);
      }
    }
    return result;
  }

  private UncheckedIOException invalid(TensorView tensor, String detail) {
    CheckpointException e = new CheckpointException(Reason.INVALID_QUANTIZED_VALUE, tensor.file().orElse(file),
        tensor.name(), detail);
    return new UncheckedIOException(e.getMessage(), e);
  }
}
