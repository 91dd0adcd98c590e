package dev.loadstone.internal;

import dev.loadstone.remote.RemoteObject;
import dev.loadstone.remote.RemoteStore;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * An opened remote {@code .safetensors} file: the object its first response described, where
 * its data section starts, and the store that reads it (HTTP, or a provider's such as S3).
 *
 * @param object the object (size, version) as first seen
 * @param dataOffset where the data section starts ({@code 8 + header length})
 * @param store the shared store it is read with
 */
public record RemoteFile(RemoteObject object, long dataOffset, RemoteStore store) {

  /**
   * Reads {@code target.byteSize()} bytes of the file from byte {@code position}, retrying
   * what did not arrive.
   *
   * @param tensor the tensor the bytes belong to, for messages
   * @throws IOException naming the URL and the tensor if they cannot all be read, or the file
   *     changed since it was opened
   */
  public void read(long position, MemorySegment target, String tensor) throws IOException {
    RemoteReads.read(store, object, position, target, "tensor '" + tensor + "'");
  }

  /** Reads bytes that belong to no tensor ({@code what} says what they are, for messages). */
  public void readRaw(long position, MemorySegment target, String what) throws IOException {
    RemoteReads.read(store, object, position, target, what);
  }

  @Override
  public String toString() {
    return RemoteReads.describe(object.url());
  }
}
