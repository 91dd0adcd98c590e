package dev.loadstone.safetensors;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Writes safetensors files for the dtype and view tests, byte by byte as the format describes
 * them, without going through any writer of the library.
 */
final class TestSafeTensorsFiles {
  private TestSafeTensorsFiles() {}

  /** A header entry; tensors are laid out in the order given. */
  record TestTensor(String name, DType dtype, long... shape) {
    TestTensor {
      if (!name.matches("[A-Za-z0-9._-]+")) {
        throw new IllegalArgumentException("keep test names free of JSON escapes: " + name);
      }
    }

    long byteLength() {
      return Arrays.stream(shape).reduce(1, Math::multiplyExact) * dtype.bits() / 8;
    }
  }

  /** A header entry with its bytes. */
  record Tensor(TestTensor spec, byte[] data) {}

  static Tensor tensor(String name, DType dtype, long[] shape, byte[] data) {
    return new Tensor(new TestTensor(name, dtype, shape), data);
  }

  /**
   * The bytes before the data section: the header's length as 8 little-endian bytes, then the
   * JSON header, padded with spaces to a multiple of 8 bytes as the reference writer does.
   */
  static byte[] prefix(List<TestTensor> specs) {
    StringBuilder json = new StringBuilder("{");
    long offset = 0;
    for (TestTensor spec : specs) {
      long end = offset + spec.byteLength();
      String shape = Arrays.stream(spec.shape()).mapToObj(Long::toString).collect(Collectors.joining(","));
      json.append(json.length() > 1 ? "," : "")
          .append('"').append(spec.name()).append("\":{\"dtype\":\"").append(spec.dtype().name())
          .append("\",\"shape\":[").append(shape).append("],\"data_offsets\":[")
          .append(offset).append(',').append(end).append("]}");
      offset = end;
    }
    json.append('}');
    while ((8 + json.length()) % 8 != 0) {
      json.append(' ');
    }
    byte[] header = json.toString().getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN)
        .putLong(header.length).put(header).array();
  }

  /** Writes a complete file of these tensors and returns its path. */
  static Path write(Path file, Tensor... tensors) throws IOException {
    for (Tensor tensor : tensors) {
      if (tensor.data().length != tensor.spec().byteLength()) {
        throw new IllegalArgumentException(tensor.spec() + " needs " + tensor.spec().byteLength() + " bytes");
      }
    }
    byte[] prefix = prefix(Arrays.stream(tensors).map(Tensor::spec).toList());
    int size = prefix.length + Arrays.stream(tensors).mapToInt(t -> t.data().length).sum();
    ByteBuffer bytes = ByteBuffer.allocate(size).put(prefix);
    for (Tensor tensor : tensors) {
      bytes.put(tensor.data());
    }
    return Files.write(file, bytes.array());
  }

  /**
   * Packs raw element codes as the format stores them: element {@code i} in bits
   * {@code [i*bits, (i+1)*bits)} counting from the least significant bit of byte 0. For whole-byte
   * types this is plain little-endian order; {@link BitSet#toByteArray()} numbers bits the same way.
   */
  static byte[] pack(DType dtype, long... codes) {
    int bits = dtype.bits();
    BitSet set = new BitSet();
    for (int i = 0; i < codes.length; i++) {
      for (int bit = 0; bit < bits; bit++) {
        set.set(i * bits + bit, (codes[i] >>> bit & 1) != 0);
      }
    }
    if (codes.length * bits % 8 != 0) {
      throw new IllegalArgumentException(codes.length + " elements of " + dtype + " are not whole bytes");
    }
    return Arrays.copyOf(set.toByteArray(), codes.length * bits / 8);
  }
}
