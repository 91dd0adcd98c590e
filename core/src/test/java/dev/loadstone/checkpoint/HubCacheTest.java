package dev.loadstone.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Model ids resolved in a Hugging Face cache built here exactly as {@code huggingface_hub}
 * lays it out: refs, snapshots of links into blobs named by hash, partial downloads,
 * {@code .no_exist} markers, and caches made without links.
 */
class HubCacheTest {
  private static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";
  private static final String OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98";

  @TempDir
  Path root;

  private static List<TensorView> tensors() {
    return List.of(
        TensorView.of("a", DType.F32, new long[] {2}, MemorySegment.ofArray(new float[] {1f, 2f})),
        TensorView.of("b", DType.F32, new long[] {3}, MemorySegment.ofArray(new float[] {3f, 4f, 5f})));
  }

  /**
   * A cached repository {@code models--org--name}: the checkpoint written (one file, or shards
   * of at most {@code maxShardSize} bytes), each file moved into {@code blobs/} under a name of
   * its own and linked from {@code snapshots/COMMIT/} (or copied there, {@code links} false);
   * {@code refs/main} names the commit.
   */
  private Path cache(long maxShardSize, boolean links) throws IOException {
    Path written = Files.createDirectories(root.resolve("written"));
    CheckpointWriter.write(written, Map.of("format", "pt"), tensors(), maxShardSize);
    Path repo = Files.createDirectories(root.resolve("hub/models--org--name"));
    Path blobs = Files.createDirectories(repo.resolve("blobs"));
    Path snapshot = Files.createDirectories(repo.resolve("snapshots").resolve(COMMIT));
    Files.createDirectories(repo.resolve("refs"));
    Files.writeString(repo.resolve("refs/main"), COMMIT);   // the hub writes no newline
    try (Stream<Path> files = Files.list(written)) {
      int n = 0;
      for (Path file : files.sorted().toList()) {
        if (links) {
          Path blob = blobs.resolve(String.format("%064x", ++n));
          Files.move(file, blob);
          Files.createSymbolicLink(snapshot.resolve(file.getFileName()), Path.of("../../blobs").resolve(blob.getFileName()));
        } else {
          Files.move(file, snapshot.resolve(file.getFileName()));
        }
      }
    }
    return repo;
  }

  private HubCache hub() {
    return HubCache.at(root.resolve("hub"));
  }

  private CheckpointException refused(String id) {
    return assertThrows(CheckpointException.class, () -> hub().open(id).close());
  }

  @Test
  void aModelIdOpensTheSnapshotOfMainThroughItsLinks() throws IOException {
    cache(1L << 30, true);
    try (Checkpoint checkpoint = hub().open("org/name")) {
      assertEquals(List.of("a", "b"), checkpoint.names());
      assertEquals(2f, checkpoint.tensor("a").getFloat(1));
      assertEquals(root.resolve("hub/models--org--name/snapshots/" + COMMIT + "/model.safetensors"),
          checkpoint.files().getFirst());
    }
  }

  @Test
  void aShardedSnapshotOpensToo() throws IOException {
    cache(8, true);
    try (Checkpoint checkpoint = hub().open("org/name@main")) {
      assertEquals(2, checkpoint.files().size());
      assertEquals(5f, checkpoint.tensor("b").getFloat(2));
    }
  }

  @Test
  void aCacheWithoutLinksOpens() throws IOException {
    cache(8, false);
    try (Checkpoint checkpoint = hub().open("org/name")) {
      assertEquals(java.util.Set.of("a", "b"), java.util.Set.copyOf(checkpoint.names()));
      assertEquals(2, checkpoint.files().size());
    }
  }

  @Test
  void aRevisionIsARefOrAFortyHexCommit() throws IOException {
    Path repo = cache(1L << 30, true);
    Files.writeString(repo.resolve("refs/v1.0"), COMMIT + "\n");
    Files.createDirectories(repo.resolve("refs/refs/pr"));
    Files.writeString(repo.resolve("refs/refs/pr/1"), COMMIT);
    for (String id : List.of("org/name@v1.0", "org/name@refs/pr/1", "org/name@" + COMMIT)) {
      try (Checkpoint checkpoint = hub().open(id)) {
        assertEquals(2, checkpoint.tensors().size(), id);
      }
    }
  }

  @Test
  void aModelNotInTheCacheSaysWhereItLooked() {
    CheckpointException e = refused("org/absent");
    assertEquals(Reason.MODEL_NOT_CACHED, e.reason());
    assertEquals(root.resolve("hub/models--org--absent"), e.file().orElseThrow());
    assertTrue(e.getMessage().contains(root.resolve("hub").toString()), e.getMessage());
  }

  @Test
  void anUnknownRevisionIsRefused() throws IOException {
    cache(1L << 30, true);
    CheckpointException e = refused("org/name@dev");
    assertEquals(Reason.REVISION_NOT_CACHED, e.reason());
    assertEquals(root.resolve("hub/models--org--name/refs/dev"), e.file().orElseThrow());
  }

  @Test
  void aRefThatHoldsNoCommitIsRefused() throws IOException {
    Path repo = cache(1L << 30, true);
    Files.writeString(repo.resolve("refs/main"), "not a commit");
    CheckpointException e = refused("org/name");
    assertEquals(Reason.REVISION_NOT_CACHED, e.reason());
    assertTrue(e.getMessage().contains("not a 40-hex commit"), e.getMessage());
  }

  @Test
  void aCommitWithoutSnapshotIsRefused() throws IOException {
    Path repo = cache(1L << 30, true);
    Files.writeString(repo.resolve("refs/main"), OTHER_COMMIT);
    CheckpointException e = refused("org/name");
    assertEquals(Reason.SNAPSHOT_MISSING, e.reason());
    assertEquals(repo.resolve("snapshots").resolve(OTHER_COMMIT), e.file().orElseThrow());
    assertEquals(Reason.SNAPSHOT_MISSING, refused("org/name@" + OTHER_COMMIT).reason());
  }

