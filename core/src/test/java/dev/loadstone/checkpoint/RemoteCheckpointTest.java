package dev.loadstone.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.safetensors.SafeTensorsException;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.Variable;
import dev.loadstone.store.VarStore;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Remote checkpoints served by a real nginx on loopback (see {@link Nginx}): opened by their
 * headers alone, loaded with parallel range requests into the same bytes as a local load,
 * through the hub's resolve redirect to another host name; what is missing or invalid is said
 * as for local files.
 */
class RemoteCheckpointTest {
  static Nginx nginx;
  Path dir;
  String base;

  @BeforeAll
  static void server() {
    nginx = Nginx.get().orElse(null);
  }

  @BeforeEach
  void folder() throws IOException {
    // Each test is reported skipped, with the reason (no server running, none installed).
    assumeTrue(nginx != null, () -> "no nginx: " + Nginx.unavailable());
    base = "t-" + UUID.randomUUID();
    dir = Files.createDirectories(nginx.root().resolve(base));
  }

  /** Small ranges and few retries, so that every test crosses many ranges quickly. */
  static RemoteOptions options(Nginx nginx) {
    return RemoteOptions.defaults().withConcurrency(4).withRangeBytes(64 << 10).withRetries(3)
        .withStallTimeout(Duration.ofSeconds(5)).withToken(null)
        .withEndpoint(URI.create("http://127.0.0.1:" + nginx.port()));
  }

