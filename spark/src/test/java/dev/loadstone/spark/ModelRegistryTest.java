package dev.loadstone.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.PartitionRules;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelRegistryTest {
  static final Path FORTUNE = Path.of("..", "examples", "fortune-llama").toAbsolutePath().normalize();

  /** A model that counts its closes. */
  static final class Model implements AutoCloseable {
    final AtomicInteger closes = new AtomicInteger();

    @Override
    public void close() {
      closes.incrementAndGet();
    }
  }

  /** A loader whose loads wait for {@code gate}, count themselves, and fail while {@code fail} is set. */
  static final class Counting implements ModelLoader<Model> {
    final AtomicInteger loads = new AtomicInteger();
    final CountDownLatch started = new CountDownLatch(1);
    volatile CountDownLatch gate = new CountDownLatch(0);
    volatile boolean fail;

    @Override
    public String name() {
      return "test.counting";
    }

    @Override
    public Model load(ModelManifest manifest) throws IOException {
      loads.incrementAndGet();
      started.countDown();
      try {
        gate.await();
      } catch (InterruptedException e) {
        throw new IOException(e);
      }
      if (fail) {
        throw new IOException(manifest.location() + ": refused by the test");
      }
      return new Model();
    }
  }

  @Test
  void threadsThatArriveDuringALoadWaitForItAndShareTheModel() throws Exception {
    ModelRegistry registry = new ModelRegistry();
    Counting loader = new Counting();
    loader.gate = new CountDownLatch(1);
    ModelManifest manifest = ModelManifest.of("/models/a");
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<Future<ModelRegistry.Handle<Model>>> handles = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        handles.add(pool.submit(() -> registry.acquire(manifest, loader)));
      }
      assertTrue(loader.started.await(10, TimeUnit.SECONDS));
      Thread.sleep(100);   // let the others reach the wait
      loader.gate.countDown();
      Model first = handles.getFirst().get(10, TimeUnit.SECONDS).get();
      for (Future<ModelRegistry.Handle<Model>> handle : handles) {
        assertSame(first, handle.get(10, TimeUnit.SECONDS).get());
      }
      assertEquals(1, loader.loads.get());
      assertEquals(1, registry.loadCount(manifest, loader));
      for (Future<ModelRegistry.Handle<Model>> handle : handles) {
        handle.get().close();
      }
      assertEquals(0, first.closes.get(), "an idle model stays open for the next task");
      try (ModelRegistry.Handle<Model> again = registry.acquire(manifest, loader)) {
        assertSame(first, again.get());
      }
      assertEquals(1, loader.loads.get());
      registry.closeIdle();
      assertEquals(1, first.closes.get());
      assertEquals(new ModelRegistry.Stats(1, 0, 1, 0), registry.stats());
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aFailedLoadReachesEveryWaiterAndIsNotCached() throws Exception {
    ModelRegistry registry = new ModelRegistry();
    Counting loader = new Counting();
    loader.gate = new CountDownLatch(1);
    loader.fail = true;
    ModelManifest manifest = ModelManifest.of("/models/broken");
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<ModelRegistry.Handle<Model>>> handles = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        handles.add(pool.submit(() -> registry.acquire(manifest, loader)));
      }
      assertTrue(loader.started.await(10, TimeUnit.SECONDS));
      Thread.sleep(100);
      loader.gate.countDown();
      for (Future<ModelRegistry.Handle<Model>> handle : handles) {
        Exception e = assertThrows(Exception.class, () -> handle.get(10, TimeUnit.SECONDS));
        IOException failure = assertInstanceOf(IOException.class, e.getCause());
        String message = failure.getMessage() + " " + failure.getCause();
        assertTrue(message.contains("/models/broken: refused by the test"), message);
      }
      assertEquals(1, loader.loads.get(), "one load, its failure told to all four");
      loader.fail = false;
      try (ModelRegistry.Handle<Model> handle = registry.acquire(manifest, loader)) {
        assertFalse(handle.get() == null);
      }
      assertEquals(2, loader.loads.get(), "the failure was not cached");
      assertEquals(2, registry.stats().loads());
      assertEquals(1, registry.stats().failures());
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aWaiterInterruptedGivesUpItsUseAndTheLoadGoesOn() throws Exception {
    ModelRegistry registry = new ModelRegistry();
    Counting loader = new Counting();
    loader.gate = new CountDownLatch(1);
    ModelManifest manifest = ModelManifest.of("/models/slow");
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      Future<ModelRegistry.Handle<Model>> loading = pool.submit(() -> registry.acquire(manifest, loader));
      assertTrue(loader.started.await(10, TimeUnit.SECONDS));
      java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
      Thread waiter = new Thread(() -> {
        try {
          registry.acquire(manifest, loader).close();
        } catch (Throwable t) {
          failure.set(t);
        }
      });
      waiter.start();
      Thread.sleep(200);
      waiter.interrupt();   // as Spark does when it kills a task
      waiter.join(10_000);
      assertInstanceOf(java.io.InterruptedIOException.class, failure.get());
      loader.gate.countDown();
      ModelRegistry.Handle<Model> handle = loading.get(10, TimeUnit.SECONDS);
      Model model = handle.get();
      handle.close();
      registry.closeIdle();
      assertEquals(1, model.closes.get(), "the interrupted waiter holds no use: the model was idle");
      assertEquals(1, loader.loads.get());
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void closeAllClosesAHeldModelAtItsLastReleaseAndLaterAcquiresLoadAfresh() throws Exception {
    ModelRegistry registry = new ModelRegistry();
    Counting loader = new Counting();
    ModelManifest manifest = ModelManifest.of("/models/b");
    ModelRegistry.Handle<Model> a = registry.acquire(manifest, loader);
    ModelRegistry.Handle<Model> b = registry.acquire(manifest, loader);
    Model model = a.get();
    registry.closeAll();
    assertEquals(0, model.closes.get(), "in use: not closed under its users");
    a.close();
    a.close();   // idempotent: one release
    assertEquals(0, model.closes.get());
    assertThrows(IllegalStateException.class, a::get);
    b.close();
    assertEquals(1, model.closes.get());
    try (ModelRegistry.Handle<Model> c = registry.acquire(manifest, loader)) {
      assertNotSame(model, c.get());
    }
    assertEquals(2, loader.loads.get());
  }

  @Test
  void everyPartOfTheManifestIsPartOfTheKey() throws Exception {
    ModelRegistry registry = new ModelRegistry();
    Counting loader = new Counting();
    ModelManifest base = ModelManifest.of("/models/c");
    List<ModelManifest> manifests = List.of(base, base.withRevision("v2"), base.withMode(LoadMode.COPY),
        base.withThreads(3), base.withPartition(PartitionRules.llama()).forRank(1, 2),
        base.withExpectedSha256(Map.of("model.safetensors", "ab".repeat(32))));
    for (ModelManifest manifest : manifests) {
      registry.acquire(manifest, loader).close();
      registry.acquire(manifest, loader).close();
    }
    assertEquals(manifests.size(), loader.loads.get());
    registry.acquire(ModelManifest.of("/models/c"), loader).close();
    assertEquals(manifests.size(), loader.loads.get(), "an equal manifest finds the loaded model");
  }

  @Test
  void theManifestIsSmallAndSurvivesSerialization() throws Exception {
    ModelManifest manifest = ModelManifest.of(FORTUNE.toString()).withRevision("r1")
        .withExpectedSha256(Map.of("model.safetensors", "AB".repeat(32)))
        .withPartition(PartitionRules.llama(8, 4, 32)).withMode(LoadMode.COPY).forRank(1, 2);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(manifest);
    }
    assertTrue(bytes.size() < 2048, "the manifest takes " + bytes.size() + " bytes");
    try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      ModelManifest back = (ModelManifest) in.readObject();
      assertEquals(manifest, back);
      assertEquals(manifest.hashCode(), back.hashCode());
      assertEquals("ab".repeat(32), back.expectedSha256().get("model.safetensors"));
      assertEquals(1, back.partition().rank());
    }
  }

  @Test
  void badManifestsAreRefusedNamingTheProblem() {
    IllegalArgumentException hash = assertThrows(IllegalArgumentException.class,
        () -> ModelManifest.of("/m").withExpectedSha256(Map.of("model.safetensors", "xyz")));
    assertTrue(hash.getMessage().contains("model.safetensors") && hash.getMessage().contains("/m"), hash.getMessage());
    IllegalArgumentException rank = assertThrows(IllegalArgumentException.class,
        () -> ModelManifest.of("/m").withPartition(PartitionRules.llama()).forRank(2, 2));
    assertTrue(rank.getMessage().contains("rank 2 of world 2"), rank.getMessage());
    IllegalArgumentException rules = assertThrows(IllegalArgumentException.class,
        () -> ModelManifest.of("/m").forRank(0, 2));
    assertTrue(rules.getMessage().contains("partition rules"), rules.getMessage());
  }

  @Test
  void aCheckpointWhoseHashDiffersFailsItsLoadNamingTheFile(@TempDir Path dir) throws Exception {
    Files.copy(FORTUNE.resolve("model.safetensors"), dir.resolve("model.safetensors"));
    ModelRegistry registry = new ModelRegistry();
    ModelManifest manifest = ModelManifest.of(dir.toString()).withExpectedSha256(Map.of("model.safetensors", "0".repeat(64)));
    CheckpointException e = assertThrows(CheckpointException.class, () -> registry.acquire(manifest, ModelLoader.checkpoint()));
    assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("0".repeat(64)), e.getMessage());
    assertEquals(0, registry.stats().open());
  }

  @Test
  void theCheckpointLoaderAliasesByDefault() throws Exception {
    ModelRegistry registry = new ModelRegistry();
    try (ModelRegistry.Handle<LoadedCheckpoint> handle = registry.acquire(ModelManifest.of(FORTUNE.toString()),
        ModelLoader.checkpoint())) {
      LoadedCheckpoint loaded = handle.get();
      assertEquals(56, loaded.store().variables().size());
      assertTrue(loaded.store().variables().stream().allMatch(v -> v.isAlias()));
    }
    registry.closeAll();
    assertEquals(1, registry.stats().closes());
  }
}
