package dev.loadstone.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.spark.examples.RankSlices;
import dev.loadstone.spark.examples.SliceChecksums;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.PartitionRules;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * The barrier stage: each task one rank, loading its slice. Four task slots (local[4]): a
 * barrier stage starts all its tasks at once, so a world of 4 needs 4 slots.
 */
class BarrierSliceTest {
  static SparkSession spark;

  @BeforeAll
  static void start() {
    spark = SparkSession.builder().master("local[4]").appName("loadstone-spark-barrier-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate();
  }

  @AfterAll
  static void stop() {
    spark.stop();
    ModelRegistry.shared().closeIdle();
  }

  static ModelManifest manifest() {
    return ModelManifest.of(ModelRegistryTest.FORTUNE.toString()).withMode(LoadMode.COPY).withThreads(1)
        .withPartition(PartitionRules.llama(8, 4, 32));
  }

  @ParameterizedTest
  @ValueSource(ints = {2, 4})
  void theRanksSlicesTileEveryTensor(int world) throws Exception {
    ModelManifest manifest = manifest();
    List<RankSlices.RankResult> ranks = RankSlices.run(spark, manifest, world);
    assertEquals(world, ranks.size());
    Map<String, Long> whole = RankSlices.wholeChecksums(manifest);
    long total = 0;
    for (int r = 0; r < world; r++) {
      RankSlices.RankResult rank = ranks.get(r);
      assertEquals(r, rank.rank());
      assertEquals(world, rank.world());
      assertEquals(whole.keySet(), rank.checksums().keySet());
      // q/k/v/o, gate/up/down of 6 layers and the embedding are cut; the 13 norms are whole.
      assertEquals(6 * 7 + 1, rank.sliced().size(), rank.sliced().toString());
      assertEquals(1, ModelRegistry.shared().loadCount(manifest.forRank(r, world), ModelLoader.checkpoint()));
      total += rank.bytes();
    }
    assertEquals(List.of(), RankSlices.mismatches(ranks, whole));
    long norms = 13L * 256 * 2;
    assertEquals(8_968_704L - norms, total - world * norms, "the slices hold each cut tensor's bytes once");
  }

  @Test
  void aSliceOutOfPlaceDoesNotTile() {
    // The checksum places bytes: the same bytes at the other rank's rows do not add up.
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment whole = arena.allocate(64);
      for (int i = 0; i < 64; i++) {
        whole.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) (i * 7));
      }
      long[] shape = {8, 4};
      var partition0 = new dev.loadstone.store.Partition(0, 2, PartitionRules.none().with("t", dev.loadstone.store.Split.along(0)));
      var partition1 = new dev.loadstone.store.Partition(1, 2, partition0.rules());
      var cut0 = partition0.sliceOf("t", shape).orElseThrow();
      var cut1 = partition1.sliceOf("t", shape).orElseThrow();
      long sum = SliceChecksums.slice(whole.asSlice(0, 32), shape, 2, cut0) + SliceChecksums.slice(whole.asSlice(32, 32), shape, 2, cut1);
      assertEquals(SliceChecksums.whole(whole), sum);
      long swapped = SliceChecksums.slice(whole.asSlice(32, 32), shape, 2, cut0) + SliceChecksums.slice(whole.asSlice(0, 32), shape, 2, cut1);
      assertTrue(swapped != sum);
      Map<String, Long> sums = new HashMap<>();
      sums.put("t", SliceChecksums.slice(whole.asSlice(0, 32), shape, 2, cut0));
      List<String> problems = RankSlices.mismatches(List.of(new RankSlices.RankResult(0, 2, sums, List.of("t"), 32),
          new RankSlices.RankResult(1, 2, sums, List.of("t"), 32)), Map.of("t", SliceChecksums.whole(whole)));
      assertEquals(List.of("t: the 2 slices do not add up to the whole tensor"), problems);
    }
  }
}