  /** BF16 and F32 tensors of random values, {@code scale} x about 1 MiB in all. */
  static List<TensorView> tensors(int scale, long seed) {
    Random random = new Random(seed);
    List<TensorView> tensors = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      short[] bf16 = new short[scale * 65_536 + 37 * i];
      for (int j = 0; j < bf16.length; j++) {
        bf16[j] = (short) (Float.floatToRawIntBits(random.nextFloat() * 2 - 1) >>> 16);
      }
      tensors.add(TensorView.of("layers." + i + ".w", DType.BF16, new long[] {bf16.length}, MemorySegment.ofArray(bf16)));
      float[] f32 = new float[1000 + i];
      for (int j = 0; j < f32.length; j++) {
        f32[j] = random.nextFloat();
      }
      tensors.add(TensorView.of("layers." + i + ".norm", DType.F32, new long[] {f32.length}, MemorySegment.ofArray(f32)));
    }
    return tensors;
  }

  static byte[] bytes(Variable variable) {
    return variable.segment().toArray(ValueLayout.JAVA_BYTE);
  }

  /** Loads both and compares every variable's bytes. */
  static void assertSameLoad(Checkpoint local, Checkpoint remote, LoadOptions options) throws IOException {
    try (VarStore expected = VarStore.fromCheckpoint(local, options);
         VarStore actual = VarStore.fromCheckpoint(remote, options)) {
      assertEquals(expected.variables().size(), actual.variables().size());
      for (Variable variable : expected.variables()) {
        Variable other = actual.variable(variable.name());
        assertTrue(other.isLoaded(), variable.name());
        assertArrayEquals(bytes(variable), bytes(other), variable.name());
      }
    }
  }

  @Test
  void aRemoteFileOpensByItsHeaderAlone() throws IOException {
    SafeTensorsWriter.write(dir.resolve("model.safetensors"), Map.of("format", "pt"), tensors(4, 1));
    try (FaultProxy proxy = new FaultProxy("127.0.0.1", nginx.url(""));
         Checkpoint remote = Checkpoint.open(proxy.url(base + "/model.safetensors").toString(), options(nginx));
         Checkpoint local = Checkpoint.open(dir.resolve("model.safetensors"))) {
      assertTrue(remote.isRemote());
      assertEquals(local.names(), remote.names());
      for (TensorView tensor : local.tensors()) {
        TensorView other = remote.tensor(tensor.name());
        assertEquals(tensor.dtype(), other.dtype());
        assertArrayEquals(tensor.shape(), other.shape());
        assertArrayEquals(tensor.dataOffsets(), other.dataOffsets());
      }
      assertEquals(local.metadata(), remote.metadata());
      assertEquals(local.totalSize(), remote.totalSize());
      assertEquals(1, proxy.requests().size(), "one range request reads length and header");
      assertTrue(proxy.bodyBytesSent() <= 32 << 10, proxy.bodyBytesSent() + " bytes transferred");
      assertTrue(remote.path().toString().startsWith("http://127.0.0.1:"), remote.path().toString());
      UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
          () -> remote.tensor("layers.0.w").getFloat(0));
      assertTrue(e.getMessage().contains("COPY load"), e.getMessage());
    }
  }

  @Test
  void aHeaderLongerThanTheFirstRangeIsReadWithASecond() throws IOException {
    List<TensorView> many = new ArrayList<>();
    for (int i = 0; i < 400; i++) {
      many.add(TensorView.of("model.layers." + i + ".a.rather.long.name.to.make.the.header.large", DType.F32,
          new long[] {1}, MemorySegment.ofArray(new float[] {i})));
    }
    SafeTensorsWriter.write(dir.resolve("many.safetensors"), null, many);
    try (FaultProxy proxy = new FaultProxy("127.0.0.1", nginx.url(""));
         Checkpoint remote = Checkpoint.open(proxy.url(base + "/many.safetensors").toString(), options(nginx))) {
      assertEquals(400, remote.tensors().size());
      assertEquals(2, proxy.requests().size());
      try (VarStore store = VarStore.fromCheckpoint(remote, LoadOptions.defaults())) {
        assertEquals(399f, store.variable("model.layers.399.a.rather.long.name.to.make.the.header.large")
            .view().getFloat(0));
      }
    }
  }

  @Test
  void aCopyLoadReadsTheSameBytesAsALocalLoadConvertingOnTheWay() throws IOException {
    SafeTensorsWriter.write(dir.resolve("model.safetensors"), Map.of("format", "pt"), tensors(4, 2));
    AtomicLong last = new AtomicLong();
    try (Checkpoint remote = Checkpoint.open(nginx.url(base + "/model.safetensors").toString(), options(nginx));
         Checkpoint local = Checkpoint.open(dir.resolve("model.safetensors"))) {
      assertSameLoad(local, remote, LoadOptions.defaults());   // same dtype: straight into the variables
      assertSameLoad(local, remote, LoadOptions.defaults().withCreateDType(DType.F32)
          .withProgress((done, total, tensor) -> last.accumulateAndGet(done, Math::max)));
      assertEquals(local.totalSize(), last.get());
    }
  }

  @Test
  void aShardedModelLoadsThroughTheHubsResolveRedirectToAnotherHost() throws IOException {
    // nginx redirects /ORG/NAME/resolve/REV/FILE on 127.0.0.1 to /ORG/NAME/FILE on 127.0.0.2;
    // here ORG is this test's folder and NAME is "name".
    Path repo = Files.createDirectories(dir.resolve("name"));
    CheckpointWriter.write(repo, Map.of("format", "pt"), tensors(2, 3), 300_000);
    try (Checkpoint local = Checkpoint.open(repo);
         Checkpoint remote = Checkpoint.open(nginx.url(base + "/name/resolve/main/").toString(), options(nginx))) {
      assertTrue(local.files().size() > 1, local.files().toString());
      assertEquals(local.files().size(), remote.files().size());
      assertTrue(remote.index().isPresent());
      assertEquals(local.names(), remote.names());
      assertSameLoad(local, remote, LoadOptions.defaults().withCreateDType(DType.F32));
    }
  }

  @Test
  void aliasIsRefusedForARemoteCheckpoint() throws IOException {
    SafeTensorsWriter.write(dir.resolve("model.safetensors"), null, tensors(1, 4));
    try (Checkpoint remote = Checkpoint.open(nginx.url(base + "/model.safetensors").toString(), options(nginx))) {
      LoadException e = assertThrows(LoadException.class,
          () -> VarStore.fromCheckpoint(remote, LoadOptions.defaults().withMode(LoadMode.ALIAS)).close());
      assertTrue(e.getMessage().contains("ALIAS") && e.getMessage().contains(nginx.url(base).toString()), e.getMessage());
      assertTrue(e.report().loaded().isEmpty());
    }
  }

  @Test
  void whatIsNotThereIsNamed() throws IOException {
    NoSuchFileException missing = assertThrows(NoSuchFileException.class,
        () -> Checkpoint.open(nginx.url(base + "/absent.safetensors").toString(), options(nginx)).close());
    assertTrue(missing.getFile().endsWith(base + "/absent.safetensors"), missing.getFile());
    CheckpointException empty = assertThrows(CheckpointException.class,
        () -> Checkpoint.open(nginx.url(base + "/").toString(), options(nginx)).close());
    assertEquals(Reason.NO_WEIGHTS, empty.reason());
  }

  @Test
  void anIndexNamingAMissingShardIsRefused() throws IOException {
    CheckpointWriter.write(dir, Map.of("format", "pt"), tensors(1, 5), 200_000);
    Path shard;
    try (var files = Files.list(dir)) {
      shard = files.filter(f -> f.getFileName().toString().startsWith("model-00002")).findFirst().orElseThrow();
    }
    Files.delete(shard);
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> Checkpoint.open(nginx.url(base + "/").toString(), options(nginx)).close());
    assertEquals(Reason.MISSING_SHARD, e.reason());
    assertTrue(e.getMessage().contains(shard.getFileName().toString()), e.getMessage());
  }

  @Test
  void aRemoteHeaderIsValidatedAsALocalOne() throws IOException {
    String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}";
    byte[] json = header.getBytes(StandardCharsets.UTF_8);
    byte[] file = ByteBuffer.allocate(8 + json.length + 4).order(ByteOrder.LITTLE_ENDIAN)
        .putLong(json.length).put(json).put(new byte[4]).array();
    Files.write(dir.resolve("bad.safetensors"), file);
    SafeTensorsException local = assertThrows(SafeTensorsException.class,
        () -> Checkpoint.open(dir.resolve("bad.safetensors")).close());
    SafeTensorsException remote = assertThrows(SafeTensorsException.class,
        () -> Checkpoint.open(nginx.url(base + "/bad.safetensors").toString(), options(nginx)).close());
    assertEquals(local.reason(), remote.reason());
    assertEquals(Reason.SIZE_MISMATCH, remote.reason());
    assertTrue(remote.getMessage().startsWith(nginx.url(base + "/bad.safetensors").toString()), remote.getMessage());
    Files.write(dir.resolve("empty.safetensors"), new byte[0]);
    assertEquals(Reason.FILE_TOO_SMALL, assertThrows(SafeTensorsException.class,
        () -> Checkpoint.open(nginx.url(base + "/empty.safetensors").toString(), options(nginx)).close()).reason());
    assertFalse(Files.exists(dir.resolve("nothing-written-here")));
  }

  @Test
  void aRemoteIndexCannotNameAShardOutsideItsDirectory() throws IOException {
    Files.writeString(dir.resolve(Checkpoint.INDEX_FILE_NAME),
        "{\"weight_map\": {\"a\": \"../elsewhere/model.safetensors\"}}");
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> Checkpoint.open(nginx.url(base + "/").toString(), options(nginx)).close());
    assertEquals(Reason.INVALID_SHARD_NAME, e.reason());
    assertEquals("a", e.tensor().orElseThrow());
  }
}
