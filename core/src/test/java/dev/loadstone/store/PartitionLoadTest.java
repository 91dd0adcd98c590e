package dev.loadstone.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Rank-sliced loads: for every rank of several worlds the slices hold exactly the values of the
 * full tensor they cover and, over the ranks, tile it; each rank reads only its own bytes; what
 * cannot be cut is refused naming the file, the tensor and the rule.
 */
class PartitionLoadTest {
  @TempDir Path dir;

  /** Cuts every kind of split, with sizes that do not divide by most worlds. */
  static final PartitionRules RULES = PartitionRules.none()
      .with("rows\\.weight$", Split.along(0))
      .with("columns\\.weight$", Split.along(1))
      .with("middle\\.weight$", Split.along(1))
      .with("qkv\\.weight$", Split.fused(0, 16, 8, 8))
      .with("gate_up\\.weight$", Split.fusedByRatio(0, 1, 1))
      .with("heads\\.weight$", Split.along(0).inUnitsOf(3))
      .with("norm", Split.replicate());

  /** Tensors of random finite values, one per kind of split, plus an unmatched (replicated) one. */
  static List<TensorView> tensors() {
    Random random = new Random(11);
    List<TensorView> tensors = new ArrayList<>();
    tensors.add(random("layer.rows.weight", DType.BF16, new long[] {29, 6}, random));
    tensors.add(random("layer.columns.weight", DType.BF16, new long[] {5, 27}, random));
    tensors.add(random("layer.middle.weight", DType.F32, new long[] {3, 10, 4}, random));
    tensors.add(random("layer.qkv.weight", DType.BF16, new long[] {32, 3}, random));
    tensors.add(random("layer.gate_up.weight", DType.F16, new long[] {18, 4}, random));
    tensors.add(random("layer.heads.weight", DType.BF16, new long[] {27, 2}, random));
    tensors.add(random("layer.norm", DType.F32, new long[] {7}, random));
    tensors.add(random("other.bias", DType.BF16, new long[] {9}, random));
    return tensors;
  }

  static TensorView random(String name, DType dtype, long[] shape, Random random) {
    long elements = 1;
    for (long dim : shape) {
      elements *= dim;
    }
    byte[] bytes = new byte[(int) dtype.byteSize(elements)];
    for (int i = 0; i < bytes.length; i++) {
      // The high byte of each 16-bit float stays below the all-ones exponent: finite values.
      bytes[i] = (byte) ((i % 2 == 1 && dtype.bits() == 16) ? random.nextInt(0x78) : random.nextInt());
    }
    if (dtype == DType.F32) {
      for (int i = 3; i < bytes.length; i += 4) {
        bytes[i] = (byte) random.nextInt(0x78);
      }
    }
    return TensorView.of(name, dtype, shape, MemorySegment.ofArray(bytes));
  }

