package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ConvertCommandTest {
  /** Small chunks, so that every tensor of a few hundred bytes streams in several. */
  private static final Main SMALL_CHUNKS = new Main(List.of(new ConvertCommand(64)), false);

  private static final Map<String, String> METADATA = Map.of("format", "pt", "note", "\u00e9t\u00e9");

  @TempDir Path dir;

  private static Cli.Result convert(String... args) {
    String[] argv = new String[args.length + 1];
    argv[0] = "convert";
    System.arraycopy(args, 0, argv, 1, args.length);
    return Cli.run(SMALL_CHUNKS, argv);
  }

  private static float[] floats(int count, long seed) {
    Random random = new Random(seed);
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) random.nextGaussian() * 3;
    }
    float[] special = {0f, -0f, 1f, 1.00390625f, 1.01171875f, Float.MIN_VALUE, Float.MAX_VALUE,
        Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 65504f, 65520f, 1e-8f, 3.0e38f, Float.NaN};
    System.arraycopy(special, 0, values, 0, Math.min(special.length, count));
    return values;
  }

  /** Raw bits of a 16-bit float type, no NaNs. */
  private static short[] halves(int count, long seed) {
    Random random = new Random(seed);
    short[] bits = new short[count];
    for (int i = 0; i < count; i++) {
      short b;
      do {
        b = (short) random.nextInt(1 << 16);
      } while ((b & 0x7F80) == 0x7F80 && (b & 0x7F) != 0);
      bits[i] = b;
    }
    return bits;
  }

  private static byte[] bytes(int count, long seed) {
    byte[] bytes = new byte[count];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  /** A file of every kind of tensor: floats of five dtypes, integers, BOOL and C64. */
  private Path mixedFile() throws IOException {
    List<TensorView> tensors = List.of(
        TensorView.of("f32", DType.F32, new long[] {11, 7}, MemorySegment.ofArray(floats(77, 1))),
        TensorView.of("f16", DType.F16, new long[] {45}, MemorySegment.ofArray(halves(45, 2))),
        TensorView.of("f8", DType.F8_E4M3, new long[] {3, 33}, MemorySegment.ofArray(bytes(99, 3))),
        TensorView.of("f4", DType.F4, new long[] {202}, MemorySegment.ofArray(bytes(101, 4))),
        TensorView.of("f64", DType.F64, new long[] {9}, MemorySegment.ofArray(
            new double[] {0, -1.5, Math.PI, 1e300, -1e-300, 1.0000000596046448, 2, 3, 4})),
        TensorView.of("ids", DType.I64, new long[] {5}, MemorySegment.ofArray(new long[] {1, -2, 3, Long.MAX_VALUE, 0})),
        TensorView.of("u8", DType.U8, new long[] {70}, MemorySegment.ofArray(bytes(70, 5))),
        TensorView.of("mask", DType.BOOL, new long[] {3}, MemorySegment.ofArray(new byte[] {1, 0, 1})),
        TensorView.of("c", DType.C64, new long[] {2}, MemorySegment.ofArray(new float[] {1, 2, 3, 4})),
        TensorView.of("scalar", DType.F32, new long[] {}, MemorySegment.ofArray(new float[] {0.1f})),
        TensorView.of("empty", DType.BF16, new long[] {0, 4}, MemorySegment.ofArray(new byte[0])));
    Path file = dir.resolve("mixed.safetensors");
    SafeTensorsWriter.write(file, METADATA, tensors);
    return file;
  }

  @ParameterizedTest
  @ValueSource(strings = {"BF16", "bf16", "F16", "F32", "f32"})
  void floatsAreConvertedIntegersAndMetadataKept(String dtypeName) throws IOException {
    DType target = DType.valueOf(dtypeName.toUpperCase(java.util.Locale.ROOT));
    Path in = mixedFile();
    Path out = dir.resolve("out.safetensors");
    Cli.Result result = convert(in.toString(), out.toString(), "--dtype", dtypeName);
    assertEquals(0, result.exit(), result.err());
    assertEquals("", result.err());
    assertEquals(1, result.outLines().size(), result.out());
    // Seven floating tensors (f32, scalar, f16, empty BF16, f8, f4, f64), less those already in the target dtype.
    int converted = target == DType.F32 ? 5 : 6;
    assertTrue(result.out().startsWith("Wrote " + out + ": 11 tensors (" + converted + " converted to "
        + target + "), "), result.out());

    try (SafeTensors source = SafeTensors.open(in); SafeTensors written = SafeTensors.open(out)) {
      assertEquals(METADATA, written.metadata().orElseThrow());
      assertEquals(source.names().stream().sorted().toList(), written.names().stream().sorted().toList());
      for (TensorView from : source.tensors()) {
        TensorView to = written.tensor(from.name());
        assertArrayEquals(from.shape(), to.shape(), from.name());
        if (!from.dtype().isFloatingPoint()) {
          assertEquals(from.dtype(), to.dtype(), from.name());
          assertEquals(-1, from.segment().mismatch(to.segment()), from.name());
          continue;
        }
        assertEquals(target, to.dtype(), from.name());
        for (long i = 0; i < from.elementCount(); i++) {
          long expected = from.dtype() == target ? from.getBits(i)
              : target.encodeFloat(from.dtype().decodeFloat(from.getBits(i)));
          assertEquals(expected, to.getBits(i), from.name() + "[" + i + "] = " + from.getFloat(i));
        }
      }
    }
  }

  @Test
  void f32ToBf16RoundsToNearestEven() throws IOException {
    Path in = dir.resolve("in.safetensors");
    float[] values = {1.00390625f, 1.01171875f, -1.00390625f, Math.nextUp(1.00390625f), Float.MAX_VALUE};
    SafeTensorsWriter.write(in, null, List.of(
        TensorView.of("w", DType.F32, new long[] {values.length}, MemorySegment.ofArray(values))));
    Path out = dir.resolve("out.safetensors");
    assertEquals(0, convert(in.toString(), out.toString(), "--dtype", "BF16").exit());
    try (SafeTensors written = SafeTensors.open(out)) {
      TensorView w = written.tensor("w");
      assertEquals(DType.BF16, w.dtype());
      // ties to even: 1 + 2^-8 -> 1; 1 + 3 * 2^-8 -> 1 + 2^-6; just above a tie rounds up
      assertEquals(List.of(0x3F80L, 0x3F82L, 0xBF80L, 0x3F81L, 0x7F80L),
          List.of(w.getBits(0), w.getBits(1), w.getBits(2), w.getBits(3), w.getBits(4)));
      assertTrue(written.metadata().isEmpty(), "no metadata in, none out");
    }
  }

  @Test
  void bf16ToF32IsExact() throws IOException {
    short[] bits = halves(301, 9);
    Path in = dir.resolve("in.safetensors");
    SafeTensorsWriter.write(in, Map.of("format", "pt"), List.of(
        TensorView.of("w", DType.BF16, new long[] {7, 43}, MemorySegment.ofArray(bits))));
    Path out = dir.resolve("out.safetensors");
    Cli.Result result = convert(in.toString(), out.toString(), "--dtype=F32");
    assertEquals(0, result.exit(), result.err());
    assertTrue(result.out().startsWith("Wrote " + out + ": 1 tensor (1 converted to F32), 602 -> 1,204 bytes"
        + " of tensor data in "), result.out());
    try (SafeTensors written = SafeTensors.open(out)) {
      TensorView w = written.tensor("w");
      assertEquals(DType.F32, w.dtype());
      assertArrayEquals(new long[] {7, 43}, w.shape());
      for (int i = 0; i < bits.length; i++) {
        assertEquals(DType.F32.encodeFloat(DType.BF16.decodeFloat(bits[i])), w.getBits(i));
        assertEquals((bits[i] & 0xFFFFL) << 16, w.getBits(i));
      }
      assertEquals(Map.of("format", "pt"), written.metadata().orElseThrow());
    }
  }

  @Test
  void withoutDtypeAFileBecomesItsCanonicalSerialization() throws IOException {
    Path in = Cli.validFile(dir); // tensors not in canonical order
    Path out = dir.resolve("canonical.safetensors");
    Cli.Result result = convert(in.toString(), out.toString());
    assertEquals(0, result.exit(), result.err());
    assertTrue(result.out().startsWith("Wrote " + out + ": 2 tensors (data unchanged), 12 -> 12 bytes"),
        result.out());
    Path expected = dir.resolve("expected.safetensors");
    try (SafeTensors source = SafeTensors.open(in)) {
      SafeTensorsWriter.write(expected, source.metadata().orElse(null), source.tensors());
    }
    assertArrayEquals(Files.readAllBytes(expected), Files.readAllBytes(out));
    assertFalse(java.util.Arrays.equals(Files.readAllBytes(in), Files.readAllBytes(out)),
        "the input was not canonical");

    // With a --dtype that changes nothing, the same bytes.
    Path again = dir.resolve("again.safetensors");
    Cli.Result same = Cli.run("convert", out.toString(), again.toString(), "--dtype", "F32");
    assertEquals(0, same.exit(), same.err());
    assertTrue(same.out().contains("(none to convert to F32)"), same.out());
    assertArrayEquals(Files.readAllBytes(expected), Files.readAllBytes(again));
  }

  @Test
  void theExampleRoundTripsThroughF32() throws IOException {
    Path example = Cli.repoRoot().resolve(TourCommand.EXAMPLE);
    Path f32 = dir.resolve("f32.safetensors");
    Path back = dir.resolve("back.safetensors");
    Path canonical = dir.resolve("canonical.safetensors");
    assertEquals(0, Cli.run("convert", example.toString(), f32.toString(), "--dtype", "F32").exit());
    assertEquals(0, Cli.run("convert", f32.toString(), back.toString(), "--dtype", "BF16").exit());
    assertEquals(0, Cli.run("convert", example.toString(), canonical.toString()).exit());
    try (SafeTensors converted = SafeTensors.open(f32)) {
      assertEquals(2 * 8_968_704L, converted.dataLength());
      assertTrue(converted.tensors().stream().allMatch(t -> t.dtype() == DType.F32));
    }
    assertArrayEquals(Files.readAllBytes(canonical), Files.readAllBytes(back));
  }

  @Test
  void maxShardSizeWritesADirectoryThatReadsBackEqual() throws IOException {
    Path in = dir.resolve("in.safetensors");
    List<TensorView> tensors = ModelDirectoryTest.tensors();
    SafeTensorsWriter.write(in, Map.of("format", "pt"), tensors);
    Path out = dir.resolve("sharded");
    Cli.Result result = convert(in.toString(), out.toString(), "--max-shard-size", "40");
    assertEquals(0, result.exit(), result.err());
    assertTrue(result.out().startsWith("Wrote " + out + " (3 files + model.safetensors.index.json): 5 tensors"
        + " (data unchanged), 88 -> 88 bytes"), result.out());
    assertTrue(Files.exists(out.resolve(Checkpoint.INDEX_FILE_NAME)));
    try (Stream<Path> files = Files.list(out)) {
      assertEquals(List.of("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
              "model-00003-of-00003.safetensors", "model.safetensors.index.json"),
          files.map(p -> p.getFileName().toString()).sorted().toList());
    }
    try (Checkpoint written = Checkpoint.open(out); SafeTensors source = SafeTensors.open(in)) {
      written.checkTotalSize();
      assertEquals(3, written.files().size());
      assertEquals(Map.of("format", "pt"), written.metadata().orElseThrow());
      assertEquals(source.names().stream().sorted().toList(), written.names().stream().sorted().toList());
      for (TensorView tensor : source.tensors()) {
        TensorView copy = written.tensor(tensor.name());
        assertEquals(tensor.dtype(), copy.dtype());
        assertArrayEquals(tensor.shape(), copy.shape());
        assertEquals(-1, tensor.segment().mismatch(copy.segment()), tensor.name());
      }
    }
    assertEquals(0, Cli.run("verify", out.toString()).exit());

    // And back from the directory to one file: the canonical file of the same tensors.
    Path single = dir.resolve("single.safetensors");
    Cli.Result back = convert(out.toString(), single.toString());
    assertEquals(0, back.exit(), back.err());
    Path expected = dir.resolve("expected.safetensors");
    SafeTensorsWriter.write(expected, Map.of("format", "pt"), tensors);
    assertArrayEquals(Files.readAllBytes(expected), Files.readAllBytes(single));
  }

  @Test
  void shardedConversionWithUnits() throws IOException {
    Path in = mixedFile();
    Path out = dir.resolve("model");
    Cli.Result result = convert(in.toString(), out.toString(), "--dtype", "bf16", "--max-shard-size", "0.1KB");
    assertEquals(0, result.exit(), result.err());
    try (Checkpoint written = Checkpoint.open(out); SafeTensors source = SafeTensors.open(in)) {
      assertTrue(written.files().size() > 2, written.files().toString());
      assertEquals(METADATA, written.metadata().orElseThrow());
      for (TensorView from : source.tensors()) {
        TensorView to = written.tensor(from.name());
        assertEquals(from.dtype().isFloatingPoint() ? DType.BF16 : from.dtype(), to.dtype());
        for (long i = 0; i < Math.min(from.elementCount(), to.elementCount()); i++) {
          if (from.dtype().isFloatingPoint() && from.dtype() != DType.BF16) {
            assertEquals(DType.BF16.encodeFloat(from.dtype().decodeFloat(from.getBits(i))), to.getBits(i));
          } else {
            assertEquals(from.getBits(i), to.getBits(i));
          }
        }
      }
    }
    // Everything in one shard: a directory with model.safetensors alone.
    Path one = dir.resolve("one");
    Cli.Result whole = convert(in.toString(), one.toString(), "--max-shard-size", "5GB");
    assertEquals(0, whole.exit(), whole.err());
    assertTrue(whole.out().startsWith("Wrote " + one + " (1 file): 11 tensors"), whole.out());
    try (Stream<Path> files = Files.list(one)) {
      assertEquals(List.of("model.safetensors"), files.map(p -> p.getFileName().toString()).toList());
    }
  }

  @Test
  void outAsADirectoryWritesModelSafetensors() throws IOException {
    Path in = Cli.validFile(dir);
    Path existing = Files.createDirectory(dir.resolve("existing"));
    assertEquals(0, convert(in.toString(), existing.toString()).exit());
    assertTrue(Files.isRegularFile(existing.resolve("model.safetensors")));
    Path fresh = dir.resolve("fresh");
    Cli.Result result = convert(in.toString(), fresh + "/");
    assertEquals(0, result.exit(), result.err());
    assertTrue(result.out().startsWith("Wrote " + fresh.resolve("model.safetensors") + ": "), result.out());
    assertEquals(0, Cli.run("verify", fresh.toString()).exit());
  }

  @Test
  void outMayNotBeIn() throws IOException {
    Path in = Cli.validFile(dir);
    byte[] before = Files.readAllBytes(in);
    Path link = Files.createSymbolicLink(dir.resolve("link.safetensors"), in.getFileName());
    for (String out : List.of(in.toString(), dir + "/./" + in.getFileName(), link.toString())) {
      Cli.Result result = convert(in.toString(), out, "--dtype", "BF16");
      assertEquals(2, result.exit(), result.err());
      assertEquals("", result.out());
      assertEquals(1, result.errLines().size(), result.err());
      assertTrue(result.err().startsWith("loadstone convert: OUT '" + out + "' is the input file;"), result.err());
    }
    // A directory as OUT: not the one that holds the input.
    for (String[] args : List.of(new String[] {in.toString(), dir.toString(), "--max-shard-size", "1MB"},
        new String[] {in.toString(), dir + "/"})) {
      Cli.Result result = convert(args);
      assertEquals(2, result.exit(), result.err());
      assertTrue(result.err().contains("is the directory of the input"), result.err());
    }
    Path model = ModelDirectoryTest.sharded(dir);
    Cli.Result sharded = convert(model.toString(), model.toString(), "--max-shard-size", "40");
    assertEquals(2, sharded.exit(), sharded.err());
    assertArrayEquals(before, Files.readAllBytes(in));
    assertFalse(Files.exists(dir.resolve("model.safetensors")));
  }

  @Test
  void usageErrors() throws IOException {
    Path in = Cli.validFile(dir);
    Path out = dir.resolve("out.safetensors");
    for (String dtype : List.of("F64", "int8", "", "F8_E4M3", "BF16x")) {
      Cli.Result result = convert(in.toString(), out.toString(), "--dtype", dtype);
      assertEquals(2, result.exit(), dtype);
      assertEquals("loadstone convert: --dtype '" + dtype + "' is not one of F32, F16, BF16 or keep"
          + " (run 'loadstone help convert' for usage)\n", result.err());
    }
    for (String size : List.of("0", "-5", "5XB", "1.5B", "abc", "0.0001KB", "99999999999TB", "")) {
      Cli.Result result = convert(in.toString(), out.toString(), "--max-shard-size", size);
      assertEquals(2, result.exit(), size);
      assertTrue(result.err().startsWith("loadstone convert: --max-shard-size "), result.err());
    }
    assertEquals(2, convert(in.toString()).exit());
    assertEquals(2, convert(in.toString(), out.toString(), "extra").exit());
    Path file = Files.writeString(dir.resolve("plain"), "x");
    Cli.Result notADirectory = convert(in.toString(), file.toString(), "--max-shard-size", "1MB");
    assertEquals(2, notADirectory.exit());
    assertTrue(notADirectory.err().contains("is a file; with --max-shard-size OUT is a directory"),
        notADirectory.err());
    Cli.Result missing = convert(dir.resolve("missing.safetensors").toString(), out.toString());
    assertEquals(2, missing.exit());
    assertEquals("loadstone convert: " + dir.resolve("missing.safetensors") + ": no such file\n", missing.err());
    Cli.Result noParent = convert(in.toString(), dir.resolve("no/such/out.safetensors").toString());
    assertEquals(2, noParent.exit());
    assertTrue(noParent.err().contains("the output's directory does not exist"), noParent.err());
    assertFalse(Files.exists(out));
  }

  @Test
  void invalidInputExitsOneAndWritesNothing() throws IOException {
    Path bad = Cli.write(dir, "bad.safetensors", Cli.safetensors(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[5]));
    Path out = dir.resolve("out.safetensors");
    Cli.Result result = convert(bad.toString(), out.toString(), "--dtype", "BF16");
    assertEquals(1, result.exit());
    assertEquals("", result.out());
    assertEquals(1, result.errLines().size(), result.err());
    assertTrue(result.err().startsWith("loadstone convert: invalid file: " + bad + ": TRAILING_BYTES"), result.err());
    Cli.Result noWeights = convert(Files.createDirectory(dir.resolve("empty")).toString(), out.toString());
    assertEquals(1, noWeights.exit());
    assertTrue(noWeights.err().contains("NO_WEIGHTS"), noWeights.err());
    try (Stream<Path> files = Files.list(dir)) {
      assertEquals(List.of("bad.safetensors", "empty"), files.map(p -> p.getFileName().toString()).sorted().toList());
    }
  }

  @Test
  void registeredWithBoundedChunks() {
    assertTrue(ConvertCommand.CHUNK_BYTES >= 16 << 20 && ConvertCommand.CHUNK_BYTES <= 64 << 20);
    assertTrue(Main.COMMANDS.stream().anyMatch(c -> c instanceof ConvertCommand));
  }

  @Test
  void unchangedTensorsLargerThanAChunkStreamInPieces() throws IOException {
    // 1,000 bytes of U8 and 250 floats through 64-byte chunks, without and with conversion.
    Path in = dir.resolve("in.safetensors");
    float[] values = floats(250, 11);
    SafeTensorsWriter.write(in, null, List.of(
        TensorView.of("u8", DType.U8, new long[] {1000}, MemorySegment.ofArray(bytes(1000, 12))),
        TensorView.of("w", DType.F32, new long[] {250}, MemorySegment.ofArray(values))));
    Path copy = dir.resolve("copy.safetensors");
    assertEquals(0, convert(in.toString(), copy.toString()).exit());
    assertArrayEquals(Files.readAllBytes(in), Files.readAllBytes(copy));
    Path half = dir.resolve("half");
    assertEquals(0, convert(in.toString(), half.toString(), "--dtype", "F16", "--max-shard-size", "600").exit());
    try (Checkpoint written = Checkpoint.open(half)) {
      TensorView w = written.tensor("w");
      assertEquals(DType.F16, w.dtype());
      for (int i = 0; i < values.length; i++) {
        assertEquals(DType.F16.encodeFloat(values[i]), w.getBits(i));
      }
    }
  }
}
