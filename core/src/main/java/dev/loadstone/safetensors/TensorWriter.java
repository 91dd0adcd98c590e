package dev.loadstone.safetensors;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;

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

  /** Puts the complete output in place, atomically per file. */
  void commit() throws IOException;

  /** The names of the data files this writes, in order. */
  List<String> files();

  /** Discards an uncommitted output; does nothing after {@link #commit()}. */
  @Override
  void close();
}
