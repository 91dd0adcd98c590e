package dev.loadstone.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Opening a file whose header holds {@code tensors} entries, and the phases of that work.
 * In package {@code dev.loadstone.safetensors} (on the class path) to reach the package-private
 * {@link HeaderParser}.
 *
 * <ul>
 *   <li>{@code open}: {@link SafeTensors#open} + close: map, copy the header, UTF-8 check,
 *       tokenize, validate each entry, sort and check the layout, create the views.
 *   <li>{@code parse}: {@link HeaderParser#parse} on the header bytes: all of the above but the
 *       mapping and the views.
 *   <li>{@code utf8}: HeaderParser's check that the header is UTF-8 (and starts with no NUL).
 *   <li>{@code tokenize}: jackson-core alone, with HeaderParser's features (no interning or
 *       canonicalizing of names; default limits), reading every name, string and number, with
 *       no validation.
 * </ul>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(Scope.Benchmark)
@Fork(value = 1, jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class HeaderBenchmark {
  @Param("100000")
  public int tensors;

  /** {@code file}: keys in the order of the data, as writers write them; {@code shuffled}: random. */
  @Param({"file", "shuffled"})
  public String keyOrder;

  private static final JsonFactory JSON = JsonFactory.builder()
      .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
      .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
      .build();

  private Path path;
  private byte[] header;
  private long dataLength;

  @Setup(Level.Trial)
  public void setUp() throws IOException {
    Random random = new Random(7);
    DType[] dtypes = {DType.F32, DType.BF16, DType.F16, DType.F64, DType.I64, DType.I32,
        DType.U8, DType.BOOL, DType.F8_E4M3, DType.F8_E5M2};
    List<String> entries = new ArrayList<>(tensors);
    long offset = 0;
    for (int i = 0; i < tensors; i++) {
      String name = "model.layers." + i / 100 + ".block." + i % 100 + ".weight";
      DType dtype = dtypes[random.nextInt(dtypes.length)];
      int elements = 1 + random.nextInt(4);
      int rank = 1 + random.nextInt(3);
      long[] shape = new long[rank];
      java.util.Arrays.fill(shape, 1);
      shape[random.nextInt(rank)] = elements;
      long bytes = dtype.byteSize(elements);
      StringBuilder entry = new StringBuilder(96).append('"').append(name)
          .append("\":{\"dtype\":\"").append(dtype).append("\",\"shape\":[");
      for (int d = 0; d < rank; d++) {
        entry.append(d == 0 ? "" : ",").append(shape[d]);
      }
      entry.append("],\"data_offsets\":[").append(offset).append(',').append(offset + bytes).append("]}");
      entries.add(entry.toString());
      offset += bytes;
    }
    if (keyOrder.equals("shuffled")) {
      Collections.shuffle(entries, random);
    } else if (!keyOrder.equals("file")) {
      throw new IllegalArgumentException(keyOrder);
    }
    StringBuilder json = new StringBuilder(tensors * 100)
        .append("{\"__metadata__\":{\"format\":\"pt\"},").append(String.join(",", entries)).append('}');
    while (json.length() % 8 != 0) {
      json.append(' '); // as the reference writer pads
    }
    header = json.toString().getBytes(StandardCharsets.UTF_8);
    dataLength = offset;
    byte[] data = new byte[(int) dataLength];
    random.nextBytes(data);
    path = Files.createTempFile("loadstone-header-bench", ".safetensors");
    ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
    try (var out = Files.newOutputStream(path)) {
      out.write(length.array());
      out.write(header);
      out.write(data);
    }
    try (SafeTensors file = SafeTensors.open(path)) {
      if (file.tensors().size() != tensors) {
        throw new AssertionError(file.tensors().size());
      }
    }
    System.out.printf("%n%s: header %d bytes, data %d bytes%n", path, header.length, dataLength);
  }

  @TearDown(Level.Trial)
  public void tearDown() throws IOException {
    Files.deleteIfExists(path);
  }

  @Benchmark
  public int open() throws IOException {
    try (SafeTensors file = SafeTensors.open(path)) {
      return file.tensors().size();
    }
  }

  @Benchmark
  public Header parse() throws SafeTensorsException {
    return HeaderParser.parse(header, 0, header.length, dataLength, path);
  }

  @Benchmark
  public byte[] utf8() throws SafeTensorsException {
    HeaderParser.checkText(header, 0, header.length, path);
    return header;
  }

  @Benchmark
  public long tokenize() throws IOException {
    long sum = 0;
    try (JsonParser json = JSON.createParser(header)) {
      JsonToken token;
      while ((token = json.nextToken()) != null) {
        switch (token) {
          case FIELD_NAME -> sum += json.currentName().length();
          case VALUE_STRING -> sum += json.getText().length();
          case VALUE_NUMBER_INT -> sum += json.getLongValue();
          default -> sum++;
        }
      }
    }
    return sum;
  }
}
