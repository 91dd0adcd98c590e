package dev.loadstone.remote;

import dev.loadstone.safetensors.RemoteOptions;
import java.io.Closeable;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.URI;
import java.nio.file.NoSuchFileException;

/**
 * Reads remote objects of one kind of URL ({@code http(s)://}, {@code s3://}, ...) with range
 * requests. Thread-safe: a COPY load calls {@link #readRange} from
 * {@link RemoteOptions#concurrency()} threads at once. Loadstone shares one store among the
 * files opened with equal options and closes it after the last of them.
 *
 * <p>Messages name objects by their URL without a query or user information, and never carry
 * a credential.
 */
public interface RemoteStore extends Closeable {

  /** The first bytes of an object, and the object as that response described it. */
  record Start(RemoteObject object, int received) {}

  /** The options the store was opened with (concurrency, range size, timeouts, retries). */
  RemoteOptions options();

  /**
   * Reads the first {@code target.byteSize()} bytes of the object at {@code url} (fewer when it
   * is smaller: an empty object gives a size and count of 0) and describes it. May retry.
   *
   * @throws NoSuchFileException naming the URL if there is no such object
   * @throws IOException naming the URL for any other failure
   */
  Start readStart(URI url, MemorySegment target) throws IOException;

  /**
   * One request for bytes {@code [from, from + target.byteSize())} of {@code object}, written
   * into {@code target} from its start as they arrive.
   *
   * @return the bytes written: all of them, unless the response ended early without an error
   *     (which fails the read: a short body)
   * @throws RetryableReadException if the request failed in a way worth another (the bytes it
   *     wrote before are kept)
   * @throws IOException naming the URL for a failure not worth another: the object is gone, it
   *     changed since it was opened (another version, or size), the response is not the range
   *     asked for
   */
  long readRange(RemoteObject object, long from, MemorySegment target) throws IOException;

  /**
   * Reads a whole object of at most {@code maxBytes} bytes (an index). May retry.
   *
   * @throws NoSuchFileException naming the URL if there is no such object
   * @throws IOException naming the URL if it is larger, or cannot be read
   */
  byte[] readAll(URI url, long maxBytes) throws IOException;

  /** Releases the store's connections. */
  @Override
  void close() throws IOException;
}