  @Test
  void aLinkToADeletedBlobIsDangling() throws IOException {
    Path repo = cache(1L << 30, true);
    Files.delete(repo.resolve("blobs").resolve(String.format("%064x", 1)));
    CheckpointException e = refused("org/name");
    assertEquals(Reason.DANGLING_LINK, e.reason());
    assertTrue(e.getMessage().contains("blobs"), e.getMessage());
  }

  @Test
  void aShardLinkToADeletedBlobIsDangling() throws IOException {
    Path repo = cache(8, true);
    Files.delete(repo.resolve("blobs").resolve(String.format("%064x", 2)));   // the second shard
    CheckpointException e = refused("org/name");
    assertEquals(Reason.DANGLING_LINK, e.reason());
    assertTrue(e.tensor().isPresent(), "names the first tensor the index lists in the shard");
    assertTrue(e.getMessage().contains("model-00002-of-00002.safetensors"), e.getMessage());
  }

  @Test
  void aBlobStillDownloadingIsIncomplete() throws IOException {
    Path repo = cache(1L << 30, true);
    Path blob = repo.resolve("blobs").resolve(String.format("%064x", 1));
    Files.move(blob, blob.resolveSibling(blob.getFileName() + ".incomplete"));
    assertEquals(Reason.INCOMPLETE_DOWNLOAD, refused("org/name").reason());
  }

  @Test
  void aMissingShardBesideAPartialDownloadIsIncomplete() throws IOException {
    Path repo = cache(8, true);
    Path snapshot = repo.resolve("snapshots").resolve(COMMIT);
    Files.delete(snapshot.resolve("model-00002-of-00002.safetensors"));
    Path blob = repo.resolve("blobs").resolve(String.format("%064x", 2));
    Files.move(blob, blob.resolveSibling(blob.getFileName() + ".incomplete"));
    CheckpointException e = refused("org/name");
    assertEquals(Reason.INCOMPLETE_DOWNLOAD, e.reason());
    assertTrue(e.getMessage().contains(".incomplete"), e.getMessage());
  }

  @Test
  void aShardTheIndexNamesButTheSnapshotLacksIsMissing() throws IOException {
    Path repo = cache(8, true);
    Path snapshot = repo.resolve("snapshots").resolve(COMMIT);
    Files.delete(snapshot.resolve("model-00002-of-00002.safetensors"));
    CheckpointException e = refused("org/name");
    assertEquals(Reason.MISSING_SHARD, e.reason());
    assertTrue(e.getMessage().contains("not downloaded"), e.getMessage());
    // The hub recorded the file as absent upstream: said so.
    Files.createDirectories(repo.resolve(".no_exist").resolve(COMMIT));
    Files.createFile(repo.resolve(".no_exist").resolve(COMMIT).resolve("model-00002-of-00002.safetensors"));
    e = refused("org/name");
    assertEquals(Reason.MISSING_SHARD, e.reason());
    assertTrue(e.getMessage().contains(".no_exist"), e.getMessage());
  }

  @Test
  void aSnapshotWithoutWeightsSaysWhatTheHubRecorded() throws IOException {
    Path repo = cache(1L << 30, true);
    Files.delete(repo.resolve("snapshots").resolve(COMMIT).resolve("model.safetensors"));
    Files.createDirectories(repo.resolve(".no_exist").resolve(COMMIT));
    Files.createFile(repo.resolve(".no_exist").resolve(COMMIT).resolve("model.safetensors.index.json"));
    CheckpointException e = refused("org/name");
    assertEquals(Reason.NO_WEIGHTS, e.reason());
    assertTrue(e.getMessage().contains("has no model.safetensors.index.json"), e.getMessage());
  }

  @Test
  void theRootFollowsTheHubsEnvironmentVariables() {
    Map<String, String> env = new HashMap<>();
    assertEquals(Path.of("/home/u/.cache/huggingface/hub"), HubCache.fromEnvironment(env::get, "/home/u").root());
    env.put("XDG_CACHE_HOME", "/xdg");
    assertEquals(Path.of("/xdg/huggingface/hub"), HubCache.fromEnvironment(env::get, "/home/u").root());
    env.put("HF_HOME", "~/hf");
    assertEquals(Path.of("/home/u/hf/hub"), HubCache.fromEnvironment(env::get, "/home/u").root());
    env.put("HUGGINGFACE_HUB_CACHE", "/legacy");
    assertEquals(Path.of("/legacy"), HubCache.fromEnvironment(env::get, "/home/u").root());
    env.put("HF_HUB_CACHE", "/hub");
    assertEquals(Path.of("/hub"), HubCache.fromEnvironment(env::get, "/home/u").root());
  }

  @Test
  void modelIdsHaveTheHubsForm() {
    for (String id : List.of("org/name", "meta-llama/Llama-3.2-1B", "a_b/c.d@main", "o/n@" + COMMIT, "o/n@refs/pr/1")) {
      assertTrue(HubCache.isModelId(id), id);
    }
    for (String id : List.of("name", "org/name/x", "/org/name", "org/-name", "org/na--me", "org/na..me", "./x",
        "org/name@", "org/name.", "a/" + "b".repeat(100))) {
      assertFalse(HubCache.isModelId(id), id);
    }
    assertThrows(IllegalArgumentException.class, () -> hub().open("not an id"));
  }

  @Test
  void aRevisionCannotLeaveTheRepository() throws IOException {
    cache(1L << 30, true);
    assertEquals(Reason.REVISION_NOT_CACHED, refused("org/name@../../x").reason());
  }
}
