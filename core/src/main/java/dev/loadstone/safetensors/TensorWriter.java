package dev.loadstone.safetensors;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A streaming writer of tensors whose names, dtypes and shapes were declared up front: a single
 * file ({@link SafeTensorsWriter}) or a sharded model directory
 * ({@code dev.loadstone.checkpoint.CheckpointWriter}). Stream each tensor's bytes in the order of
 * {@link #tensors()}, then {@link #commit()}; nothing appears at the target before that, and
 * {@link #close()} without a commit leaves the target as it was.
 *
 * <pre>{@code
 * try (TensorWriter out = SafeTensorsWriter.create(path, metadata, specs)) {
 *   for (TensorSpec spec : out.tensors()) {
 *     out.write(spec.name(), bytesOf(spec));     // in chunks of any size
 *   }
 *   out.commit();
 * }
 * }</pre>
 */
public interface TensorWriter extends AutoCloseable {

  /** Every tensor, in the order in which to stream their bytes. */
  List<TensorSpec> tensors();

  /** Appends the next bytes of tensor {@code name}, which must be the one being written. */
  void write(String name, MemorySegment chunk) throws IOException;

  /** Writes a whole tensor, which must match its declared dtype and shape. */
  void write(TensorView tensor) throws IOException;

  /**
   * Writes every declared tensor whole, each from the view of that name in {@code tensors}
   * (given in any order), in the order of {@link #tensors()}, then commits: the one-call write
   * of tensors already in memory or mapped from another file.
   *
   * @throws IllegalArgumentException if a declared tensor has no view, or a view does not match
   *     its declaration
   * @throws IOException if writing or the commit fails; close the writer to discard the output
   */
  default void writeAllAndCommit(Collection<TensorView> tensors) throws IOException {
    Map<String, TensorView> byName = HashMap.newHashMap(tensors.size());
    for (TensorView tensor : tensors) {
      byName.put(tensor.name(), tensor);
    }
    for (TensorSpec spec : tensors()) {
      TensorView tensor = byName.get(spec.name());
      if (tensor == null) {
        throw new IllegalArgumentException("tensor '" + spec.name() + "' was declared but not given");
      }
      write(tensor);
    }
    commit();
  }

  /** Puts the complete output in place, atomically per file. */
  void commit() throws IOException;

  /** The names of the data files this writes, in order. */
  List<String> files();

  /** Discards an uncommitted output; does nothing after {@link #commit()}. */
  @Override
  void close();
}
