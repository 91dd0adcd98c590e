package dev.loadstone.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.CheckpointWriter;
import dev.loadstone.internal.Posix;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/** COPY loads that read files with positional reads (POSITIONAL, DIRECT, and AUTO for files not cached). */
class PositionalReadTest {
  @TempDir Path dir;

  /** Tensors of several dtypes and sizes: several chunks, sizes that are no multiple of a block. */
  private static List<TensorView> tensors() {
    Random random = new Random(7);
    List<TensorView> tensors = new ArrayList<>();
    long[][] shapes = {{3}, {1000, 37}, {9L << 20}, {4097}, {0}};
    DType[] dtypes = {DType.F32, DType.BF16, DType.BF16, DType.F16, DType.BF16};
    for (int i = 0; i < shapes.length; i++) {
      long elements = 1;
      for (long dim : shapes[i]) {
        elements *= dim;
      }
      MemorySegment data = Arena.ofAuto().allocate(Math.max(1, dtypes[i].byteSize(elements)));
      for (long b = 0; b < data.byteSize(); b += 2) {
        // Finite 16-bit floats (exponent below all ones), so values compare by bits.
        data.set(ValueLayout.JAVA_BYTE, b, (byte) random.nextInt());
        if (b + 1 < data.byteSize()) {
          data.set(ValueLayout.JAVA_BYTE, b + 1, (byte) (random.nextInt(0x78)));
        }
      }
      tensors.add(TensorView.of("layer" + i + ".weight", dtypes[i], shapes[i],
          data.asSlice(0, dtypes[i].byteSize(elements))));
    }
    return tensors;
  }

  /** Loads every tensor of {@code path} into {@code dtype} (floats) with {@code readMode}. */
  private static VarStore load(Path path, Optional<DType> dtype, ReadMode readMode, List<LoadReport> reports)
      throws IOException {
    try (Checkpoint checkpoint = Checkpoint.open(path)) {
      VarStore store = new VarStore();
      for (TensorView tensor : checkpoint.tensors()) {
        store.root().zeros(tensor.name(), tensor.dtype().convertingFloatsTo(dtype), tensor.shape());
      }
      reports.add(store.load(checkpoint, LoadOptions.defaults().withThreads(2).withReadMode(readMode)));
      return store;
    }
  }

  private static void assertSameVariables(VarStore expected, VarStore actual) {
    assertEquals(expected.variables().size(), actual.variables().size());
    for (Variable variable : expected.variables()) {
      MemorySegment other = actual.variable(variable.name()).segment();
      assertEquals(-1, variable.segment().mismatch(other), variable.name());
    }
  }

