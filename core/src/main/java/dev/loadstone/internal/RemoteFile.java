package dev.loadstone.internal;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * An opened remote {@code .safetensors} file: the object its first response described, where
 * its data section starts, and the client that reads it.
 *
 * @param object the object (size, validators) as first seen
 * @param dataOffset where the data section starts ({@code 8 + header length})
 * @param client the shared client it is read with
 */
public record RemoteFile(HttpRanges.RemoteObject object, long dataOffset, HttpRanges client) {

  /**
   * Reads {@code target.byteSize()} bytes of the file from byte {@code position}, retrying
   * what did not arrive.
   *
   * @param tensor the tensor the bytes belong to, for messages
   * @throws IOException naming the URL and the tensor if they cannot all be read, or the file
   *     changed since it was opened
   */
  public void read(long position, MemorySegment target, String tensor) throws IOException {
    client.read(object, position, target, "tensor '" + tensor + "'");
  }

  @Override
  public String toString() {
    return object.toString();
  }
}
