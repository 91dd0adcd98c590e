package dev.loadstone.safetensors;

import static dev.loadstone.safetensors.TestSafeTensorsFiles.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Named.named;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** After {@link SafeTensors#close()}, views of the file fail cleanly, from any thread. */
class CloseTest {
  private static final int LARGE = 1 << 20;

  @TempDir static Path dir;
  private static Path file;

  @BeforeAll
  static void writeFile() throws IOException {
    byte[] matrix = new byte[4 * 8 * 4];
    byte[] large = new byte[4 * LARGE];
    Random random = new Random(1);
    random.nextBytes(matrix);
    random.nextBytes(large);
    file = TestSafeTensorsFiles.write(dir.resolve("close.safetensors"),
        tensor("matrix", DType.F32, new long[] {4, 8}, matrix), tensor("large", DType.F32, new long[] {LARGE}, large));
  }

  static Stream<Arguments> accesses() {
    return Stream.of(
        access("getFloat", v -> v.getFloat(0), true),
        access("getBits", v -> v.getBits(3), true),
        access("getDouble", v -> v.getDouble(5), true),
        access("copyTo F32", v -> v.copyTo(MemorySegment.ofArray(new float[32]), DType.F32), true),
        access("copyTo BF16", v -> v.copyTo(MemorySegment.ofArray(new short[32]), DType.BF16), true),
        access("copyRangeTo F64", v -> v.copyRangeTo(8, 8, MemorySegment.ofArray(new double[8]), 0, DType.F64), true),
        access("toFloatArray", TensorView::toFloatArray, true),
        access("slice along axis 0", v -> v.slice(0, 0, 1), true),
        access("slice along axis 1", v -> v.slice(1, 2, 4), true),
        access("segment().get", v -> v.segment().get(ValueLayout.JAVA_BYTE, 0), false));
  }

  private static Arguments access(String name, Consumer<TensorView> access, boolean namesFile) {
    return arguments(named(name, access), namesFile);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("accesses")
  void everyAccessAfterCloseThrowsIllegalStateException(Consumer<TensorView> access, boolean namesFile)
      throws IOException {
    SafeTensors tensors = SafeTensors.open(file);
    TensorView matrix = tensors.tensor("matrix");
    TensorView rows = matrix.slice(0, 1, 3); // a zero-copy slice taken while the file was open
    tensors.close();
    for (TensorView view : List.of(matrix, rows)) {
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> access.accept(view));
      if (namesFile) {
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
      }
    }
  }

  @Test
  void closeIsIdempotentAndIsOpenTellsTheState() throws IOException {
    SafeTensors tensors = SafeTensors.open(file);
    assertTrue(tensors.isOpen());
    tensors.close();
    assertFalse(tensors.isOpen());
    tensors.close();
    assertFalse(tensors.isOpen());
  }

  @Test
  void slicesGatheredAlongInnerAxesStayReadableAfterClose() throws IOException {
    TensorView columns;
    float expected;
    try (SafeTensors tensors = SafeTensors.open(file)) {
      TensorView matrix = tensors.tensor("matrix");
      columns = matrix.slice(1, 2, 4);
      expected = matrix.getFloat(matrix.index(3, 3));
    }
    assertEquals(expected, columns.getFloat(columns.index(3, 1)));
  }

  @RepeatedTest(20)
  void closingWhileOtherThreadsReadStopsEachReaderWithIllegalStateException() throws Exception {
    SafeTensors tensors = SafeTensors.open(file);
    TensorView large = tensors.tensor("large");
    float[] floats = new float[LARGE];
    short[] halves = new short[LARGE];
    List<Runnable> reads = List.of(
        new Runnable() {
          private int i;

          @Override
          public void run() {
            large.getFloat(i++ & (LARGE - 1));
          }
        },
        () -> large.copyTo(MemorySegment.ofArray(floats), DType.F32),
        () -> large.copyTo(MemorySegment.ofArray(halves), DType.BF16));
    CountDownLatch started = new CountDownLatch(reads.size());
    Throwable[] outcomes = new Throwable[reads.size()];
    Thread[] readers = new Thread[reads.size()];
    for (int k = 0; k < readers.length; k++) {
      int reader = k;
      readers[k] = Thread.ofPlatform().daemon().start(() -> {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        try {
          reads.get(reader).run();
          started.countDown();
          while (System.nanoTime() < deadline) {
            reads.get(reader).run();
          }
          outcomes[reader] = new AssertionError("reader " + reader + " still ran 30 s after close");
        } catch (Throwable t) {
          outcomes[reader] = t;
        }
      });
    }
    assertTrue(started.await(30, TimeUnit.SECONDS), "the readers did not start");
    tensors.close();
    for (int k = 0; k < readers.length; k++) {
      readers[k].join(TimeUnit.SECONDS.toMillis(40));
      assertFalse(readers[k].isAlive(), "reader " + k + " did not stop");
      assertInstanceOf(IllegalStateException.class, outcomes[k], "reader " + k + " stopped with " + outcomes[k]);
      assertTrue(outcomes[k].getMessage().contains(file.toString()), outcomes[k].getMessage());
    }
  }
}
