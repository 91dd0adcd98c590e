package dev.loadstone.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The writes a new file receives: each starts on a 2 MiB boundary and covers whole 2 MiB
 * blocks, but for the file's last, so that Linux caches the file in 2 MiB folios; and together
 * they are exactly the bytes appended, from whatever source.
 */
class BlockAlignedOutputTest {
  private static final int BLOCK = BlockAlignedOutput.BLOCK;

  @TempDir
  Path dir;

  /** A sink that keeps every write's length and the bytes, in order. */
  private static final class Recorder implements BlockAlignedOutput.Sink {
    final List<Long> lengths = new ArrayList<>();
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

    @Override
    public void write(ByteBuffer buffer) {
      lengths.add((long) buffer.remaining());
      byte[] copy = new byte[buffer.remaining()];
      buffer.get(copy);
      bytes.writeBytes(copy);
    }

    void assertBlockAligned() {
      long position = 0;
      for (int i = 0; i < lengths.size(); i++) {
        long length = lengths.get(i);
        assertEquals(0, position % BLOCK, "write " + i + " starts at " + position);
        assertTrue(length > 0, "write " + i + " is empty");
        if (i < lengths.size() - 1) {
          assertEquals(0, length % BLOCK, "write " + i + " of " + lengths.size()
              + " covers " + length + " bytes");
        }
        position += length;
      }
    }
  }

  @Test
  void chunksOfAnySizeFromAnySourceReachTheFileInWholeAlignedBlocks() throws IOException {
    Random random = new Random(7);
    try (Arena arena = Arena.ofConfined()) {
      byte[] data = new byte[(13 << 20) + 4321];
      random.nextBytes(data);
      Path mappedFile = dir.resolve("source.bin");
      Files.write(mappedFile, data);
      MemorySegment mapped;
      try (FileChannel channel = FileChannel.open(mappedFile, StandardOpenOption.READ)) {
        mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, data.length, arena);
      }
      MemorySegment natives = arena.allocate(data.length, 64);
      MemorySegment.copy(data, 0, natives, ValueLayout.JAVA_BYTE, 0, data.length);
      long[] longs = new long[data.length / Long.BYTES + 1];
      MemorySegment.copy(data, 0, MemorySegment.ofArray(longs), ValueLayout.JAVA_BYTE, 0, data.length);
      List<MemorySegment> sources = List.of(MemorySegment.ofArray(data), natives, mapped,
          MemorySegment.ofArray(longs)); // a long[] cannot be viewed as a ByteBuffer

      int[] sizes = {1, 4, 4093, 65_536, BLOCK - 12, BLOCK, 5 << 20};
      Recorder recorder = new Recorder();
      BlockAlignedOutput output = new BlockAlignedOutput(recorder);
      for (long offset = 0, step = 0; offset < data.length; step++) {
        long size = Math.min(sizes[(int) (step % sizes.length)], data.length - offset);
        MemorySegment source = sources.get((int) (step % sources.size()));
        output.append(source.asSlice(offset, size));
        offset += size;
      }
      output.finish();

      recorder.assertBlockAligned();
      assertArrayEquals(data, recorder.bytes.toByteArray());
    }
  }

  @Test
  void wholeBlocksOfABufferableSourceGoToTheFileInOneWrite() throws IOException {
    try (Arena arena = Arena.ofConfined()) {
      Recorder recorder = new Recorder();
      BlockAlignedOutput output = new BlockAlignedOutput(recorder);
      output.append(arena.allocate(100));
      output.append(arena.allocate(BLOCK - 100));
      output.append(arena.allocate(3L * BLOCK + 5));
      output.finish();

      assertEquals(List.of((long) BLOCK, 3L * BLOCK, 5L), recorder.lengths);
    }
  }

  @Test
  void bytesShortOfABoundaryWaitUntilFinish() throws IOException {
    Recorder recorder = new Recorder();
    BlockAlignedOutput output = new BlockAlignedOutput(recorder);
    output.append(MemorySegment.ofArray(new byte[] {1, 2, 3}));
    assertEquals(List.of(), recorder.lengths);

    output.finish();
    assertEquals(List.of(3L), recorder.lengths);
    output.finish();
    assertEquals(List.of(3L), recorder.lengths, "nothing is left to hand over twice");
  }
}
