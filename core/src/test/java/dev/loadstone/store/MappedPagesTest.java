package dev.loadstone.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MappedPagesTest {
  @TempDir Path dir;

  @Test
  void releasedPagesReadBackTheSameData() throws IOException {
    MemorySegment data = Arena.ofAuto().allocate(3 * 4096 + 100);
    for (long i = 0; i < data.byteSize(); i++) {
      data.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31));
    }
    Path file = dir.resolve("t.safetensors");
    SafeTensorsWriter.write(file, null, List.of(TensorView.of("x", DType.U8, new long[] {data.byteSize()}, data)));
    try (SafeTensors tensors = SafeTensors.open(file)) {
      MemorySegment mapped = tensors.tensor("x").segment();
      MappedPages.populate(mapped);
      MappedPages.release(mapped);
      assertEquals(-1L, mapped.mismatch(data));
    }
  }

  @Test
  void onlyReadOnlyFileMappingsDropPages() {
    MemorySegment anonymous = Arena.ofAuto().allocate(8192);
    assertThrows(IllegalArgumentException.class, () -> MappedPages.release(anonymous));
    assertThrows(IllegalArgumentException.class, () -> MappedPages.release(anonymous.asReadOnly()));
    assertThrows(IllegalArgumentException.class, () -> MappedPages.populate(anonymous));
  }
}
