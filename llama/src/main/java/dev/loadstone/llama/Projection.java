package dev.loadstone.llama;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One or more matrices applied to the same activations, as one task for the {@link ThreadTeam}:
 * their rows are cut into chunks that the members take in turn, so both the work and the
 * reading of memory are shared out evenly. Built once per session; {@link #prepare} sets the
 * number of tokens before each run.
 */
final class Projection implements ThreadTeam.Task {
  /** A matrix and where its products go: {@code out[t * outStride + row]}, set or added. */
  record Part(Matrix matrix, float[] out, int outStride, boolean accumulate) {}

  /** Bytes of weights per chunk: large enough for streaming reads, small enough to balance. */
  static final long CHUNK_BYTES = 128 * 1024;

  private final Part[] parts;
  private final int[] chunkPart;
  private final int[] chunkStart;
  private final int[] chunkEnd;
  private final float[] x;
  private final float[] xi;
  private final int inStride;
  private final WeightStage[] stages;
  private final AtomicInteger next = new AtomicInteger();
  private int tokens;

  /** {@code stages}: one per member of the team, for weights in a file mapping. */
  Projection(List<Part> parts, float[] x, float[] xi, int inStride, WeightStage[] stages) {
    this.parts = parts.toArray(Part[]::new);
    this.x = x;
    this.xi = xi;
    this.inStride = inStride;
    this.stages = stages;
    List<int[]> chunks = chunks(parts.stream().map(Part::matrix).toList(), stages.length);
    chunkPart = new int[chunks.size()];
    chunkStart = new int[chunks.size()];
    chunkEnd = new int[chunks.size()];
    for (int i = 0; i < chunks.size(); i++) {
      chunkPart[i] = chunks.get(i)[0];
      chunkStart[i] = chunks.get(i)[1];
      chunkEnd[i] = chunks.get(i)[2];
    }
  }

  /** The chunks of rows, {@code {matrix, first row, end row}}, in memory order per matrix. */
  static List<int[]> chunks(List<Matrix> matrices, int threads) {
    List<int[]> chunks = new ArrayList<>();
    for (int p = 0; p < matrices.size(); p++) {
      Matrix m = matrices.get(p);
      int rows = m.rows();
      int byBytes = (int) Math.max(1, CHUNK_BYTES / Math.max(1, m.rowBytes()));
      int forBalance = Math.max(1, Math.ceilDiv(rows, 4 * threads));
      int size = Math.min(byBytes, forBalance);
      if (size >= 8) {
        size -= size % 4;   // whole groups of four rows for the decode kernel
      }
      for (int start = 0; start < rows; start += size) {
        chunks.add(new int[] {p, start, Math.min(rows, start + size)});
      }
    }
    return chunks;
  }

  /** Sets the number of tokens for the next run. */
  void prepare(int tokenCount) {
    this.tokens = tokenCount;
    next.set(0);
  }

  @Override
  public void run(int member) {
    int n = tokens;
    int count = chunkPart.length;
    int c;
    while ((c = next.getAndIncrement()) < count) {
      Part part = parts[chunkPart[c]];
      Kernels.multiply(part.matrix(), chunkStart[c], chunkEnd[c], x, xi, inStride, n,
          part.out(), part.outStride(), part.accumulate(), stages[member]);
    }
  }
}
