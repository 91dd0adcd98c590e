package dev.loadstone.internal;

import dev.loadstone.safetensors.TensorSpec;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.safetensors.TensorWriter;
import java.io.IOException;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The one-call write both writers offer for tensors already in memory (or mapped from another
 * file): declare them, write each whole in the writer's order, commit. Whatever fails, the
 * writer is closed, so an uncommitted output leaves nothing behind.
 */
public final class OneCallWrite {
  /** Starts the writer for the declared tensors: {@code SafeTensorsWriter.create} or the like. */
  @FunctionalInterface
  public interface Opener {
    TensorWriter open(List<TensorSpec> specs) throws IOException;
  }

  private OneCallWrite() {}

  /**
   * Writes {@code tensors}, which may come in any order, through the writer {@code opener}
   * starts for their specs, and commits it.
   *
   * @throws IllegalArgumentException as the opener, or the writer's {@code write(TensorView)}
   * @throws IOException if writing or the commit fails
   */
  public static void write(Collection<TensorView> tensors, Opener opener) throws IOException {
    Objects.requireNonNull(tensors, "tensors");
    List<TensorSpec> specs = tensors.stream().map(TensorSpec::of).toList();
    try (TensorWriter out = opener.open(specs)) {
      Map<String, TensorView> byName = HashMap.newHashMap(specs.size());
      for (TensorView tensor : tensors) {
        byName.put(tensor.name(), tensor);
      }
      for (TensorSpec spec : out.tensors()) {
        out.write(byName.get(spec.name()));
      }
      out.commit();
    }
  }
}
