package dev.loadstone.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.loadstone.safetensors.TestSafeTensorsFiles.TestTensor;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A file of a bit over 4.5 GiB, sparse so that it costs only a few pages of disk: offsets past
 * 2 GiB and 4 GiB must work everywhere, as the format's offsets are 64-bit.
 */
class LargeFileTest {
  private static final long ROW = 1 << 20;
  private static final long ROWS = 4608; // 4.5 GiB of U8
  private static final long ROW_PAST_2_GIB = 2500;
  private static final long ROW_PAST_4_GIB = 4200;
  private static final int MARK_COLUMN = 1000;
  private static final float[] TAIL = {-1.5f, 2.5f, 1e30f, -0f};

  @TempDir Path dir;

  @Test
  void tensorsBeyondFourGibReadAndSliceCorrectly() throws IOException {
    TestTensor head = new TestTensor("head", DType.F32, 4);
    TestTensor big = new TestTensor("big", DType.U8, ROWS, ROW);
    TestTensor tail = new TestTensor("tail", DType.F32, TAIL.length);
    byte[] prefix = TestSafeTensorsFiles.prefix(List.of(head, big, tail));
    long bigStart = prefix.length + head.byteLength();
    long tailStart = bigStart + big.byteLength();
    byte[] mark = mark();
    byte[] last = {1, 2, 3, 4, 5, 6, 7, (byte) 0xFF};

    Path file = dir.resolve("large.safetensors");
    assumeTrue(Files.getFileStore(dir).getUsableSpace() > 64 << 20, "less than 64 MiB free in the temp directory");
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
        StandardOpenOption.SPARSE)) {
      write(channel, 0, prefix);
      write(channel, prefix.length, floats(1, 2, 3, 4));
      write(channel, bigStart + ROW_PAST_2_GIB * ROW + MARK_COLUMN, mark);
      write(channel, bigStart + ROW_PAST_4_GIB * ROW + MARK_COLUMN, mark);
      write(channel, tailStart - last.length, last);
      write(channel, tailStart, floats(TAIL)); // the last write sets the file's size
    } catch (IOException e) {
      Files.deleteIfExists(file);
      Assumptions.abort("the temp file system cannot hold a sparse " + (tailStart + 16) + "-byte file: " + e);
    }

    try (SafeTensors tensors = SafeTensors.open(file)) {
      TensorView bigView = tensors.tensor("big");
      TensorView tailView = tensors.tensor("tail");
      assertArrayEquals(new long[] {head.byteLength() + big.byteLength(), head.byteLength() + big.byteLength() + 16},
          tailView.dataOffsets());
      assertArrayEquals(TAIL, tailView.toFloatArray());
      assertEquals(1f, tensors.tensor("head").getFloat(0));

      for (long row : new long[] {ROW_PAST_2_GIB, ROW_PAST_4_GIB}) {
        for (int i = 0; i < mark.length; i++) {
          assertEquals(mark[i] & 0xFF, bigView.getLong(bigView.index(row, MARK_COLUMN + i)));
        }
        assertEquals(mark[0], bigView.segment().get(ValueLayout.JAVA_BYTE, row * ROW + MARK_COLUMN));
      }
      assertEquals(0, bigView.getLong(bigView.index(3000, 5)), "a hole reads as zero");
      byte[] lastBytes = new byte[last.length];
      bigView.copyRangeTo(bigView.elementCount() - last.length, last.length, MemorySegment.ofArray(lastBytes), 0, DType.U8);
      assertArrayEquals(last, lastBytes);

      TensorView rows = bigView.slice(0, ROW_PAST_4_GIB - 1, ROW_PAST_4_GIB + 1);
      assertEquals(bigView.segment().address() + (ROW_PAST_4_GIB - 1) * ROW, rows.segment().address());
      assertArrayEquals(new long[] {head.byteLength() + (ROW_PAST_4_GIB - 1) * ROW, head.byteLength() + (ROW_PAST_4_GIB + 1) * ROW},
          rows.dataOffsets());
      float[] marked = new float[mark.length];
      rows.copyRangeTo(rows.index(1, MARK_COLUMN), mark.length, MemorySegment.ofArray(marked), 0, DType.F32);
      for (int i = 0; i < mark.length; i++) {
        assertEquals(mark[i] & 0xFF, marked[i]);
      }

      TensorView past2 = bigView.slice(0, ROW_PAST_2_GIB, ROWS);
      assertEquals(ROWS - ROW_PAST_2_GIB, past2.dim(0));
      assertEquals(mark[5] & 0xFF, past2.getLong(past2.index(0, MARK_COLUMN + 5)));
      assertEquals(mark[7] & 0xFF, past2.getLong(past2.index(ROW_PAST_4_GIB - ROW_PAST_2_GIB, MARK_COLUMN + 7)));
      assertEquals(last[7] & 0xFF, past2.getLong(past2.elementCount() - 1));
    } finally {
      Files.deleteIfExists(file);
    }
  }

  private static byte[] mark() {
    byte[] mark = new byte[256];
    for (int i = 0; i < mark.length; i++) {
      mark[i] = (byte) (i * 37 + 11);
    }
    return mark;
  }

  private static byte[] floats(float... values) {
    ByteBuffer buffer = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float value : values) {
      buffer.putFloat(value);
    }
    return buffer.array();
  }

  private static void write(FileChannel channel, long position, byte[] bytes) throws IOException {
    ByteBuffer buffer = ByteBuffer.wrap(bytes);
    while (buffer.hasRemaining()) {
      channel.write(buffer, position + buffer.position());
    }
  }
}
