package dev.loadstone.safetensors;

import dev.loadstone.checkpoint.CheckpointWriter;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A separate JVM that streams a large file through the writers, for the tests that need a small
 * heap or a process to kill. Every tensor is I64, and element {@code i} of the data section
 * (counting across tensors in file order) holds the value {@code i}, so a reader can check
 * every byte.
 *
 * <p>Arguments: {@code file|checkpoint TARGET MEBIBYTES PAUSE_MILLIS [MAX_SHARD_BYTES]}. Prints
 * {@code started}, then {@code progress N} after each mebibyte, then {@code committed}.
 */
public final class WriterProcess {
  static final int TENSORS = 4;
  static final int CHUNK = 1 << 20;
  private static final ValueLayout.OfLong LE_LONG =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private WriterProcess() {}

  /** The tensors: {@code TENSORS} I64 vectors {@code part0..part3} that share the bytes. */
  public static List<TensorSpec> specs(long mebibytes) {
    long elements = mebibytes * CHUNK / Long.BYTES / TENSORS;
    List<TensorSpec> specs = new ArrayList<>();
    for (int i = 0; i < TENSORS; i++) {
      specs.add(new TensorSpec("part" + i, DType.I64, new long[] {elements}));
    }
    return specs;
  }

  /** Fails unless every element of every tensor holds its index in the data section. */
  public static void verify(List<TensorView> tensorsInFileOrder) {
    long expected = 0;
    for (TensorView tensor : tensorsInFileOrder) {
      MemorySegment data = tensor.segment();
      for (long offset = 0; offset < data.byteSize(); offset += Long.BYTES) {
        long value = data.get(LE_LONG, offset);
        if (value != expected) {
          throw new AssertionError(tensor.name() + ": element " + offset / Long.BYTES + " is "
              + value + ", expected " + expected);
        }
        expected++;
      }
    }
  }

  interface Sink {
    void write(String name, MemorySegment chunk) throws IOException;
  }

  public static void main(String[] args) throws Exception {
    String mode = args[0];
    Path target = Path.of(args[1]);
    long mebibytes = Long.parseLong(args[2]);
    long pause = Long.parseLong(args[3]);
    List<TensorSpec> specs = specs(mebibytes);
    if (mode.equals("file")) {
      try (SafeTensorsWriter out = SafeTensorsWriter.create(target, Map.of("format", "pt"), specs)) {
        System.out.println("started");
        stream(out.tensors(), out::write, pause);
        out.commit();
      }
    } else {
      long maxShard = Long.parseLong(args[4]);
      try (CheckpointWriter out = CheckpointWriter.create(target, Map.of("format", "pt"), specs,
          maxShard)) {
        System.out.println("started");
        stream(out.tensors(), out::write, pause);
        out.commit();
      }
    }
    System.out.println("committed");
  }

  private static void stream(List<TensorSpec> order, Sink sink, long pause) throws Exception {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment buffer = arena.allocate(CHUNK);
      long element = 0;
      long chunks = 0;
      for (TensorSpec spec : order) {
        for (long done = 0; done < spec.byteSize(); ) {
          long size = Math.min(CHUNK, spec.byteSize() - done);
          for (long offset = 0; offset < size; offset += Long.BYTES) {
            buffer.set(LE_LONG, offset, element++);
          }
          sink.write(spec.name(), buffer.asSlice(0, size));
          done += size;
          System.out.println("progress " + ++chunks);
          if (pause > 0) {
            Thread.sleep(pause);
          }
        }
      }
    }
  }
}
