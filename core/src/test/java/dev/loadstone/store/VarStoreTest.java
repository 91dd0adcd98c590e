package dev.loadstone.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VarStoreTest {
  @TempDir Path dir;

  private final Arena arena = Arena.ofAuto();

  /** A tensor of random bytes that are valid values of any dtype (no NaN patterns needed). */
  private TensorView random(String name, DType dtype, long seed, long... shape) {
    long elements = 1;
    for (long dim : shape) {
      elements *= dim;
    }
    MemorySegment data = arena.allocate(dtype.byteSize(elements), 8);
    Random random = new Random(seed);
    for (long i = 0; i < data.byteSize(); i++) {
      data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
    }
    return TensorView.of(name, dtype, shape, data);
  }

  private Path write(String file, TensorView... tensors) throws IOException {
    Path path = dir.resolve(file);
    SafeTensorsWriter.write(path, Map.of("format", "pt"), List.of(tensors));
    return path;
  }

  private static void assertSameBits(TensorView expected, Variable actual) {
    assertEquals(expected.byteSize(), actual.byteSize());
    assertEquals(-1L, expected.segment().mismatch(actual.segment()), actual.name() + " differs");
  }

  @Test
  void copyLoadFillsEveryVariableWithTheFileBytes() throws IOException {
    TensorView a = random("model.a.weight", DType.BF16, 1, 3, 5);
    TensorView b = random("model.b.bias", DType.F32, 2, 7);
    TensorView c = random("model.step", DType.I64, 3);
    Path file = write("m.safetensors", a, b, c);
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      Scope model = store.root().sub("model");
      Variable va = model.sub("a").zeros("weight", DType.BF16, 3, 5);
      Variable vb = model.sub("b").zeros("bias", DType.F32, 7);
      Variable vc = model.zeros("step", DType.I64);
      LoadReport report = store.load(checkpoint, LoadOptions.defaults());
      assertTrue(report.isComplete());
      assertEquals(List.of("model.a.weight", "model.b.bias", "model.step"), report.loaded());
      assertEquals(a.byteSize() + b.byteSize() + c.byteSize(), report.bytesRead());
      assertEquals(report.bytesRead(), report.bytesWritten());
      assertSameBits(a, va);
      assertSameBits(b, vb);
      assertSameBits(c, vc);
      assertTrue(va.isLoaded() && vb.isLoaded() && vc.isLoaded());
      assertFalse(va.isAlias());
    }
  }

  @Test
  void copiedVariablesOutliveTheCheckpoint() throws IOException {
    TensorView a = random("w", DType.F32, 4, 16);
    Path file = write("m.safetensors", a);
    try (VarStore store = new VarStore()) {
      Variable w = store.root().zeros("w", DType.F32, 16);
      try (Checkpoint checkpoint = Checkpoint.open(file)) {
        store.load(checkpoint, LoadOptions.defaults());
      }
      TensorView expected = random("w", DType.F32, 4, 16);
      assertSameBits(expected, w);
    }
  }

  @Test
  void copyConvertsEveryFloatDtypeExactlyAsTheCoreDecoders() throws IOException {
    // F64 is left out: converting it to 16 bits rounds once from double (see the core's tests).
    DType[] sources = {DType.BF16, DType.F16, DType.F32, DType.F8_E4M3, DType.F8_E5M2,
        DType.F8_E8M0, DType.F8_E4M3FNUZ, DType.F8_E5M2FNUZ, DType.F4, DType.F6_E2M3, DType.F6_E3M2};
    List<TensorView> tensors = new ArrayList<>();
    for (int i = 0; i < sources.length; i++) {
      tensors.add(random("t" + i, sources[i], 10 + i, 4, 64));
    }
    Path file = write("m.safetensors", tensors.toArray(TensorView[]::new));
    for (DType target : List.of(DType.F32, DType.F16, DType.BF16)) {
      try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
        for (int i = 0; i < sources.length; i++) {
          store.root().zeros("t" + i, target, 4, 64);
        }
        LoadReport report = store.load(checkpoint, LoadOptions.defaults().withThreads(2));
        assertEquals(sources.length - 1, report.conversions().size(), "all but the same-dtype tensor");
        for (int i = 0; i < sources.length; i++) {
          TensorView source = checkpoint.tensor("t" + i);
          Variable variable = store.variable("t" + i);
          TensorView loaded = variable.view();
          for (long e = 0; e < source.elementCount(); e++) {
            long expected = source.dtype() == target ? source.getBits(e)
                : target.encodeFloat(source.getFloat(e));
            assertEquals(expected, loaded.getBits(e),
                source.dtype() + " -> " + target);
          }
        }
      }
    }
  }

  @Test
  void largeTensorsSplitAcrossThreadsLoadExactly() throws IOException {
    // 12 MiB of BF16 spans several chunks; both threads take part.
    TensorView big = random("big", DType.BF16, 5, 3 * 1024, 2048);
    Path file = write("m.safetensors", big);
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      Variable v = store.root().zeros("big", DType.F32, 3 * 1024, 2048);
      AtomicLong last = new AtomicLong();
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().withThreads(2)
          .withProgress((done, total, tensor) -> last.accumulateAndGet(done, Math::max)));
      assertEquals(big.byteSize(), last.get(), "progress ends at the total");
      assertEquals(big.byteSize() * 2, report.bytesWritten());
      MemorySegment loaded = v.segment();
      TensorView source = checkpoint.tensor("big");
      for (long e = 0; e < source.elementCount(); e += 997) {
        assertEquals(Float.floatToRawIntBits(source.getFloat(e)),
            loaded.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4 * e));
      }
      assertEquals(Float.floatToRawIntBits(source.getFloat(source.elementCount() - 1)),
          loaded.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4 * (source.elementCount() - 1)));
    }
  }

  @Test
  void strictLoadRefusesMissingTensorsBeforeWritingAnything() throws IOException {
    Path file = write("m.safetensors", random("a", DType.F32, 1, 4));
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      Variable a = store.root().variable("a", DType.F32, new long[] {4}, Initializer.constant(7));
      store.root().zeros("b", DType.F32, 4);
      LoadException e = assertThrows(LoadException.class, () -> store.load(checkpoint, LoadOptions.defaults()));
      assertEquals(List.of("b"), e.report().missing());
      assertTrue(e.report().loaded().isEmpty());
      assertTrue(e.getMessage().contains("b"), e.getMessage());
      assertEquals(7f, a.view().getFloat(0), "nothing was written");
      assertFalse(a.isLoaded());
    }
  }

  @Test
  void partialLoadFillsWhatFitsAndReportsTheRest() throws IOException {
    Path file = write("m.safetensors", random("a", DType.F32, 1, 4), random("extra", DType.F32, 2, 2),
        random("wrong", DType.F32, 3, 2, 3));
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      Variable a = store.root().zeros("a", DType.F32, 4);
      store.root().zeros("gone", DType.F32, 4);
      Variable wrong = store.root().variable("wrong", DType.F32, new long[] {3, 2}, Initializer.constant(1));
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().partial());
      assertFalse(report.isComplete());
      assertEquals(List.of("a"), report.loaded());
      assertEquals(List.of("gone"), report.missing());
      assertEquals(List.of("extra"), report.unexpected());
      assertEquals(1, report.mismatches().size());
      LoadReport.Mismatch mismatch = report.mismatches().getFirst();
      assertEquals("wrong", mismatch.variable());
      assertEquals(LoadReport.Mismatch.Kind.SHAPE, mismatch.kind());
      assertEquals("[3, 2]", mismatch.expected());
      assertEquals("[2, 3]", mismatch.found());
      assertEquals(file, mismatch.file());
      assertTrue(a.isLoaded());
      assertFalse(wrong.isLoaded());
      assertEquals(1f, wrong.view().getFloat(5), "a mismatched variable is never written");
    }
  }

  @Test
  void shapeMismatchIsAnErrorInStrictModeEvenWhenTheBytesWouldFit() throws IOException {
    Path file = write("m.safetensors", random("w", DType.F32, 1, 2, 6));
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      store.root().zeros("w", DType.F32, 3, 4);
      LoadException e = assertThrows(LoadException.class, () -> store.load(checkpoint, LoadOptions.defaults()));
      assertEquals(LoadReport.Mismatch.Kind.SHAPE, e.report().mismatches().getFirst().kind());
    }
  }

  @Test
  void unsupportedConversionIsADtypeMismatch() throws IOException {
    Path file = write("m.safetensors", random("w", DType.F32, 1, 4));
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      store.root().zeros("w", DType.I32, 4);
      LoadException e = assertThrows(LoadException.class, () -> store.load(checkpoint, LoadOptions.defaults()));
      assertEquals(LoadReport.Mismatch.Kind.DTYPE, e.report().mismatches().getFirst().kind());
    }
  }

  @Test
  void nameMappingStripsPrefixesAndIsReported() throws IOException {
    TensorView a = random("model.layers.0.w", DType.F32, 1, 4);
    Path file = write("m.safetensors", a, random("lm_head.weight", DType.F32, 2, 4));
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      Variable w = store.root().sub("layers").sub(0).zeros("w", DType.F32, 4);
      store.root().zeros("head", DType.F32, 4);
      LoadReport report = store.load(checkpoint, LoadOptions.defaults().withNames(NameMapping.identity()
          .stripPrefix("model.")
          .rename(name -> name.equals("lm_head.weight") ? "head" : name)));
      assertTrue(report.isComplete());
      assertEquals(Map.of("model.layers.0.w", "layers.0.w", "lm_head.weight", "head"), report.renamed());
      assertSameBits(a, w);
    }
  }

  @Test
  void twoTensorsMappedToOneVariableAreRefused() throws IOException {
    Path file = write("m.safetensors", random("x.w", DType.F32, 1, 4), random("y.w", DType.F32, 2, 4));
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      store.root().zeros("w", DType.F32, 4);
      NameMapping collapse = NameMapping.identity().rename(name -> "w");
      assertThrows(LoadException.class,
          () -> store.load(checkpoint, LoadOptions.defaults().withNames(collapse)));
    }
  }

  @Test
  void fromCheckpointCreatesOneVariablePerTensorKeepingOrConvertingDtypes() throws IOException {
    TensorView a = random("a", DType.BF16, 1, 2, 3);
    TensorView ids = random("ids", DType.I32, 2, 5);
    Path file = write("m.safetensors", a, ids);
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      try (VarStore kept = VarStore.fromCheckpoint(checkpoint, LoadOptions.defaults())) {
        assertEquals(DType.BF16, kept.variable("a").dtype());
        assertSameBits(a, kept.variable("a"));
        assertSameBits(ids, kept.variable("ids"));
      }
      try (VarStore widened = VarStore.fromCheckpoint(checkpoint, LoadOptions.defaults().withCreateDType(DType.F32))) {
        assertEquals(DType.F32, widened.variable("a").dtype());
        assertEquals(DType.I32, widened.variable("ids").dtype(), "integers keep their dtype");
        assertArrayEquals(a.toFloatArray(), widened.variable("a").view().toFloatArray());
      }
    }
  }

  @Test
  void savedStoreReloadsBitForBit() throws IOException {
    Path file = dir.resolve("saved.safetensors");
    try (VarStore store = new VarStore()) {
      store.root().sub("l").variable("w", DType.BF16, new long[] {8, 4}, Initializer.normal(0, 1, 7));
      store.root().variable("b", DType.F32, new long[] {4}, Initializer.uniform(-1, 1, 8));
      store.save(file, Map.of("format", "pt"));
      try (VarStore reloaded = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
        reloaded.root().sub("l").zeros("w", DType.BF16, 8, 4);
        reloaded.root().zeros("b", DType.F32, 4);
        reloaded.load(checkpoint, LoadOptions.defaults());
        for (Variable original : store.variables()) {
          assertEquals(-1L, original.segment().mismatch(reloaded.variable(original.name()).segment()));
        }
        assertEquals(Map.of("format", "pt"), checkpoint.metadata().orElseThrow());
      }
    }
  }

  @Test
  void twoThreadsLoadTwoStoresFromOneCheckpoint() throws Exception {
    TensorView a = random("a", DType.BF16, 1, 512, 1024);
    TensorView b = random("b", DType.F16, 2, 1024);
    Path file = write("m.safetensors", a, b);
    try (Checkpoint checkpoint = Checkpoint.open(file)) {
      List<Thread> threads = new ArrayList<>();
      List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
      for (int t = 0; t < 2; t++) {
        DType target = t == 0 ? DType.F32 : DType.BF16;
        threads.add(Thread.ofPlatform().start(() -> {
          try (VarStore store = new VarStore()) {
            store.root().zeros("a", target, 512, 1024);
            store.root().zeros("b", DType.F32, 1024);
            for (int round = 0; round < 5; round++) {
              store.load(checkpoint, LoadOptions.defaults().withThreads(2));
              TensorView loaded = store.variable("a").view();
              for (long e = 0; e < a.elementCount(); e += 101) {
                long expected = target == a.dtype() ? a.getBits(e) : target.encodeFloat(a.getFloat(e));
                assertEquals(expected, loaded.getBits(e));
              }
            }
          } catch (Throwable e) {
            failures.add(e);
          }
        }));
      }
      for (Thread thread : threads) {
        thread.join();
      }
      assertEquals(List.of(), failures);
    }
  }

  @Test
  void variablesNeedUniqueValidNames() {
    try (VarStore store = new VarStore()) {
      store.root().zeros("w", DType.F32, 2);
      assertThrows(IllegalArgumentException.class, () -> store.root().zeros("w", DType.F32, 2));
      assertThrows(IllegalArgumentException.class, () -> store.root().sub("a.b"));
      assertThrows(IllegalArgumentException.class, () -> store.root().sub(""));
      assertThrows(IllegalArgumentException.class,
          () -> store.root().variable("r", DType.I32, new long[] {2}, Initializer.normal(0, 1, 1)));
      assertEquals("layers.3.mlp", store.root().sub("layers").sub(3).sub("mlp").prefix());
      // A dotted name is a path below the scope: checkpoint names can be used as they are.
      Variable norm = store.root().sub("model").zeros("layers.0.norm.weight", DType.F32, 4);
      assertEquals("model.layers.0.norm.weight", norm.name());
      assertEquals(norm, store.variable("model.layers.0.norm.weight"));
      assertThrows(IllegalArgumentException.class, () -> store.root().zeros("model..weight", DType.F32, 2));
      assertThrows(IllegalArgumentException.class, () -> store.root().zeros(".weight", DType.F32, 2));
      assertThrows(IllegalArgumentException.class, () -> store.root().zeros("weight.", DType.F32, 2));
      assertThrows(IllegalArgumentException.class, () -> store.root().zeros("", DType.F32, 2));
    }
  }

  @Test
  void initializersAreDeterministicAndAllocationIsLazy() {
    try (VarStore store = new VarStore(); VarStore other = new VarStore()) {
      Variable w = store.root().variable("w", DType.F32, new long[] {100}, Initializer.uniform(-0.5, 0.5, 3));
      Variable c = store.root().variable("c", DType.BF16, new long[] {3}, Initializer.constant(2.5));
      assertFalse(w.isBound(), "no memory before first use");
      store.allocate(2);
      assertTrue(w.isBound());
      Variable w2 = other.root().variable("w", DType.F32, new long[] {100}, Initializer.uniform(-0.5, 0.5, 3));
      assertEquals(-1L, w.segment().mismatch(w2.segment()));
      for (float x : w.view().toFloatArray()) {
        assertTrue(x >= -0.5f && x < 0.5f);
      }
      assertEquals(2.5f, c.view().getFloat(2));
      assertEquals(0L, w.segment().address() % 64, "64-byte aligned");
    }
  }

  @Test
  void closedStoreRefusesAccess() {
    VarStore store = new VarStore();
    Variable w = store.root().zeros("w", DType.F32, 4);
    MemorySegment memory = w.segment();
    store.close();
    assertThrows(IllegalStateException.class, () -> memory.get(ValueLayout.JAVA_FLOAT, 0));
    assertThrows(IllegalStateException.class, () -> store.root().zeros("x", DType.F32, 1));
  }
}
