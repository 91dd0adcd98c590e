package dev.loadstone.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.VarStore;
import dev.loadstone.store.Variable;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link HubDownloader} against a fake hub and CDN on loopback, and the pulled model opened by id. */
class HubDownloaderTest {
  private static final String MODEL = "org/tiny-model";
  private static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";

  @TempDir Path dir;
  private Path weights;
  private FakeHub hub;
  private HubCache cache;
  private final HubDownloader.Listener quiet = new HubDownloader.Listener() {};

  @BeforeEach
  void start() throws IOException {
    Random random = new Random(5);
    List<TensorView> tensors = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      float[] values = new float[100_000 + i];
      for (int j = 0; j < values.length; j++) {
        values[j] = random.nextFloat();
      }
      tensors.add(TensorView.of("w" + i, DType.F32, new long[] {values.length}, MemorySegment.ofArray(values)));
    }
    weights = dir.resolve("source.safetensors");
    SafeTensorsWriter.write(weights, Map.of("format", "pt"), tensors);
    Map<String, byte[]> files = new LinkedHashMap<>();
    files.put("model.safetensors", Files.readAllBytes(weights));
    files.put("config.json", "{\"model_type\":\"tiny\"}".getBytes(StandardCharsets.UTF_8));
    files.put("tokenizer.json", "{\"version\":\"1.0\"}".getBytes(StandardCharsets.UTF_8));
    files.put("README.md", "# tiny".getBytes(StandardCharsets.UTF_8));
    hub = new FakeHub(MODEL, COMMIT, files);
    cache = HubCache.at(dir.resolve("hub"));
  }

  @AfterEach
  void stop() {
    hub.close();
  }

  private RemoteOptions remote() {
    // Small ranges, so that the 1.2 MB weights take several requests.
    return RemoteOptions.defaults().withEndpoint(hub.endpoint()).withToken("hf_secret").withRangeBytes(64 << 10)
        .withRetries(0);
  }

  private HubDownloader.Result pull() throws IOException {
    return new HubDownloader(cache, remote()).pull(MODEL, "main", HubDownloader.DEFAULT_INCLUDE, quiet);
  }

  private Path repository() {
    return cache.root().resolve("models--org--tiny-model");
  }

  @Test
  void pullsTheHubsLayoutThatHubCacheOpensWithEqualValues() throws IOException {
    HubDownloader.Result result = pull();
    assertEquals(List.of("config.json", "model.safetensors", "tokenizer.json"), result.downloaded());
    assertEquals(List.of(), result.cached());
    assertEquals(COMMIT, Files.readString(repository().resolve("refs/main")));
    Path link = repository().resolve("snapshots").resolve(COMMIT).resolve("model.safetensors");
    String sha = FakeHub.sha256(Files.readAllBytes(weights));
    assertEquals(Path.of("../../blobs/" + sha), Files.readSymbolicLink(link), "a relative link to the SHA-256 blob");
    byte[] config = "{\"model_type\":\"tiny\"}".getBytes(StandardCharsets.UTF_8);
    assertEquals(Path.of("../../blobs/" + FakeHub.gitBlobId(config)),
        Files.readSymbolicLink(link.resolveSibling("config.json")), "a small file's blob is named by its git blob id");
    assertFalse(Files.exists(link.resolveSibling("README.md"), java.nio.file.LinkOption.NOFOLLOW_LINKS),
        "not in the default include patterns");
    try (Stream<Path> blobs = Files.list(repository().resolve("blobs"))) {
      assertTrue(blobs.noneMatch(b -> b.toString().endsWith(".incomplete")));
    }
    // The token went to the hub only, never to the CDN the hub redirects to.
    assertTrue(hub.authorizations.contains("hub: Bearer hf_secret"), hub.authorizations.toString());
    assertTrue(hub.authorizations.stream().noneMatch(a -> a.startsWith("cdn:")), hub.authorizations.toString());

    try (Checkpoint pulled = cache.open(MODEL);
        Checkpoint original = Checkpoint.open(weights);
        VarStore a = VarStore.fromCheckpoint(pulled, LoadOptions.defaults());
        VarStore b = VarStore.fromCheckpoint(original, LoadOptions.defaults())) {
      assertEquals(b.variables().size(), a.variables().size());
      for (Variable variable : b.variables()) {
        assertEquals(-1, variable.segment().mismatch(a.variable(variable.name()).segment()), variable.name());
      }
      // verify --sha256's source for a cached file: the blob's name.
      List<FileHashes.FileHash> hashes = FileHashes.sha256(pulled, Map.of(), 2);
      assertEquals(1, hashes.size());
      assertTrue(hashes.getFirst().checked() && !hashes.getFirst().mismatched(), hashes.toString());
      assertEquals("the cache's blob name", hashes.getFirst().expectedFrom());
    }
  }

  @Test
  void anInterruptedPullResumesFromThePartialBlobAndFetchesOnlyTheRest() throws IOException, InterruptedException {
    long size = Files.size(weights);
    hub.cutFromRequest = 3;   // three whole ranges of 64 KiB, then every body is cut mid-way
    IOException first = assertThrows(IOException.class, this::pull);
    assertTrue(first.getMessage().contains("model.safetensors"), first.getMessage());
    String sha = FakeHub.sha256(Files.readAllBytes(weights));
    Path partial = repository().resolve("blobs").resolve(sha + ".incomplete");
    Path link = repository().resolve("snapshots").resolve(COMMIT).resolve("model.safetensors");
    assertFalse(Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS), "no link to an unfinished blob");
    long kept = Files.size(partial);
    // The ranges in flight arrive in any order: the partial blob keeps the whole ranges that
    // precede the first cut one, the first range among them.
    assertTrue(kept > 0 && kept <= 3 * (64 << 10) && kept % (64 << 10) == 0, "kept " + kept);
    // HubCache refuses the half-pulled model, naming the partial download.
    CheckpointException incomplete = assertThrows(CheckpointException.class, () -> cache.open(MODEL));
    assertEquals(Reason.NO_WEIGHTS, incomplete.reason());
    assertTrue(incomplete.getMessage().contains("1 partial download(s)"), incomplete.getMessage());

    hub.cutFromRequest = -1;
    hub.awaitIdle();
    hub.cdnBytes.set(0);
    HubDownloader.Result second = pull();
    assertEquals(size - kept, hub.cdnBytes.get(), "the second pull fetches only the rest");
    assertTrue(second.downloaded().contains("model.safetensors"));
    assertTrue(second.bytesDownloaded() >= size - kept, second.toString());
    assertFalse(Files.exists(partial));
    assertEquals(sha, FakeHub.sha256(Files.readAllBytes(link)));
  }

  @Test
  void aCorruptedBodyFailsNamingTheFileAndBothHashesAndLeavesNoLinkToABadBlob() throws IOException {
    hub.corrupt = "model.safetensors";
    CheckpointException e = assertThrows(CheckpointException.class, this::pull);
    String sha = FakeHub.sha256(Files.readAllBytes(weights));
    assertEquals(Reason.SHA256_MISMATCH, e.reason());
    assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("expected " + sha), e.getMessage());
    assertTrue(e.getMessage().matches(".*has SHA-256 [0-9a-f]{64}, expected.*"), e.getMessage());
    Path blobs = repository().resolve("blobs");
    assertFalse(Files.exists(blobs.resolve(sha)));
    assertFalse(Files.exists(blobs.resolve(sha + ".incomplete")), "the partial blob is deleted");
    assertFalse(Files.exists(repository().resolve("snapshots").resolve(COMMIT).resolve("model.safetensors"),
        java.nio.file.LinkOption.NOFOLLOW_LINKS));
  }

  @Test
  void filesAlreadyInTheCacheAreNotFetchedAgain() throws IOException {
    pull();
    hub.cdnBytes.set(0);
    hub.cdnRequests.clear();
    HubDownloader.Result again = pull();
    assertEquals(List.of("config.json", "model.safetensors", "tokenizer.json"), again.cached());
    assertEquals(List.of(), again.downloaded());
    assertEquals(0, hub.cdnBytes.get());
    assertEquals(List.of(), hub.cdnRequests);
    // A snapshot link removed while its blob stayed: linked again, not downloaded.
    Path link = repository().resolve("snapshots").resolve(COMMIT).resolve("model.safetensors");
    Files.delete(link);
    HubDownloader.Result relinked = pull();
    assertEquals(List.of("config.json", "model.safetensors", "tokenizer.json"), relinked.cached());
    assertEquals(List.of(), hub.cdnRequests);
    assertTrue(Files.isSymbolicLink(link));
  }

  @Test
  void aRemoteFileIsHashedByRangeReadsAndCheckedAgainstTheHubsLinkedEtag() throws IOException {
    String sha = FakeHub.sha256(Files.readAllBytes(weights));
    try (Checkpoint remote = Checkpoint.open(hub.endpoint() + "/" + MODEL + "/resolve/main/", remote())) {
      hub.cdnBytes.set(0);
      List<FileHashes.FileHash> hashes = FileHashes.sha256(remote, Map.of(), 2);
      assertEquals(1, hashes.size());
      FileHashes.FileHash hash = hashes.getFirst();
      assertEquals(sha, hash.sha256());
      assertEquals(java.util.Optional.of(sha), hash.expected());
      assertEquals("the hub's X-Linked-Etag", hash.expectedFrom());
      assertEquals(Files.size(weights), hub.cdnBytes.get(), "streamed once");
      // A given hash wins, and a wrong one is a mismatch naming the file and both hashes.
      String wrong = "f".repeat(64);
      FileHashes.FileHash given = FileHashes.sha256(remote, Map.of("model.safetensors", wrong), 1).getFirst();
      assertTrue(given.mismatched());
      assertEquals(hub.endpoint() + "/" + MODEL + "/resolve/main/model.safetensors: SHA256_MISMATCH: SHA-256 " + sha
          + ", expected " + wrong + " (given) (rule: " + Reason.SHA256_MISMATCH.rule() + ")", given.mismatch().getMessage());
      IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
          () -> FileHashes.sha256(remote, Map.of("other.safetensors", wrong), 1));
      assertTrue(unknown.getMessage().contains("no file 'other.safetensors'"), unknown.getMessage());
    }
  }

  @Test
  void aRemoteCopyLoadHashesTheFileInTheSamePassTensorsNotLoadedIncluded() throws IOException {
    String sha = FakeHub.sha256(Files.readAllBytes(weights));
    try (Checkpoint remote = Checkpoint.open(hub.endpoint() + "/" + MODEL + "/resolve/main/", remote());
        VarStore store = new VarStore()) {
      // w1 has no variable: its bytes, and the header's, are read by range requests only to be hashed.
      for (TensorView tensor : remote.tensors()) {
        if (!tensor.name().equals("w1")) {
          store.root().zeros(tensor.name(), tensor.dtype(), tensor.shape());
        }
      }
      hub.cdnBytes.set(0);
      dev.loadstone.store.LoadReport report = store.load(remote, LoadOptions.defaults().partial().withThreads(3)
          .withExpectedSha256(Map.of("model.safetensors", sha)));
      assertEquals(Map.of(remote.files().getFirst(), sha), report.sha256());
      assertEquals(List.of("w0", "w2"), report.loaded());
      assertEquals(Files.size(weights), hub.cdnBytes.get(), "every byte read once");
      String wrong = "1".repeat(64);
      dev.loadstone.store.LoadException e = assertThrows(dev.loadstone.store.LoadException.class, () -> store.load(
          remote, LoadOptions.defaults().partial().withExpectedSha256(Map.of("model.safetensors", wrong))));
      assertTrue(e.getMessage().contains("SHA-256 " + sha + ", expected " + wrong), e.getMessage());
      assertFalse(store.variable("w0").isLoaded());
    }
  }

  @Test
  void aRealFileInTheCacheHasNoBlobNameToCheckAgainst() throws IOException {
    pull();
    Path link = repository().resolve("snapshots").resolve(COMMIT).resolve("model.safetensors");
    Path blob = link.resolveSibling(Files.readSymbolicLink(link)).normalize();
    Files.delete(link);
    Files.copy(blob, link);
    try (Checkpoint cached = cache.open(MODEL)) {
      FileHashes.FileHash hash = FileHashes.sha256(cached, Map.of(), 1).getFirst();
      assertFalse(hash.checked(), "hashed, not checked");
      assertEquals(FakeHub.sha256(Files.readAllBytes(weights)), hash.sha256());
    }
    assertEquals(java.util.Optional.empty(), HubCache.blobSha256(link));
  }

  @Test
  void anUnknownModelOrRevisionNamesTheUrl() {
    java.nio.file.NoSuchFileException e = assertThrows(java.nio.file.NoSuchFileException.class,
        () -> new HubDownloader(cache, remote()).pull(MODEL, "v9", HubDownloader.DEFAULT_INCLUDE, quiet));
    assertTrue(e.getMessage().contains("/api/models/org/tiny-model/revision/v9"), e.getMessage());
    assertTrue(e.getMessage().contains("no model org/tiny-model at revision v9"), e.getMessage());
  }

  @Test
  void includePatternsAreFnmatchPatterns() {
    assertTrue(HubDownloader.fnmatch("*.json").matcher("sub/config.json").matches());
    assertFalse(HubDownloader.fnmatch("*.json").matcher("config.jsonl").matches());
    assertTrue(HubDownloader.fnmatch("model-0000?-of-*.safetensors").matcher("model-00001-of-00002.safetensors").matches());
    assertTrue(HubDownloader.fnmatch("original/").matcher("original/params.json").matches());
    assertTrue(HubDownloader.fnmatch("[!a]*.txt").matcher("merges.txt").matches());
    assertFalse(HubDownloader.fnmatch("[!m]*.txt").matcher("merges.txt").matches());
  }
}
