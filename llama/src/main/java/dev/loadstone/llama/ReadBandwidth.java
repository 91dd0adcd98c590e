package dev.loadstone.llama;

import dev.loadstone.safetensors.DType;
import dev.loadstone.store.VarStore;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicInteger;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The machine's memory read bandwidth as decoding sees it: a read-only pass (a vectorized sum)
 * over a buffer much larger than the caches, split in chunks among the same kind of thread team
 * that runs the model, over memory allocated as a {@link VarStore} allocates it. Decoding
 * reads every weight once per token, so
 * {@code bandwidth / LlamaModel.weightBytesPerToken()} is the fastest it can go.
 *
 * <pre>{@code
 * double bytesPerSecond = ReadBandwidth.measure(2, 1L << 30, 3);
 * double bound = bytesPerSecond / model.weightBytesPerToken();   // tokens per second
 * }</pre>
 */
public final class ReadBandwidth {
  private static final long CHUNK = 1 << 20;

  private ReadBandwidth() {}

  /**
   * Allocates and touches {@code bytes} of memory, then reads it through {@code passes} times on
   * {@code threads} threads and returns the best pass's bytes per second.
   *
   * @throws UnsupportedOperationException if the JVM runs without {@code jdk.incubator.vector}
   */
  public static double measure(int threads, long bytes, int passes) {
    LlamaModel.requireVectorApi();
    if (bytes < CHUNK || passes < 1) {
      throw new IllegalArgumentException("at least one pass over at least 1 MiB");
    }
    long size = bytes - bytes % CHUNK;
    int chunks = (int) (size / CHUNK);
    double best = 0;
    // The buffer is a variable of a VarStore, allocated as the store allocates a model's
    // memory (its own mapping, transparent huge pages requested where the OS offers them).
    try (VarStore store = new VarStore(); ThreadTeam team = new ThreadTeam(threads)) {
      MemorySegment buffer = store.root().zeros("buffer", DType.U8, size).segment();
      buffer.fill((byte) 1);
      AtomicInteger next = new AtomicInteger();
      long[] sums = new long[threads];
      ThreadTeam.Task pass = member -> {
        long sum = 0;
        int c;
        while ((c = next.getAndIncrement()) < chunks) {
          sum += Sum.of(buffer, c * CHUNK, CHUNK);
        }
        sums[member] += sum;
      };
      for (int i = 0; i <= passes; i++) {
        next.set(0);
        long start = System.nanoTime();
        team.run(pass);
        long nanos = System.nanoTime() - start;
        if (i > 0) {   // the first pass warms up the code
          best = Math.max(best, size / (nanos / 1e9));
        }
      }
      long total = 0;
      for (long s : sums) {
        total += s;
      }
      if (total == 42) {   // keeps the sums alive
        System.err.print("");
      }
    }
    return best;
  }

  /** The vectorized sum, apart so that this class loads without the Vector API. */
  private static final class Sum {
    private static final VectorSpecies<Long> L = LongVector.SPECIES_PREFERRED;

    static long of(MemorySegment data, long offset, long length) {
      LongVector a0 = LongVector.zero(L);
      LongVector a1 = LongVector.zero(L);
      LongVector a2 = LongVector.zero(L);
      LongVector a3 = LongVector.zero(L);
      long step = L.vectorByteSize();
      long end = offset + length;
      for (long at = offset; at + 4 * step <= end; at += 4 * step) {
        a0 = a0.add(LongVector.fromMemorySegment(L, data, at, ByteOrder.LITTLE_ENDIAN));
        a1 = a1.add(LongVector.fromMemorySegment(L, data, at + step, ByteOrder.LITTLE_ENDIAN));
        a2 = a2.add(LongVector.fromMemorySegment(L, data, at + 2 * step, ByteOrder.LITTLE_ENDIAN));
        a3 = a3.add(LongVector.fromMemorySegment(L, data, at + 3 * step, ByteOrder.LITTLE_ENDIAN));
      }
      return a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
    }
  }
}
