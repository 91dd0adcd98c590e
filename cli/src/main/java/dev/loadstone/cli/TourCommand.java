package dev.loadstone.cli;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * {@code loadstone tour [--model PATH]}: the reader at work on the example checkpoint shipped
 * in the repository ({@value #EXAMPLE}, a small BF16 Llama), or on any file. Opens and
 * validates it, lists a few tensors, reads and slices tensors zero-copy, copies one with
 * conversion into off-heap memory, and shows that a read after close fails cleanly.
 *
 * <p>The example is found under the system property {@code loadstone.home} (the launcher sets
 * it to the repository root), else under the current directory.
 */
final class TourCommand implements Command {
  /** The example checkpoint, relative to the repository root. */
  static final String EXAMPLE = "examples/fortune-llama/model.safetensors";

  private static final int LISTED = 5;
  private static final int VALUES = 6;
  private static final long MAX_CONVERTED_BYTES = 64L << 20;
  private static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  @Override
  public String name() {
    return "tour";
  }

  @Override
  public String synopsis() {
    return "[--model PATH]";
  }

  @Override
  public String summary() {
    return "tour the reader on the example model: validate, read, slice, convert, close";
  }

  @Override
  public String description() {
    return """
        Opens and validates the file (timed), lists a few tensors, reads a tensor and slices a
        row of a matrix zero-copy, copies a tensor to F32 in off-heap memory, then closes the
        file and shows that a read after close fails with IllegalStateException.

        The default model is the example shipped in the repository,
        ${loadstone.home}/%s (the launcher sets loadstone.home to the
        repository root), else the same path under the current directory.
        """.formatted(EXAMPLE);
  }

  @Override
  public List<Option> options() {
    return List.of(Option.valued("--model", "PATH", "a .safetensors file to use instead of the example"));
  }

  /**
   * Where the example lives: under {@code home} when given and the file is there, else under
   * the current directory.
   */
  static Path defaultModel(String home) {
    if (home != null && !home.isBlank()) {
      Path underHome = Path.of(home).resolve(EXAMPLE);
      if (Files.exists(underHome)) {
        return underHome;
      }
    }
    return Path.of(EXAMPLE);
  }

  /** The path relative to the current directory when it lies below it, for shorter messages. */
  private static Path shorter(Path path) {
    Path cwd = Path.of("").toAbsolutePath();
    return path.isAbsolute() && path.startsWith(cwd) && !path.equals(cwd) ? cwd.relativize(path) : path;
  }

  @Override
  public int run(Arguments args, PrintStream out, PrintStream err) throws IOException, UsageException {
    args.require();
    Optional<String> model = args.value("--model");
    Path path;
    if (model.isPresent()) {
      path = Inputs.safetensorsFile(model.get());
    } else {
      path = defaultModel(System.getProperty("loadstone.home"));
      if (!Files.exists(path)) {
        throw new NoSuchFileException(path.toString(), null, "the example model is missing; pass --model PATH");
      }
      path = Inputs.safetensorsFile(shorter(path).toString());
    }

    out.println("Loadstone tour: " + Text.oneLine(path.toString()) + " (" + Text.size(Files.size(path)) + ")");
    out.println();
    long start = System.nanoTime();
    SafeTensors.open(path).close();
    long openNanos = System.nanoTime() - start;
    start = System.nanoTime();
    SafeTensors file = SafeTensors.open(path);
    long reopenNanos = System.nanoTime() - start;
    TensorView read;
    try {
      List<TensorView> tensors = file.tensors();
      out.println("1. Open + validate: " + tensors.size() + " tensors, "
          + Text.grouped(file.dataLength()) + " bytes of data, " + Text.grouped(file.headerLength())
          + "-byte header: valid in " + Text.millis(openNanos) + " (again: " + Text.millis(reopenNanos) + ")");
      out.println("   (memory-mapped: only the header has been read; the first time includes class loading)");

      out.println("2. Tensors in file order (" + Math.min(LISTED, tensors.size()) + " of " + tensors.size() + "):");
      List<String[]> rows = new ArrayList<>();
      for (TensorView tensor : tensors.subList(0, Math.min(LISTED, tensors.size()))) {
        rows.add(new String[] {Text.oneLine(tensor.name()), tensor.dtype().name(),
            Text.shape(tensor.shape()), Text.grouped(tensor.byteSize()) + " bytes"});
      }
      Text.table(rows, "     ", 3).forEach(out::println);
      if (tensors.size() > LISTED) {
        out.println("     ... and " + (tensors.size() - LISTED) + " more (loadstone inspect PATH lists them all)");
      }

      read = pick(file, "model.norm.weight", t -> t.rank() == 1);
      if (read == null) {
        out.println("3. Zero-copy read: no float tensor to read");
      } else {
        out.println("3. Zero-copy read: " + describe(read) + ", first values decoded to float:");
        valueRows(read, 0, true).forEach(out::println);
      }

      TensorView matrix = pick(file, "model.embed_tokens.weight", t -> t.rank() >= 2);
      if (matrix == null) {
        out.println("4. Zero-copy slice: no float matrix to slice");
      } else {
        long row = Math.min(42, matrix.dim(0) - 1);
        TensorView slice = matrix.slice(0, row, row + 1);
        long within = slice.segment().address() - matrix.segment().address();
        long[] offsets = slice.dataOffsets();
        out.println("4. Zero-copy slice: row " + row + " of " + Text.oneLine(matrix.name()) + " "
            + Text.shape(matrix.shape()) + " (axis 0) -> " + Text.shape(slice.shape()));
        out.println("     same memory: " + Text.grouped(within) + " bytes into the tensor's mapping,"
            + " data_offsets [" + offsets[0] + ", " + offsets[1] + "]");
        valueRows(slice, 0, false).forEach(out::println);
      }

      convert(file, out);
    } finally {
      file.close();
    }

    out.print("6. Close: isOpen() = " + file.isOpen());
    if (read == null) {
      out.println();
    } else {
      out.println("; reading " + Text.oneLine(read.name()) + " again:");
      try {
        out.println("     read " + read.getFloat(0) + " (unexpected: the file is closed)");
      } catch (IllegalStateException e) {
        out.println("     " + e.getClass().getSimpleName() + ": " + Text.oneLine(e.getMessage()));
      }
    }
    return Main.EXIT_OK;
  }

  /** Step 5: the largest float tensor that stays small in F32, copied to F32 off-heap. */
  private static void convert(SafeTensors file, PrintStream out) {
    Optional<TensorView> candidate = file.tensors().stream()
        .filter(t -> t.dtype().isFloatingPoint() && t.elementCount() > 0)
        .filter(t -> t.elementCount() * 4 <= MAX_CONVERTED_BYTES)
        .max(Comparator.comparingLong(TensorView::elementCount));
    if (candidate.isEmpty()) {
      out.println("5. Copy with conversion: no float tensor small enough to convert");
      return;
    }
    TensorView tensor = candidate.get();
    long count = tensor.elementCount();
    out.println("5. Copy with conversion: " + describe(tensor) + " -> F32, off-heap (Arena.ofConfined)");
    try (Arena arena = Arena.ofConfined()) {
      long begin = System.nanoTime();
      MemorySegment target = arena.allocate(count * 4, 64);
      tensor.copyTo(target, DType.F32);
      long nanos = System.nanoTime() - begin;
      begin = System.nanoTime();
      tensor.copyTo(target, DType.F32);
      long again = System.nanoTime() - begin;
      long mismatches = 0;
      for (long i = 0; i < count; i++) {
        if (Float.floatToRawIntBits(target.getAtIndex(F32, i)) != Float.floatToRawIntBits(tensor.getFloat(i))) {
          mismatches++;
        }
      }
      out.println("     " + Text.grouped(tensor.byteSize()) + " bytes " + tensor.dtype() + " -> "
          + Text.grouped(target.byteSize()) + " bytes F32 in " + Text.millis(nanos)
          + " (again: " + Text.millis(again) + ")");
      out.println("     check: "
          + (mismatches == 0
              ? "all " + Text.grouped(count) + " values equal getFloat(i)"
              : mismatches + " of " + Text.grouped(count) + " values differ from getFloat(i)"));
    }
  }

  /** The named tensor if it is a float tensor, else the first float tensor that fits. */
  private static TensorView pick(SafeTensors file, String name, java.util.function.Predicate<TensorView> fits) {
    Optional<TensorView> named = file.find(name).filter(t -> t.dtype().isFloatingPoint() && t.elementCount() > 0);
    return named.or(() -> file.tensors().stream()
            .filter(t -> t.dtype().isFloatingPoint() && t.elementCount() > 0 && fits.test(t))
            .findFirst())
        .orElse(null);
  }

  private static String describe(TensorView tensor) {
    return Text.oneLine(tensor.name()) + " " + tensor.dtype() + " " + Text.shape(tensor.shape());
  }

  /** A small table of the first values: raw bits (optionally) and decoded floats. */
  private static List<String> valueRows(TensorView tensor, long first, boolean withBits) {
    int n = (int) Math.min(VALUES, tensor.elementCount() - first);
    String[] bits = new String[n + 1];
    String[] values = new String[n + 1];
    bits[0] = "bits";
    values[0] = "float";
    int hexDigits = (tensor.dtype().bits() + 3) / 4;
    for (int i = 0; i < n; i++) {
      bits[i + 1] = String.format(Locale.ROOT, "0x%0" + hexDigits + "x", tensor.getBits(first + i));
      values[i + 1] = Text.number(tensor.getFloat(first + i));
    }
    List<String[]> rows = withBits ? List.of(bits, values) : List.<String[]>of(values);
    int[] right = new int[n];
    for (int i = 0; i < n; i++) {
      right[i] = i + 1;
    }
    List<String> lines = new ArrayList<>(Text.table(rows, "     ", right));
    if (tensor.elementCount() - first > n) {
      int last = lines.size() - 1;
      lines.set(last, lines.get(last) + "  ...");
    }
    return lines;
  }
}