  /**
   * Asserts that {@code variable} holds {@code slice} of {@code full} (all of it without one),
   * element by element, as float values, and counts the indices of the cut dimension it covers.
   */
  static void assertHoldsSlice(TensorView full, Optional<Partition.Slice> slice, TensorView variable, long[] covered) {
    long[] shape = full.shape();
    long[] sliceShape = slice.map(Partition.Slice::shape).orElse(shape);
    assertArrayEquals(sliceShape, variable.shape(), full.name());
    int dimension = slice.map(Partition.Slice::dimension).orElse(-1);
    // The full index along the cut dimension of each index of the slice's.
    long[] along = dimension < 0 ? null : new long[(int) sliceShape[dimension]];
    if (slice.isPresent()) {
      int at = 0;
      for (Partition.Range range : slice.get().ranges()) {
        for (long i = range.from(); i < range.to(); i++) {
          along[at++] = i;
          covered[(int) i]++;
        }
      }
      assertEquals(along.length, at);
    }
    long[] coordinates = new long[shape.length];
    for (long flat = 0; flat < variable.elementCount(); flat++) {
      long rest = flat;
      for (int d = shape.length - 1; d >= 0; d--) {
        coordinates[d] = rest % sliceShape[d];
        rest /= sliceShape[d];
      }
      if (dimension >= 0) {
        coordinates[dimension] = along[(int) coordinates[dimension]];
      }
      float expected = full.getFloat(full.index(coordinates));
      assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(variable.getFloat(flat)),
          () -> full.name() + " element " + java.util.Arrays.toString(coordinates));
    }
  }

  /** The bytes this rank reads at most: its slices (each at most the ideal share plus one unit's rows per part) and the replicated tensors. */
  static long exactBytes(Checkpoint checkpoint, Partition partition) {
    long bytes = 0;
    for (TensorView tensor : checkpoint.tensors()) {
      long elements = 1;
      for (long dim : partition.shapeOf(tensor.name(), tensor.shape())) {
        elements *= dim;
      }
      bytes += tensor.dtype().byteSize(elements);
    }
    return bytes;
  }

  /** Every rank of every world, in COPY (into F32, and keeping the dtype) with every read mode. */
  @ParameterizedTest
  @CsvSource({"MAPPED, true", "MAPPED, false", "POSITIONAL, true", "POSITIONAL, false", "DIRECT, true",
      "DIRECT, false", "AUTO, false"})
  void theRanksSlicesTileEveryTensor(ReadMode readMode, boolean toF32) throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    for (int world : new int[] {1, 2, 3, 4, 8}) {
      try (Checkpoint checkpoint = Checkpoint.open(file)) {
        List<long[]> covered = new ArrayList<>();
        for (TensorView tensor : checkpoint.tensors()) {
          covered.add(new long[(int) (tensor.rank() == 0 ? 1 : tensor.dim(Math.max(0,
              RULES.ruleFor(tensor.name()).map(r -> r.split().dimension()).orElse(0))))]);
        }
        for (int rank = 0; rank < world; rank++) {
          Partition partition = new Partition(rank, world, RULES);
          LoadOptions options = LoadOptions.defaults().withThreads(2).withReadMode(readMode).withPartition(partition);
          if (toF32) {
            options = options.withCreateDType(DType.F32);
          }
          try (VarStore store = VarStore.fromCheckpoint(checkpoint, options)) {
            for (int t = 0; t < checkpoint.tensors().size(); t++) {
              TensorView tensor = checkpoint.tensors().get(t);
              Variable variable = store.variable(tensor.name());
              assertEquals(toF32 ? DType.F32 : tensor.dtype(), variable.dtype());
              assertHoldsSlice(tensor, partition.sliceOf(tensor.name(), tensor.shape()), variable.view(), covered.get(t));
            }
            LoadReport report = store.load(checkpoint, options);
            long exact = exactBytes(checkpoint, partition);
            if (readMode == ReadMode.DIRECT) {
              assertTrue(report.bytesRead() >= exact, report.summary());
            } else {
              assertEquals(exact, report.bytesRead(), "rank " + rank + " of " + world + ": " + report.summary());
            }
          }
        }
        for (int t = 0; t < checkpoint.tensors().size(); t++) {
          TensorView tensor = checkpoint.tensors().get(t);
          boolean cut = world > 1 && new Partition(0, world, RULES).sliceOf(tensor.name(), tensor.shape()).isPresent();
          for (long hits : covered.get(t)) {
            // A cut tensor's indices are each held by exactly one rank.
            assertEquals(cut ? 1 : 0, hits, tensor.name() + " in a world of " + world);
          }
        }
      }
    }
  }

  @Test
  void aliasBindsDimensionZeroSlicesToTheMappingWithoutCopying() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    PartitionRules rows = PartitionRules.none().with("rows\\.weight$", Split.along(0))
        .with("heads\\.weight$", Split.along(0).inUnitsOf(3));
    for (int world : new int[] {1, 2, 3, 4, 8}) {
      long[] covered = new long[29];
      for (int rank = 0; rank < world; rank++) {
        Partition partition = new Partition(rank, world, rows);
        try (Checkpoint checkpoint = Checkpoint.open(file);
             VarStore store = VarStore.fromCheckpoint(checkpoint,
                 LoadOptions.defaults().withMode(LoadMode.ALIAS).withPartition(partition))) {
          TensorView full = checkpoint.tensor("layer.rows.weight");
          Variable variable = store.variable("layer.rows.weight");
          assertTrue(variable.isAlias());
          Partition.Range range = partition.sliceOf(full.name(), full.shape())
              .map(s -> s.ranges().getFirst()).orElse(new Partition.Range(0, 29));
          // The very bytes of the mapping: the slice starts where its first row lies.
          assertEquals(full.segment().address() + full.dtype().byteSize(range.from() * 6), variable.segment().address());
          assertHoldsSlice(full, partition.sliceOf(full.name(), full.shape()), variable.view(), covered);
          TensorView heads = checkpoint.tensor("layer.heads.weight");
          assertHoldsSlice(heads, partition.sliceOf(heads.name(), heads.shape()), store.variable(heads.name()).view(),
              new long[27]);
        }
      }
      for (long hits : covered) {
        assertEquals(world == 1 ? 0 : 1, hits);
      }
    }
  }

  @Test
  void aliasRefusesStridedAndFusedSlicesNamingTheFileTensorAndRule() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    for (String tensor : new String[] {"layer.columns.weight", "layer.qkv.weight"}) {
      PartitionRules rules = PartitionRules.none().with(java.util.regex.Pattern.quote(tensor),
          RULES.ruleFor(tensor).orElseThrow().split());
      try (Checkpoint checkpoint = Checkpoint.open(file)) {
        LoadException e = assertThrows(LoadException.class, () -> VarStore.fromCheckpoint(checkpoint,
            LoadOptions.defaults().withMode(LoadMode.ALIAS).withPartition(new Partition(1, 2, rules))));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("'" + tensor + "'"), e.getMessage());
        assertTrue(e.getMessage().contains(rules.rules().getFirst().toString()), e.getMessage());
        assertTrue(e.getMessage().contains("LoadMode.COPY"), e.getMessage());
      }
    }
  }

  /** Rules that cannot cut a tensor of the checkpoint. */
  @ParameterizedTest
  @CsvSource(delimiter = ';', value = {
      "other\\.bias$; dim1; it has no dimension 1",
      "qkv\\.weight$; fused:dim0:16,8,4; do not add up to size 32",
      "qkv\\.weight$; fused:dim0:24,4,4; part 2 of 3 (4 of dimension 0) has 4, fewer than the 8 ranks",
      "gate_up\\.weight$; fused:dim0:ratio:1,3; cannot be split in the ratio 1:3",
      "rows\\.weight$; dim0/4; no whole number of units of 4",
      "norm$; dim0/2; no whole number of units of 2",
      "layer\\.qkv\\.weight$; fused:dim0; the fused parts' sizes are not known"})
  void aRuleThatCannotCutATensorIsRefusedBeforeAnythingIsLoaded(String pattern, String split, String why)
      throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    PartitionRules rules = PartitionRules.parse(pattern + " " + split, "test");
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      for (ReadMode readMode : new ReadMode[] {ReadMode.MAPPED, ReadMode.DIRECT}) {
        LoadException e = assertThrows(LoadException.class, () -> VarStore.fromCheckpoint(checkpoint,
            LoadOptions.defaults().withReadMode(readMode).withPartition(new Partition(0, 8, rules))));
        assertTrue(e.getMessage().startsWith(file + ": tensor '"), e.getMessage());
        assertTrue(e.getMessage().contains("by the rule '" + pattern + " " + split + "'"), e.getMessage());
        assertTrue(e.getMessage().contains(why), e.getMessage());
        assertEquals(List.of(), e.report().loaded());
      }
    }
  }

  @Test
  void variablesOfTheWrongShapeForTheSliceAreAMismatch() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    try (Checkpoint checkpoint = Checkpoint.open(file); VarStore store = new VarStore()) {
      store.root().zeros("layer.rows.weight", DType.BF16, 29, 6);   // the whole tensor, not rank 0's 15 rows
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().partial()
          .withPartition(new Partition(0, 2, RULES)));
      assertEquals(1, report.mismatches().size());
      assertTrue(report.mismatches().getFirst().found().contains("[15, 6] (the slice of [29, 6] for rank 0 of 2)"),
          report.mismatches().getFirst().toString());
    }
  }

  /**
   * Large rows, so that the bytes read compare with 1/N of the tensors: the mapping and buffered
   * reads read exactly the rank's bytes, O_DIRECT at most whole blocks around each row piece.
   */
  @ParameterizedTest
  @EnumSource(value = ReadMode.class, names = {"MAPPED", "POSITIONAL", "DIRECT"})
  void eachRankReadsAboutOneNthOfTheSlicedTensors(ReadMode readMode) throws IOException {
    Random random = new Random(3);
    List<TensorView> tensors = List.of(
        random("model.layers.0.self_attn.q_proj.weight", DType.BF16, new long[] {512, 1024}, random),
        random("model.layers.0.self_attn.o_proj.weight", DType.BF16, new long[] {64, 16384}, random),
        random("model.layers.0.input_layernorm.weight", DType.BF16, new long[] {1024}, random));
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors);
    long block = Files.getFileStore(file).getBlockSize();
    for (int world : new int[] {2, 4, 8}) {
      long total = 0;
      for (int rank = 0; rank < world; rank++) {
        Partition partition = new Partition(rank, world, PartitionRules.llama());
        try (Checkpoint checkpoint = Checkpoint.open(file);
             VarStore store = VarStore.fromCheckpoint(checkpoint,
                 LoadOptions.defaults().withThreads(2).withReadMode(readMode).withPartition(partition))) {
          long sliced = 512 * 1024 * 2 + 64 * 16384 * 2;
          long replicated = 1024 * 2;
          long read = store.load(checkpoint, LoadOptions.defaults().withReadMode(readMode).withPartition(partition))
              .bytesRead();
          // The sizes divide by every world: the ideal share exactly, or with O_DIRECT up to two
          // blocks more per piece read (one q_proj range, 64 o_proj row pieces, the norm).
          long ideal = sliced / world + replicated;
          long allowance = readMode == ReadMode.DIRECT ? 2 * block * (1 + 64 + 1) : 0;
          assertTrue(read >= ideal && read <= ideal + allowance, readMode + " rank " + rank + " of " + world
              + ": " + read + " bytes read, ideal " + ideal);
          total += read;
        }
      }
      if (readMode != ReadMode.DIRECT) {
        assertEquals(512 * 1024 * 2 + 64 * 16384 * 2 + world * 1024 * 2L, total);
      }
    }
  }

  @Test
  void llamaWithoutHeadCountsRefusesAFusedQkvNamingTheFix() throws IOException {
    Random random = new Random(5);
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, List.of(
        random("model.layers.0.self_attn.qkv_proj.weight", DType.BF16, new long[] {64, 16}, random)));
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      LoadException e = assertThrows(LoadException.class, () -> VarStore.fromCheckpoint(checkpoint,
          LoadOptions.defaults().withPartition(new Partition(0, 2, PartitionRules.llama()))));
      assertTrue(e.getMessage().contains("the fused parts' sizes are not known"), e.getMessage());
      // With the head counts (4 query heads, 2 key/value heads of 8): q rows 0-15, k 32-39, v 48-55 for rank 0.
      try (VarStore store = VarStore.fromCheckpoint(checkpoint,
          LoadOptions.defaults().withPartition(new Partition(0, 2, PartitionRules.llama(4, 2, 8))))) {
        Partition.Slice slice = new Partition(0, 2, PartitionRules.llama(4, 2, 8))
            .sliceOf("model.layers.0.self_attn.qkv_proj.weight", new long[] {64, 16}).orElseThrow();
        assertEquals(List.of(new Partition.Range(0, 16), new Partition.Range(32, 40), new Partition.Range(48, 56)),
            slice.ranges());
        assertHoldsSlice(checkpoint.tensor("model.layers.0.self_attn.qkv_proj.weight"), Optional.of(slice),
            store.variable("model.layers.0.self_attn.qkv_proj.weight").view(), new long[64]);
      }
    }
  }

  @Test
  void aPartitionThatWouldCutAQuantizedWeightIsRefused() throws IOException {
    Path gptq = Path.of("src/test/resources/dev/loadstone/quantization/gptq-v1");
    try (Checkpoint checkpoint = Checkpoint.open(gptq)) {
      LoadException e = assertThrows(LoadException.class, () -> VarStore.fromCheckpoint(checkpoint,
          LoadOptions.defaults().withPartition(new Partition(0, 2, PartitionRules.none().with(".", Split.along(0))))));
      assertTrue(e.getMessage().contains("belongs to the quantized weight"), e.getMessage());
      assertTrue(e.getMessage().contains("which a partition cannot cut (rule '. dim0')"), e.getMessage());
      // Replicated, it loads (dequantized whole).
      try (VarStore store = VarStore.fromCheckpoint(checkpoint, LoadOptions.defaults()
          .withPartition(new Partition(1, 2, PartitionRules.none().with("norm", Split.along(0)))))) {
        assertTrue(store.variables().stream().allMatch(Variable::isLoaded));
      }
    }
  }
}
