package dev.loadstone.spark.examples;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.spark.LoadedCheckpoint;
import dev.loadstone.spark.ModelLoader;
import dev.loadstone.spark.ModelManifest;
import dev.loadstone.spark.ModelRegistry;
import dev.loadstone.store.Partition;
import dev.loadstone.store.Variable;
import java.io.IOException;
import java.io.Serial;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.IntStream;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.SparkSession;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

/**
 * A barrier stage in which each task is one tensor-parallel rank: task {@code partitionId()} of
 * {@code numTasks} loads its slice of the checkpoint ({@link ModelManifest#forRank}, a
 * partitioned COPY load that reads only the slice's bytes), waits at the barrier until every
 * rank has loaded, and returns one {@link SliceChecksums} per tensor to the driver, which checks
 * that the ranks' slices tile every tensor.
 *
 * <p>Barrier mode starts all tasks of the stage at once, so the cluster needs {@code world}
 * free task slots (in local mode, {@code local[N]} with N at least the world).
 */
public final class RankSlices {
  private RankSlices() {}

  /**
   * What one rank loaded.
   *
   * @param rank the task's partition id
   * @param world the stage's number of tasks
   * @param checksums by tensor name, of the rank's slice (or the whole tensor, where replicated)
   * @param sliced the tensors the rank holds a slice of (the others it holds whole)
   * @param bytes the bytes of the rank's variables
   */
  public record RankResult(int rank, int world, Map<String, Long> checksums, List<String> sliced, long bytes)
      implements Serializable {
    @Serial
    private static final long serialVersionUID = 1L;
  }

  /**
   * Runs the barrier stage: {@code world} tasks, one per rank, each loading
   * {@code manifest.forRank(rank, world)}. The results are in rank order.
   */
  public static List<RankResult> run(SparkSession spark, ModelManifest manifest, int world) {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Broadcast<ModelManifest> shared = jsc.broadcast(manifest);
    RDD<Integer> ranks = jsc.parallelize(IntStream.range(0, world).boxed().toList(), world).rdd();
    List<RankResult> results = new ArrayList<>(ranks.barrier()
        .mapPartitions(new LoadRank(shared), false, ClassTag$.MODULE$.apply(RankResult.class))
        .toJavaRDD().collect());
    results.sort(Comparator.comparingInt(RankResult::rank));
    return results;
  }

  /** A barrier task: load this rank's slice, meet the others, report the checksums. */
  private static final class LoadRank
      extends AbstractFunction1<scala.collection.Iterator<Integer>, scala.collection.Iterator<RankResult>>
      implements Serializable {
    @Serial
    private static final long serialVersionUID = 1L;
    private final Broadcast<ModelManifest> manifest;

    LoadRank(Broadcast<ModelManifest> manifest) {
      this.manifest = manifest;
    }

    @Override
    public scala.collection.Iterator<RankResult> apply(scala.collection.Iterator<Integer> ignored) {
      BarrierTaskContext task = BarrierTaskContext.get();
      int rank = task.partitionId();
      int world = task.getTaskInfos().length;
      ModelManifest mine = manifest.value().forRank(rank, world);
      RankResult result;
      try (ModelRegistry.Handle<LoadedCheckpoint> handle = ModelRegistry.shared().acquire(mine, ModelLoader.checkpoint())) {
        task.barrier();   // every rank has its slice: where a job would start its collective work
        result = checksums(handle.get(), rank, world);
      } catch (IOException e) {
        throw new UncheckedIOException(e.getMessage(), e);
      }
      return CollectionConverters.asScala(List.of(result).iterator());
    }
  }

  /** The checksums of one rank's loaded slices. */
  static RankResult checksums(LoadedCheckpoint loaded, int rank, int world) {
    Partition partition = loaded.manifest().partition();
    Map<String, Long> sums = new LinkedHashMap<>();
    List<String> sliced = new ArrayList<>();
    long bytes = 0;
    for (Map.Entry<String, long[]> tensor : loaded.tensorShapes().entrySet()) {
      Variable variable = loaded.store().variable(tensor.getKey());
      Optional<Partition.Slice> cut = partition == null ? Optional.empty()
          : partition.sliceOf(tensor.getKey(), tensor.getValue());
      bytes += variable.byteSize();
      if (cut.isPresent()) {
        sliced.add(tensor.getKey());
        sums.put(tensor.getKey(), SliceChecksums.slice(variable.segment(), tensor.getValue(),
            variable.dtype().bits() / 8, cut.get()));
      } else {
        sums.put(tensor.getKey(), SliceChecksums.whole(variable.segment()));
      }
    }
    return new RankResult(rank, world, sums, sliced, bytes);
  }

  /** Every tensor's whole checksum, read from the checkpoint's mapping (on the driver). */
  public static Map<String, Long> wholeChecksums(ModelManifest manifest) throws IOException {
    Map<String, Long> sums = new LinkedHashMap<>();
    try (Checkpoint checkpoint = Checkpoint.open(manifest.checkpointLocation())) {
      for (TensorView tensor : checkpoint.tensors()) {
        sums.put(tensor.name(), SliceChecksums.whole(tensor.segment()));
      }
    }
    return sums;
  }

  /**
   * What does not tile: one line per tensor whose ranks' checksums do not add up to the whole
   * tensor's (sliced), or whose copy on some rank differs from it (replicated). Empty when every
   * tensor tiles.
   */
  public static List<String> mismatches(List<RankResult> ranks, Map<String, Long> whole) {
    List<String> problems = new ArrayList<>();
    for (Map.Entry<String, Long> tensor : whole.entrySet()) {
      String name = tensor.getKey();
      long sum = 0;
      int slicedOn = 0;
      for (RankResult rank : ranks) {
        Long mine = rank.checksums().get(name);
        if (mine == null) {
          problems.add(name + ": missing on rank " + rank.rank());
          continue;
        }
        if (rank.sliced().contains(name)) {
          slicedOn++;
          sum += mine;
        } else if (mine != tensor.getValue().longValue()) {
          problems.add(name + ": rank " + rank.rank() + "'s whole copy differs from the checkpoint's");
        }
      }
      if (slicedOn != 0 && slicedOn != ranks.size()) {
        problems.add(name + ": sliced on " + slicedOn + " of " + ranks.size() + " ranks");
      } else if (slicedOn != 0 && sum != tensor.getValue()) {
        problems.add(name + ": the " + slicedOn + " slices do not add up to the whole tensor");
      }
    }
    return problems;
  }
}
