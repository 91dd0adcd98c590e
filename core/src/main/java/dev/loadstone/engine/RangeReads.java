package dev.loadstone.engine;

import dev.loadstone.internal.RemoteFile;
import dev.loadstone.internal.UrlPath;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Reads chunks of a remote checkpoint's tensors with HTTP range requests, the remote twin of
 * {@link PositionalReads}: straight into the destination where the bytes need no conversion,
 * else into a staging buffer of one range that the backend converts from. Each reading thread
 * holds at most one staging buffer at a time, so a load stages at most
 * {@code readers × rangeBytes} bytes, whatever the checkpoint's size; nothing is written to
 * disk. A range that cannot be read whole (after the client's retries), or a file that changed
 * since it was opened, throws {@link UncheckedIOException} naming the URL and the tensor.
 */
final class RangeReads implements AutoCloseable {
  private final StagingBuffers stages;

  /**
   * @param readers how many threads read at once (one staging buffer each, made when first needed)
   * @param stageBytes the largest chunk read into a staging buffer
   */
  RangeReads(int readers, long stageBytes) {
    this.stages = new StagingBuffers(readers, stageBytes, 64);
  }

  /** The remote file of a tensor, if it is a tensor of a remote file. */
  static Optional<RemoteFile> remoteFile(TensorView tensor) {
    return tensor.isRemote() ? tensor.file().flatMap(UrlPath::remoteOf) : Optional.empty();
  }

  /**
   * Reads {@code length} bytes of {@code tensor}'s data from byte {@code offset} of it: into
   * {@code destination} if given, else into a staging buffer that {@code use} gets before it is
   * reused.
   *
   * @throws UncheckedIOException naming the URL and the tensor if the read fails
   */
  void read(TensorView tensor, long offset, long length, Optional<MemorySegment> destination,
      Consumer<MemorySegment> use) {
    RemoteFile file = remoteFile(tensor).orElseThrow(() -> new IllegalArgumentException(tensor + " is not remote"));
    long position = file.dataOffset() + tensor.dataOffsets()[0] + offset;
    try {
      if (destination.isPresent()) {
        file.read(position, destination.get(), tensor.name());
        return;
      }
      stages.withBuffer(length, stage -> {
        MemorySegment bytes = stage.asSlice(0, length);
        try {
          file.read(position, bytes, tensor.name());
        } catch (IOException e) {
          throw new UncheckedIOException(e.getMessage(), e);
        }
        use.accept(bytes);
      });
    } catch (IOException e) {
      throw new UncheckedIOException(e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    stages.close();
  }
}
