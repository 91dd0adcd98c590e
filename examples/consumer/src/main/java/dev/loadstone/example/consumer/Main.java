package dev.loadstone.example.consumer;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import dev.loadstone.store.Scope;
import dev.loadstone.store.VarStore;
import dev.loadstone.store.Variable;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Writes a small checkpoint with Loadstone, reads it back directly, loads it into a
 * {@link VarStore} by COPY (BF16 and F16 become F32) and by ALIAS, and compares every value with
 * the one it wrote. The expected values and their bits are computed here with the JDK alone
 * ({@link Float#floatToRawIntBits}, {@link Float#floatToFloat16}), not with Loadstone.
 *
 * <p>Prints one line per failed check on stderr and exits 1 if any failed; prints a summary on
 * stdout and exits 0 otherwise.
 *
 * <p>Usage: {@code java --enable-native-access=dev.loadstone.core -p MODULE_PATH
 * -m dev.loadstone.example.consumer/dev.loadstone.example.consumer.Main [DIRECTORY]}
 */
public final class Main {
  private static final ValueLayout.OfShort SHORT_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat FLOAT_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /** A 4 x 3 matrix stored as BF16: quarter steps from -2, all exact in BF16. */
  private static final String EMBED = "model.embed.weight";
  private static final long[] EMBED_SHAPE = {4, 3};
  /** Three F32 values. */
  private static final String BIAS = "model.layer.bias";
  private static final float[] BIAS_VALUES = {1.5f, -2.0f, 0.001f};
  /** Two F16 values, exact in F16. */
  private static final String SCALE = "model.layer.scale";
  private static final float[] SCALE_VALUES = {0.5f, -3.25f};

  private int checks;
  private int failures;

  private Main() {}

  public static void main(String[] args) throws IOException {
    Path directory = Path.of(args.length > 0 ? args[0] : "checkpoint");
    Main main = new Main();
    main.run(directory);
    if (main.failures > 0) {
      System.err.println("consumer: " + main.failures + " of " + main.checks + " checks failed");
      System.exit(1);
    }
    System.out.println("consumer: " + main.checks + " checks passed");
  }

  private void run(Path directory) throws IOException {
    Files.createDirectories(directory);
    Path file = directory.resolve("model.safetensors");
    write(file);
    readDirectly(file);
    loadByCopy(file);
    loadByAlias(file);
    strictLoadRefusesAWrongShape(file);
  }

  private static float embedValue(int index) {
    return -2.0f + 0.25f * index;
  }

  /** The checkpoint, written from segments holding the bits this program computed itself. */
  private void write(Path file) throws IOException {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment embed = arena.allocate(12 * 2);
      for (int i = 0; i < 12; i++) {
        // Exact in BF16, so the BF16 bits are the float's upper half.
        embed.set(SHORT_LE, 2L * i, (short) (Float.floatToRawIntBits(embedValue(i)) >>> 16));
      }
      MemorySegment bias = arena.allocate(BIAS_VALUES.length * 4L);
      for (int i = 0; i < BIAS_VALUES.length; i++) {
        bias.set(FLOAT_LE, 4L * i, BIAS_VALUES[i]);
      }
      MemorySegment scale = arena.allocate(SCALE_VALUES.length * 2L);
      for (int i = 0; i < SCALE_VALUES.length; i++) {
        scale.set(SHORT_LE, 2L * i, Float.floatToFloat16(SCALE_VALUES[i]));
      }
      SafeTensorsWriter.write(file, Map.of("format", "pt", "written-by", "consumer example"), List.of(
          TensorView.of(EMBED, DType.BF16, EMBED_SHAPE, embed),
          TensorView.of(BIAS, DType.F32, new long[] {BIAS_VALUES.length}, bias),
          TensorView.of(SCALE, DType.F16, new long[] {SCALE_VALUES.length}, scale)));
    }
    check(Files.size(file) > 8, "the file was written");
  }

  /** SafeTensors: the header as written, and each tensor's values through a zero-copy view. */
  private void readDirectly(Path file) throws IOException {
    try (SafeTensors tensors = SafeTensors.open(file)) {
      check(tensors.metadata().equals(Optional.of(Map.of("format", "pt", "written-by", "consumer example"))),
          "metadata read back: " + tensors.metadata());
      check(tensors.tensors().size() == 3, "3 tensors, found " + tensors.tensors().size());
      TensorView embed = tensors.find(EMBED).orElse(null);
      if (embed == null) {
        fail(EMBED + " is missing");
        return;
      }
      check(embed.dtype() == DType.BF16, "embed dtype BF16, found " + embed.dtype());
      check(Arrays.equals(embed.shape(), EMBED_SHAPE), "embed shape [4, 3], found " + Arrays.toString(embed.shape()));
      for (int row = 0; row < 4; row++) {
        for (int column = 0; column < 3; column++) {
          float found = embed.getFloat(embed.index(row, column));
          expect(embedValue(row * 3 + column), found, "embed[" + row + ", " + column + "] read directly");
        }
      }
      // A slice is a view of the same bytes: rows 1 and 2.
      TensorView rows = embed.slice(0, 1, 3);
      check(Arrays.equals(rows.shape(), new long[] {2, 3}), "slice shape [2, 3], found " + Arrays.toString(rows.shape()));
      expect(embedValue(3), rows.getFloat(rows.index(0, 0)), "slice[0, 0]");
      expect(embedValue(8), rows.getFloat(rows.index(1, 2)), "slice[1, 2]");
      // One copy into memory of our own, BF16 -> F32.
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment f32 = arena.allocate(embed.elementCount() * 4, 64);
        embed.copyTo(f32, DType.F32);
        for (int i = 0; i < 12; i++) {
          expect(embedValue(i), f32.getAtIndex(ValueLayout.JAVA_FLOAT, i), "embed copied to F32 [" + i + "]");
        }
      }
      TensorView scale = tensors.find(SCALE).orElseThrow();
      for (int i = 0; i < SCALE_VALUES.length; i++) {
        expect(SCALE_VALUES[i], scale.getFloat(i), "scale[" + i + "] read directly");
      }
    }
  }

  /** VarStore, COPY: every variable F32, filled with one conversion each from BF16 and F16. */
  private void loadByCopy(Path file) throws IOException {
    try (VarStore store = new VarStore()) {
      Scope model = store.root().sub("model");
      Variable embed = model.sub("embed").zeros("weight", DType.F32, EMBED_SHAPE);
      Scope layer = model.sub("layer");
      Variable bias = layer.zeros("bias", DType.F32, BIAS_VALUES.length);
      Variable scale = layer.zeros("scale", DType.F32, SCALE_VALUES.length);
      check(embed.name().equals(EMBED), "the scope names the variable " + EMBED + ", found " + embed.name());
      try (Checkpoint checkpoint = Checkpoint.open(file)) {
        LoadReport report = store.load(checkpoint, LoadOptions.defaults());
        check(report.isComplete(), "COPY load complete: " + report.summary());
        check(report.loaded().size() == 3, "COPY loaded 3 variables: " + report.loaded());
      }
      // COPY: the variables own their memory and outlive the checkpoint.
      check(embed.isLoaded() && !embed.isAlias(), "embed loaded by copy");
      check(embed.dtype() == DType.F32, "embed is F32");
      for (int i = 0; i < 12; i++) {
        expect(embedValue(i), embed.view().getFloat(i), "COPY embed[" + i + "] (BF16 -> F32)");
        expect(embedValue(i), embed.segment().getAtIndex(ValueLayout.JAVA_FLOAT, i), "COPY embed segment[" + i + "]");
      }
      for (int i = 0; i < BIAS_VALUES.length; i++) {
        expect(BIAS_VALUES[i], bias.view().getFloat(i), "COPY bias[" + i + "]");
      }
      for (int i = 0; i < SCALE_VALUES.length; i++) {
        expect(SCALE_VALUES[i], scale.view().getFloat(i), "COPY scale[" + i + "] (F16 -> F32)");
      }
    }
  }

  /** VarStore, ALIAS: the variables are the file's mapped bytes, readable while it is open. */
  private void loadByAlias(Path file) throws IOException {
    try (VarStore store = new VarStore()) {
      Scope model = store.root().sub("model");
      Variable embed = model.zeros("embed.weight", DType.BF16, EMBED_SHAPE);
      Variable bias = model.zeros("layer.bias", DType.F32, BIAS_VALUES.length);
      Variable scale = model.zeros("layer.scale", DType.F16, SCALE_VALUES.length);
      Checkpoint checkpoint = Checkpoint.open(file);
      try {
        LoadReport report = store.load(checkpoint, LoadOptions.defaults().withMode(LoadMode.ALIAS));
        check(report.isComplete(), "ALIAS load complete: " + report.summary());
        check(report.mode() == LoadMode.ALIAS, "the report says ALIAS: " + report.mode());
        check(embed.isAlias() && bias.isAlias() && scale.isAlias(), "every variable is an alias");
        check(embed.segment().isReadOnly(), "an alias is read-only");
        for (int i = 0; i < 12; i++) {
          expect(embedValue(i), embed.view().getFloat(i), "ALIAS embed[" + i + "]");
        }
        for (int i = 0; i < BIAS_VALUES.length; i++) {
          expect(BIAS_VALUES[i], bias.view().getFloat(i), "ALIAS bias[" + i + "]");
        }
        for (int i = 0; i < SCALE_VALUES.length; i++) {
          expect(SCALE_VALUES[i], scale.view().getFloat(i), "ALIAS scale[" + i + "]");
        }
      } finally {
        checkpoint.close();
      }
      // Once the checkpoint is closed, reading an alias throws; it never crashes the JVM.
      try {
        float value = embed.view().getFloat(0);
        fail("ALIAS embed[0] read after the checkpoint closed: " + value);
      } catch (IllegalStateException expected) {
        check(true, "ALIAS read after close throws IllegalStateException");
      }
    }
  }

  /** Strict by default: a variable whose shape differs from the tensor's is not loaded. */
  private void strictLoadRefusesAWrongShape(Path file) throws IOException {
    try (VarStore store = new VarStore(); Checkpoint checkpoint = Checkpoint.open(file)) {
      Variable embed = store.root().zeros(EMBED, DType.F32, 3, 4);
      try {
        store.load(checkpoint, LoadOptions.defaults());
        fail("a [3, 4] variable loaded from a [4, 3] tensor");
      } catch (IOException expected) {
        check(!embed.isLoaded(), "the refused variable is not loaded: " + expected.getMessage());
      }
    }
  }

  private void expect(float expected, float found, String what) {
    check(Float.compare(expected, found) == 0, what + ": expected " + expected + ", found " + found);
  }

  private void check(boolean condition, String what) {
    checks++;
    if (!condition) {
      failures++;
      System.err.println("FAILED " + what);
    }
  }

  private void fail(String what) {
    check(false, what);
  }
}