  @ParameterizedTest
  @CsvSource({"F32, POSITIONAL", "BF16, POSITIONAL", "F32, DIRECT", "BF16, DIRECT"})
  void positionalReadsGiveTheSameVariablesAsTheMapping(DType target, ReadMode readMode) throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    List<LoadReport> reports = new ArrayList<>();
    Optional<DType> dtype = target == DType.F32 ? Optional.of(DType.F32) : Optional.empty();
    try (VarStore mapped = load(file, dtype, ReadMode.MAPPED, reports);
        VarStore direct = load(file, dtype, readMode, reports)) {
      assertSameVariables(mapped, direct);
    }
    assertEquals(List.of(), reports.get(0).readDirectly());
    assertEquals(List.of(file), reports.get(1).readDirectly());
    assertEquals(reports.get(0).bytesWritten(), reports.get(1).bytesWritten());
  }

  @Test
  void aShardedCheckpointIsReadDirectlyShardByShard() throws IOException {
    Path model = dir.resolve("model");
    CheckpointWriter.write(model, null, tensors(), 1 << 20);
    List<LoadReport> reports = new ArrayList<>();
    try (VarStore mapped = load(model, Optional.of(DType.F32), ReadMode.MAPPED, reports);
        VarStore direct = load(model, Optional.of(DType.F32), ReadMode.DIRECT, reports);
        Checkpoint checkpoint = Checkpoint.open(model)) {
      assertSameVariables(mapped, direct);
      assertTrue(checkpoint.files().size() > 1);
      assertEquals(checkpoint.files().stream().sorted().toList(), reports.get(1).readDirectly());
    }
  }

  @ParameterizedTest
  @EnumSource(value = ReadMode.class, names = {"POSITIONAL", "DIRECT"})
  void aFileTruncatedUnderAPositionalLoadFailsNamingTheFileAndTensor(ReadMode readMode) throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    try (Checkpoint checkpoint = Checkpoint.open(file); VarStore store = new VarStore()) {
      for (TensorView tensor : checkpoint.tensors()) {
        store.root().zeros(tensor.name(), tensor.dtype(), tensor.shape());
      }
      // Cut in the middle of the large tensor, after the checkpoint was opened (and mapped).
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
        channel.truncate(channel.size() / 2);
      }
      LoadException e = assertThrows(LoadException.class,
          () -> store.load(checkpoint, LoadOptions.defaults().withReadMode(readMode)));
      // Several reads are in flight: the first to come back short names its tensor.
      assertTrue(e.getMessage().matches(java.util.regex.Pattern.quote(file.toString())
          + ": tensor 'layer[0-9].weight': loading into 'layer[0-9].weight' failed: the file ends at byte [0-9]+,"
          + " within the data of tensor 'layer[0-9].weight' .*: truncated since it was opened"), e.getMessage());
      assertTrue(e.report().loaded().isEmpty());
      for (Variable variable : store.variables()) {
        assertFalse(variable.isLoaded(), variable.name());
      }
    }
  }

  @Test
  void aFileReplacedSinceItWasOpenedIsNotReadDirectly() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    try (Checkpoint checkpoint = Checkpoint.open(file); VarStore store = new VarStore()) {
      for (TensorView tensor : checkpoint.tensors()) {
        store.root().zeros(tensor.name(), tensor.dtype(), tensor.shape());
      }
      // Same tensors, other bytes: only the file's identity tells them apart.
      Path other = dir.resolve("other.safetensors");
      SafeTensorsWriter.write(other, null, tensors());
      Files.move(other, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      LoadException e = assertThrows(LoadException.class,
          () -> store.load(checkpoint, LoadOptions.defaults().withReadMode(ReadMode.DIRECT)));
      assertTrue(e.getMessage().startsWith(file + ": tensor '"), e.getMessage());
      assertTrue(e.getMessage().contains("the file was replaced since it was opened"), e.getMessage());
      // The mapping still holds the file as it was opened.
      LoadReport mapped = store.load(checkpoint, LoadOptions.defaults().withReadMode(ReadMode.MAPPED));
      assertTrue(mapped.isComplete());
    }
  }

  @Test
  void autoReadsAFileThatIsNotCachedDirectlyAndWithoutCachingIt() throws IOException {
    Path file = writtenAndDropped();
    try (Checkpoint checkpoint = Checkpoint.open(file); VarStore store = new VarStore()) {
      for (TensorView tensor : checkpoint.tensors()) {
        store.root().zeros(tensor.name(), DType.F32, tensor.shape());
      }
      // Opening reads the header through the mapping (with what the kernel reads around it).
      double opened = residentFraction(file);
      assumeTrue(opened < 0.5, "the header's read-around cached most of this small file");
      LoadReport report = store.load(checkpoint, LoadOptions.defaults());
      assertEquals(List.of(file), report.readDirectly(), "not cached: read directly");
      // Each range read is dropped from the page cache again (up to the 2 MiB blocks at the
      // ends of the file's tensors, which the header's read-around may hold).
      assertEquals(opened, residentFraction(file), 0.15, "positional reads leave the page cache as it was");
    }
    try (FileChannel channel = FileChannel.open(file)) {
      channel.read(java.nio.ByteBuffer.allocate((int) channel.size()), 0);   // read it in
    }
    List<LoadReport> reports = new ArrayList<>();
    try (VarStore warm = load(file, Optional.of(DType.F32), ReadMode.AUTO, reports)) {
      // Cached: converted out of the mapping, the F32 tensors read from the cache; it stays.
      assertTrue(residentFraction(file) > 0.9, "a cached file stays cached: " + residentFraction(file));
    }
  }

  @Test
  void autoReadsACachedFileFromTheCacheWhereNoConversionIsNeededAndLeavesItCached() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    try (FileChannel channel = FileChannel.open(file)) {
      channel.read(java.nio.ByteBuffer.allocate((int) channel.size()), 0);   // read it in
    }
    assumeTrue(residentFraction(file) > 0.9, "the file stayed in the page cache");
    List<LoadReport> reports = new ArrayList<>();
    try (VarStore mapped = load(file, Optional.empty(), ReadMode.MAPPED, reports);
        VarStore auto = load(file, Optional.empty(), ReadMode.AUTO, reports)) {
      assertSameVariables(mapped, auto);
    }
    assertEquals(List.of(), reports.get(0).readDirectly());
    assertEquals(List.of(file), reports.get(1).readDirectly(), "read from the cache, not the mapping");
    assertEquals(reports.get(0).bytesWritten(), reports.get(1).bytesWritten());
    assertTrue(residentFraction(file) > 0.9, "still in the page cache: " + residentFraction(file));
  }

  @Test
  void anAliasLoadWithPrefetchReadsTheFileIn() throws IOException {
    Path file = writtenAndDropped();
    try (Checkpoint checkpoint = Checkpoint.open(file); VarStore store = new VarStore()) {
      assumeTrue(residentFraction(file) < 0.5, "the header's read-around cached most of this small file");
      for (TensorView tensor : checkpoint.tensors()) {
        store.root().zeros(tensor.name(), tensor.dtype(), tensor.shape());
      }
      store.load(checkpoint, LoadOptions.defaults().withMode(LoadMode.ALIAS).withPrefetch(true));
      assertTrue(residentFraction(file) > 0.9, "prefetched");
    }
  }

  /** The test tensors written to a file, then dropped from the page cache. */
  private Path writtenAndDropped() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    assumeTrue(Posix.evict(file), "the page cache cannot be dropped here");
    return file;
  }

  private static double residentFraction(Path file) throws IOException {
    try (FileChannel channel = FileChannel.open(file); Arena arena = Arena.ofConfined()) {
      return Posix.residentFraction(channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena)).orElseThrow();
    }
  }
}
