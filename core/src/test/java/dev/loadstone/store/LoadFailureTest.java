package dev.loadstone.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loads that fail midway: exceptions that name the file and tensor, never a crash. */
class LoadFailureTest {
  @TempDir Path dir;

  private Path writeTwoTensors() throws IOException {
    Path file = dir.resolve("shard.safetensors");
    MemorySegment small = Arena.ofAuto().allocate(64 * 4);
    MemorySegment big = Arena.ofAuto().allocate(16L << 20);
    big.fill((byte) 0x3f);
    SafeTensorsWriter.write(file, null, List.of(
        TensorView.of("a.small", DType.F32, new long[] {64}, small),
        TensorView.of("b.big", DType.BF16, new long[] {8L << 20}, big)));
    return file;
  }

  @Test
  void shardTruncatedAfterOpeningFailsWithTheFileAndTensorNamed() throws IOException {
    Path file = writeTwoTensors();
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      Variable small = store.root().sub("a").zeros("small", DType.F32, 64);
      Variable big = store.root().sub("b").zeros("big", DType.F32, 8L << 20);
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
        channel.truncate(channel.size() / 2);
      }
      LoadException e = assertThrows(LoadException.class,
          () -> store.load(checkpoint, LoadOptions.defaults().withThreads(2)));
      assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
      assertTrue(e.getMessage().contains("b.big"), e.getMessage());
      assertTrue(e.report().loaded().isEmpty());
      assertFalse(big.isLoaded(), "a half-written variable never claims to be loaded");
      assertFalse(small.isLoaded(), "no variable of a failed load claims to be loaded");
    }
  }

  @Test
  void truncationUnderACompiledConversionKernelIsAnExceptionNotACrash() throws IOException {
    Path file = writeTwoTensors();
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      store.root().sub("a").zeros("small", DType.F32, 64);
      Variable big = store.root().sub("b").zeros("big", DType.F32, 8L << 20);
      // Warm the BF16 -> F32 path on the mapping until the JIT compiles it: a fault in compiled
      // vector code used to take the JVM down.
      for (int round = 0; round < 40; round++) {
        store.load(checkpoint, LoadOptions.defaults().withThreads(1).withReleaseMappedPages(false));
      }
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
        channel.truncate(channel.size() / 3);
      }
      LoadException e = assertThrows(LoadException.class,
          () -> store.load(checkpoint, LoadOptions.defaults().withThreads(2)));
      assertTrue(e.getMessage().contains("b.big"), e.getMessage());
      assertFalse(big.isLoaded());
    }
  }

  @Test
  void closingTheCheckpointDuringALoadFailsCleanly() throws Exception {
    Path file = writeTwoTensors();
    for (int round = 0; round < 40; round++) {
      try (VarStore store = new VarStore()) {
        store.root().sub("a").zeros("small", DType.F32, 64);
        Variable big = store.root().sub("b").zeros("big", DType.F32, 8L << 20);
        store.allocate(1);
        Checkpoint checkpoint = Checkpoint.open(file);
        CountDownLatch started = new CountDownLatch(1);
        AtomicReference<Throwable> closeFailure = new AtomicReference<>();
        Thread closer = Thread.ofPlatform().start(() -> {
          try {
            started.await();
            checkpoint.close();
          } catch (Throwable e) {
            closeFailure.set(e);
          }
        });
        try {
          store.load(checkpoint, LoadOptions.defaults().withThreads(2)
              .withProgress((done, total, tensor) -> started.countDown()));
          assertTrue(big.isLoaded(), "a load that finished first is complete");
        } catch (LoadException e) {
          assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
          assertFalse(big.isLoaded());
        } finally {
          started.countDown();
          closer.join();
        }
        assertNull(closeFailure.get(), "close() during a load unmaps, whatever the load is doing");
        assertFalse(checkpoint.tensor("b.big").segment().scope().isAlive(), "unmapped (round " + round + ")");
        assertFalse(Thread.interrupted(), "the failed load left the caller's thread interrupted (round " + round + ")");
      }
    }
  }

  @Test
  void aliasesBecomeUnreadableWhenTheCheckpointCloses() throws Exception {
    Path file = writeTwoTensors();
    try (VarStore store = new VarStore()) {
      store.root().sub("a").zeros("small", DType.F32, 64);
      Variable big = store.root().sub("b").zeros("big", DType.BF16, 8L << 20);
      Checkpoint checkpoint = Checkpoint.open(file);
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().withMode(LoadMode.ALIAS));
      assertEquals(0, report.bytesWritten());
      assertTrue(big.isAlias());
      assertTrue(big.segment().isReadOnly());
      assertEquals(checkpoint.tensor("b.big").segment().address(), big.segment().address(), "zero copy");
      assertEquals((short) 0x3f3f, big.segment().get(ValueLayout.JAVA_SHORT_UNALIGNED, 0));

      CountDownLatch reading = new CountDownLatch(1);
      Throwable[] seen = new Throwable[1];
      Thread reader = Thread.ofPlatform().start(() -> {
        MemorySegment memory = big.segment();
        try {
          while (true) {
            memory.get(ValueLayout.JAVA_SHORT_UNALIGNED, (System.nanoTime() & 0xFFFF) * 2);
            reading.countDown();
          }
        } catch (Throwable e) {
          seen[0] = e;
        }
      });
      reading.await();
      checkpoint.close();
      reader.join();
      assertEquals(IllegalStateException.class, seen[0].getClass());
      assertThrows(IllegalStateException.class, () -> big.segment().get(ValueLayout.JAVA_BYTE, 0));
    }
  }

  @Test
  void aliasNeedsEqualDtypes() throws IOException {
    Path file = writeTwoTensors();
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      store.root().sub("a").zeros("small", DType.F32, 64);
      store.root().sub("b").zeros("big", DType.F32, 8L << 20);
      LoadException e = assertThrows(LoadException.class,
          () -> store.load(checkpoint, LoadOptions.defaults().withMode(LoadMode.ALIAS)));
      assertEquals(LoadReport.Mismatch.Kind.DTYPE, e.report().mismatches().getFirst().kind());
      assertEquals("b.big", e.report().mismatches().getFirst().tensor());
    }
  }
}
