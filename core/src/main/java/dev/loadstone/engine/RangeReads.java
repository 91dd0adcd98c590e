package dev.loadstone.engine;

import dev.loadstone.internal.RemoteFile;
import dev.loadstone.internal.UrlPath;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * Reads chunks of a remote checkpoint's tensors with range requests (HTTP, S3, ...), the remote twin of
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
   * Reads byte ranges of {@code tensor}'s data, one range request each: into
   * {@code destinations.apply(index)} if given, else into a staging buffer whose bytes
   * {@code use} gets before it is reused.
   *
   * @return the bytes read
   * @throws UncheckedIOException naming the URL and the tensor if a read fails
   */
  long read(TensorView tensor, List<Pieces.ByteRange> ranges, IntFunction<Optional<MemorySegment>> destinations,
      Pieces.RangeUse use) {
    RemoteFile file = remoteFile(tensor).orElseThrow(() -> new IllegalArgumentException(tensor + " is not remote"));
    long bytesRead = 0;
    for (int i = 0; i < ranges.size(); i++) {
      long position = file.dataOffset() + tensor.dataOffsets()[0] + ranges.get(i).offset();
      long length = ranges.get(i).length();
      int index = i;
      try {
        Optional<MemorySegment> destination = destinations.apply(i);
        if (destination.isPresent()) {
          file.read(position, destination.get(), tensor.name());
        } else {
          stages.withBuffer(length, stage -> {
            MemorySegment bytes = stage.asSlice(0, length);
            try {
              file.read(position, bytes, tensor.name());
            } catch (IOException e) {
              throw new UncheckedIOException(e.getMessage(), e);
            }
            use.accept(index, bytes);
          });
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e.getMessage(), e);
      }
      bytesRead += length;
    }
    return bytesRead;
  }

  /**
   * Reads bytes {@code [position, position + length)} of a remote file (at most the staging
   * size) into a staging buffer that {@code use} gets before it is reused: bytes no tensor's
   * copy reads (the header), read to hash them.
   *
   * @throws UncheckedIOException naming the URL if the read fails
   */
  void readRaw(RemoteFile file, long position, long length, String what, Consumer<MemorySegment> use) {
    stages.withBuffer(length, stage -> {
      MemorySegment bytes = stage.asSlice(0, length);
      try {
        file.readRaw(position, bytes, what);
      } catch (IOException e) {
        throw new UncheckedIOException(e.getMessage(), e);
      }
      use.accept(bytes);
    });
  }

  @Override
  public void close() {
    stages.close();
  }
}
