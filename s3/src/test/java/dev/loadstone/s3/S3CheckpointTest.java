package dev.loadstone.s3;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.s3.testing.S3Server;
import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.checkpoint.CheckpointWriter;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.VarStore;
import dev.loadstone.store.Variable;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code s3://} checkpoints against a real S3-compatible server on loopback ({@link S3Server}:
 * S3Proxy with AWS v4 signatures), found through the same environment a user sets
 * ({@code aws.endpointUrlS3}, the SDK's credential and region properties): opened by the header
 * alone, loaded into the same bytes as the local checkpoint, and failing with the URL named
 * where something is missing or changed.
 */
class S3CheckpointTest {
  static final String BUCKET = "models";
  static S3Server server;
  @TempDir Path local;

  @BeforeAll
  static void start() throws Exception {
    server = new S3Server();
    server.bucket(BUCKET);
    server.configureClients();
  }

  @AfterAll
  static void stop() throws Exception {
    S3Server.clearClients();
    server.close();
  }

  /** Small ranges, so that every load crosses many of them. */
  static RemoteOptions options() {
    return RemoteOptions.defaults().withConcurrency(4).withRangeBytes(64 << 10).withRetries(2)
        .withStallTimeout(Duration.ofSeconds(5));
  }

  /** BF16 and F32 tensors of random values, {@code scale} x about 0.5 MiB in all. */
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

  /** Writes a single-file checkpoint locally and uploads it as {@code prefix/model.safetensors}. */
  Path upload(String prefix, List<TensorView> tensors) throws IOException {
    Path folder = Files.createDirectories(local.resolve(prefix));
    SafeTensorsWriter.write(folder.resolve("model.safetensors"), null, tensors);
    server.putFolder(BUCKET, prefix + "/", folder);
    return folder;
  }

  static List<String> names(Checkpoint checkpoint) {
    return checkpoint.tensors().stream().map(TensorView::name).toList();
  }

  static String url(String key) {
    return "s3://" + BUCKET + "/" + key;
  }

  static void assertSameLoad(Checkpoint expectedFrom, Checkpoint actualFrom, LoadOptions options) throws IOException {
    try (VarStore expected = VarStore.fromCheckpoint(expectedFrom, options);
         VarStore actual = VarStore.fromCheckpoint(actualFrom, options)) {
      assertEquals(expected.variables().size(), actual.variables().size());
      for (Variable variable : expected.variables()) {
        Variable other = actual.variable(variable.name());
        assertTrue(other.isLoaded(), variable.name());
        assertEquals(variable.dtype(), other.dtype(), variable.name());
        assertArrayEquals(variable.segment().toArray(ValueLayout.JAVA_BYTE), other.segment().toArray(ValueLayout.JAVA_BYTE),
            variable.name());
      }
    }
  }

  @Test
  void anObjectOpensByItsHeaderAlone() throws IOException {
    Path folder = upload("header-only", tensors(8, 1));
    long size = Files.size(folder.resolve("model.safetensors"));
    for (String location : List.of(url("header-only/model.safetensors"), url("header-only/"), url("header-only"))) {
      server.resetCount();
      try (Checkpoint remote = Checkpoint.open(location, options());
           Checkpoint expected = Checkpoint.open(folder)) {
        assertTrue(remote.isRemote());
        assertEquals(names(expected), names(remote));
        for (TensorView tensor : expected.tensors()) {
          TensorView other = remote.find(tensor.name()).orElseThrow();
          assertEquals(tensor.dtype(), other.dtype());
          assertArrayEquals(tensor.shape(), other.shape());
          assertArrayEquals(tensor.dataOffsets(), other.dataOffsets());
        }
        assertEquals(url("header-only/model.safetensors"), remote.files().getFirst().toString());
      }
      // One 32 KiB range and its response headers, of a file of about 4 MiB.
      long sent = server.bytesToClient();
      assertTrue(sent > 0 && sent < 40_000, location + ": " + sent + " bytes sent of a " + size + "-byte object");
    }
  }

  @Test
  void aCopyLoadReadsTheSameBytesAsALocalLoadConvertingOnTheWay() throws IOException {
    Path folder = upload("copy", tensors(3, 2));
    try (Checkpoint remote = Checkpoint.open(url("copy/"), options()); Checkpoint expected = Checkpoint.open(folder)) {
      assertSameLoad(expected, remote, LoadOptions.defaults());
      assertSameLoad(expected, remote, LoadOptions.defaults().withCreateDType(DType.F32));
      try (VarStore store = VarStore.declaredFor(remote, LoadOptions.defaults())) {
        LoadReport report = store.load(remote, LoadOptions.defaults());
        long dataBytes = expected.totalSize();
        assertEquals(dataBytes, report.bytesRead(), report.summary());
        assertEquals(List.of(remote.files().getFirst()), List.copyOf(report.readDirectly()));
      }
    }
  }

  @Test
  void aShardedModelLoadsFromAPrefix() throws IOException {
    Path folder = local.resolve("sharded");
    CheckpointWriter.write(folder, null, tensors(2, 3), 300_000);
    server.putFolder(BUCKET, "sharded/", folder);
    try (Checkpoint remote = Checkpoint.open(url("sharded"), options()); Checkpoint expected = Checkpoint.open(folder)) {
      assertTrue(remote.files().size() > 2, remote.files().toString());
      assertEquals(url("sharded/model.safetensors.index.json"), remote.path().toString());
      assertSameLoad(expected, remote, LoadOptions.defaults().withCreateDType(DType.F32));
    }
  }

  @Test
  void aPartialLoadReadsOnlyTheTensorsItLoads() throws IOException {
    Path folder = upload("partial", tensors(4, 4));
    try (Checkpoint remote = Checkpoint.open(url("partial/"), options()); Checkpoint expected = Checkpoint.open(folder);
         VarStore store = new VarStore(); VarStore reference = new VarStore()) {
      TensorView wanted = expected.find("layers.2.w").orElseThrow();
      for (VarStore s : List.of(store, reference)) {
        s.root().zeros("layers.2.w", DType.F32, wanted.shape());
        s.root().zeros("not.in.checkpoint", DType.F32, 4);
      }
      server.resetCount();
      LoadReport report = store.load(remote, LoadOptions.defaults().partial());
      reference.load(expected, LoadOptions.defaults().partial());
      assertEquals(List.of("layers.2.w"), report.loaded());
      assertEquals(List.of("not.in.checkpoint"), report.missing());
      assertEquals(wanted.byteSize(), report.bytesRead());
      assertTrue(server.bytesToClient() < wanted.byteSize() + 64 * 1024,
          server.bytesToClient() + " bytes sent for a tensor of " + wanted.byteSize());
      assertArrayEquals(reference.variable("layers.2.w").segment().toArray(ValueLayout.JAVA_BYTE),
          store.variable("layers.2.w").segment().toArray(ValueLayout.JAVA_BYTE));
    }
  }

  @Test
  void whatIsMissingIsNamed() throws IOException {
    NoSuchFileException key = assertThrows(NoSuchFileException.class,
        () -> Checkpoint.open(url("absent/model.safetensors"), options()).close());
    assertTrue(key.getMessage().contains(url("absent/model.safetensors")), key.getMessage());
    assertTrue(key.getMessage().contains("no key 'absent/model.safetensors' in bucket 'models'"), key.getMessage());

    CheckpointException empty = assertThrows(CheckpointException.class,
        () -> Checkpoint.open(url("nothing-here/"), options()).close());
    assertEquals(Reason.NO_WEIGHTS, empty.reason());
    assertTrue(empty.getMessage().contains(url("nothing-here/")), empty.getMessage());

    CheckpointException bucket = assertThrows(CheckpointException.class,
        () -> Checkpoint.open("s3://no-such-bucket/m/", options()).close());
    assertEquals(Reason.MISSING_BUCKET, bucket.reason());
    assertTrue(bucket.getMessage().contains("s3://no-such-bucket/m/"), bucket.getMessage());
    assertTrue(bucket.getMessage().contains("no bucket 'no-such-bucket'"), bucket.getMessage());
    assertFalse(bucket.getMessage().contains(S3Server.SECRET_KEY), bucket.getMessage());

    Path folder = local.resolve("missing-shard");
    CheckpointWriter.write(folder, null, tensors(1, 5), 200_000);
    try (var files = Files.list(folder)) {
      for (Path file : files.toList()) {
        if (!file.getFileName().toString().contains("-00002-of-")) {
          server.put(BUCKET, "missing-shard/" + file.getFileName(), Files.readAllBytes(file));
        }
      }
    }
    CheckpointException shard = assertThrows(CheckpointException.class,
        () -> Checkpoint.open(url("missing-shard/"), options()).close());
    assertEquals(Reason.MISSING_SHARD, shard.reason());
    assertTrue(shard.getMessage().contains(url("missing-shard/")), shard.getMessage());
  }

  @Test
  void aConnectionResetMidBodyIsRetriedFromTheFirstMissingByte() throws IOException {
    Path folder = upload("reset", tensors(4, 7));
    try (Checkpoint remote = Checkpoint.open(url("reset/"), options().withConcurrency(1));
         Checkpoint expected = Checkpoint.open(folder)) {
      server.resetOnceAfter(100_000);   // within the second 64 KiB range
      assertSameLoad(expected, remote, LoadOptions.defaults().withThreads(1));
      assertFalse(server.resetPending(), "the connection was dropped in the middle of a response");
    }
  }

  @Test
  void anObjectThatChangesDuringTheLoadFailsIt() throws IOException {
    List<TensorView> tensors = tensors(4, 6);
    Path folder = upload("changing", tensors);
    byte[] other = Files.readAllBytes(folder.resolve("model.safetensors"));
    other[other.length - 1] ^= 1;   // same size, another ETag
    AtomicBoolean replaced = new AtomicBoolean();
    RemoteOptions slow = options().withConcurrency(1);
    try (Checkpoint remote = Checkpoint.open(url("changing/model.safetensors"), slow);
         VarStore store = VarStore.declaredFor(remote, LoadOptions.defaults())) {
      LoadOptions load = LoadOptions.defaults().withThreads(1).withProgress((done, total, tensor) -> {
        if (replaced.compareAndSet(false, true)) {
          server.put(BUCKET, "changing/model.safetensors", other);
        }
      });
      LoadException e = assertThrows(LoadException.class, () -> store.load(remote, load));
      assertTrue(replaced.get());
      assertTrue(e.getMessage().startsWith(url("changing/model.safetensors") + ": tensor '"), e.getMessage());
      assertTrue(e.getMessage().contains("changed since it was opened"), e.getMessage());
      assertTrue(e.report().loaded().isEmpty(), e.report().summary());
      for (Variable variable : store.variables()) {
        assertFalse(variable.isLoaded(), variable.name());
      }
    }
  }
}
