package dev.loadstone.remote;

import java.net.URI;
import java.util.Optional;

/**
 * A remote object as its store first described it: its URL, size, and the version it had then,
 * against which every later read is checked (a load of an object that changed meanwhile fails).
 */
public interface RemoteObject {
  /** The URL it was opened by. */
  URI url();

  /** Its size in bytes when it was opened. */
  long size();

  /**
   * What identifies this version of the object (an {@code ETag}, else a {@code Last-Modified}
   * time), if the store said; a read of another version is refused.
   */
  Optional<String> version();

  /**
   * A response header (or object attribute) the store kept from when it was opened, by name in
   * any case: the Hugging Face hub's {@code X-Linked-Etag}, say. None by default.
   */
  default Optional<String> header(String name) {
    return Optional.empty();
  }
}
