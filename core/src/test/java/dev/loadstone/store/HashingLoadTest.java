package dev.loadstone.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.checkpoint.CheckpointWriter;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** COPY (and ALIAS) loads that compute each file's SHA-256 in the same pass. */
class HashingLoadTest {
  @TempDir Path dir;

  /** Tensors of several sizes (one of several chunks), BF16 and F32, random bits. */
  private static List<TensorView> tensors() {
    Random random = new Random(11);
    List<TensorView> tensors = new ArrayList<>();
    long[][] shapes = {{3}, {1000, 37}, {5L << 20}, {4097}, {0}, {777}};
    DType[] dtypes = {DType.F32, DType.BF16, DType.BF16, DType.F16, DType.BF16, DType.U8};
    for (int i = 0; i < shapes.length; i++) {
      long elements = 1;
      for (long dim : shapes[i]) {
        elements *= dim;
      }
      byte[] bytes = new byte[(int) dtypes[i].byteSize(elements)];
      random.nextBytes(bytes);
      for (int b = 1; b < bytes.length; b += 2) {
        bytes[b] &= 0x77;   // finite 16-bit floats
      }
      MemorySegment data = Arena.ofAuto().allocate(Math.max(1, bytes.length));
      MemorySegment.copy(MemorySegment.ofArray(bytes), 0, data, 0, bytes.length);
      tensors.add(TensorView.of("layer" + i + ".weight", dtypes[i], shapes[i], data.asSlice(0, bytes.length)));
    }
    return tensors;
  }

  private static String sha256(Path file) throws IOException {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  /** A store with variables for every tensor but those named in {@code skipped}, floats as {@code floats}. */
  private static VarStore storeFor(Checkpoint checkpoint, DType floats, List<String> skipped) {
    VarStore store = new VarStore();
    for (TensorView tensor : checkpoint.tensors()) {
      if (!skipped.contains(tensor.name())) {
        DType dtype = floats == null || !tensor.dtype().isFloatingPoint() ? tensor.dtype() : floats;
        store.root().zeros(tensor.name(), dtype, tensor.shape());
      }
    }
    return store;
  }

  @ParameterizedTest(name = "{0} into {1}, {2} thread(s)")
  @CsvSource({"MAPPED, keep, 3", "MAPPED, F32, 2", "POSITIONAL, keep, 2", "POSITIONAL, F32, 3", "DIRECT, F32, 2",
      "MAPPED, keep, 1"})
  void theLoadHashesEveryByteOfEveryFileOnceTensorsNotLoadedIncluded(ReadMode readMode, String floats, int threads)
      throws IOException {
    Path model = dir.resolve("model");
    CheckpointWriter.write(model, null, tensors(), 3 << 20);
    try (Checkpoint checkpoint = Checkpoint.open(model);
        VarStore store = storeFor(checkpoint, floats.equals("keep") ? null : DType.F32, List.of("layer1.weight"))) {
      assertTrue(checkpoint.files().size() > 1, "several shards");
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().partial().withThreads(threads)
          .withReadMode(readMode).withSha256(true));
      Map<Path, String> expected = new LinkedHashMap<>();
      for (Path file : checkpoint.files()) {
        expected.put(file, sha256(file));
      }
      assertEquals(expected, report.sha256());
      assertEquals(List.of("layer1.weight"), report.unexpected());
      assertTrue(store.variable("layer2.weight").isLoaded());
    }
  }

  @Test
  void withoutTheOptionNothingIsHashed() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    try (Checkpoint checkpoint = Checkpoint.open(file); VarStore store = storeFor(checkpoint, null, List.of())) {
      assertEquals(Map.of(), store.load(checkpoint, LoadOptions.defaults()).sha256());
    }
  }

  @Test
  void anAliasLoadHashesToo() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    try (Checkpoint checkpoint = Checkpoint.open(file); VarStore store = storeFor(checkpoint, null, List.of())) {
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().withMode(LoadMode.ALIAS).withSha256(true));
      assertEquals(Map.of(file, sha256(file)), report.sha256());
    }
  }

  @Test
  void theExpectedHashesAreCheckedByFileName() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    String actual = sha256(file);
    try (Checkpoint checkpoint = Checkpoint.open(file); VarStore store = storeFor(checkpoint, DType.F32, List.of())) {
      LoadReport report = store.load(checkpoint, LoadOptions.defaults()
          .withExpectedSha256(Map.of("model.safetensors", actual.toUpperCase(java.util.Locale.ROOT))));
      assertEquals(Map.of(file, actual), report.sha256());
    }
  }

  @Test
  void aMismatchFailsTheLoadNamingTheFileTheExpectedAndTheActualHash() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    String actual = sha256(file);
    String wrong = "0".repeat(64);
    try (Checkpoint checkpoint = Checkpoint.open(file); VarStore store = storeFor(checkpoint, null, List.of())) {
      LoadException e = assertThrows(LoadException.class, () -> store.load(checkpoint,
          LoadOptions.defaults().withExpectedSha256(Map.of("model.safetensors", wrong))));
      assertEquals(file + ": SHA-256 " + actual + ", expected " + wrong + " (LoadOptions.expectedSha256): the file is"
          + " not the one expected, and nothing is loaded", e.getMessage());
      assertTrue(e.report().loaded().isEmpty());
      for (Variable variable : store.variables()) {
        assertFalse(variable.isLoaded(), variable.name());
      }
    }
  }

  @Test
  void anExpectedHashForAFileTheCheckpointLacksIsRefusedBeforeReading() throws IOException {
    Path file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, null, tensors());
    try (Checkpoint checkpoint = Checkpoint.open(file); VarStore store = storeFor(checkpoint, null, List.of())) {
      LoadException e = assertThrows(LoadException.class, () -> store.load(checkpoint,
          LoadOptions.defaults().withExpectedSha256(Map.of("other.safetensors", "a".repeat(64)))));
      assertTrue(e.getMessage().contains("'other.safetensors', which is no file of the checkpoint"), e.getMessage());
      assertFalse(store.variable("layer0.weight").isLoaded());
    }
  }

  @Test
  void aMalformedExpectedHashIsRefused() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> LoadOptions.defaults().withExpectedSha256(Map.of("model.safetensors", "abc")));
    assertTrue(e.getMessage().contains("'model.safetensors' is not 64 hex digits"), e.getMessage());
  }

  @Test
  void aPartitionedLoadCannotHashItsFilesInTheSamePass() {
    Partition half = new Partition(0, 2, PartitionRules.llama());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> LoadOptions.defaults().withPartition(half).withSha256(true));
    assertTrue(e.getMessage().contains("verify --sha256"), e.getMessage());
    // One rank of one reads every byte: hashing is fine there.
    assertTrue(LoadOptions.defaults().withPartition(new Partition(0, 1, PartitionRules.llama())).withSha256(true).sha256());
  }
}
