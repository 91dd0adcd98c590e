package dev.loadstone.internal;

import java.io.IOException;

/**
 * A remote read that failed for good (not worth retrying): the object is missing, access is
 * refused, or the response cannot be the object's bytes. The message names the URL.
 */
public final class RemoteReadException extends IOException {
  private static final long serialVersionUID = 1L;

  /** The HTTP status of the response, or -1 where the failure was not one status. */
  final int status;
  private final boolean empty;

  RemoteReadException(String message, int status) {
    super(message);
    this.status = status;
    this.empty = false;
  }

  private RemoteReadException(String url, int status, boolean empty) {
    super(url + ": the object is empty");
    this.status = status;
    this.empty = empty;
  }

  /** The first range of an object found it empty. */
  static RemoteReadException empty(String url, int status) {
    return new RemoteReadException(url, status, true);
  }

  RemoteReadException(String message, int status, Throwable cause) {
    super(message, cause);
    this.status = status;
    this.empty = false;
  }

  /** The HTTP status of the response, or -1 where the failure was not one status. */
  public int status() {
    return status;
  }

  /**
   * Whether the first range of an object found it empty: HTTP 416, or a {@code 200} without a
   * body (as nginx answers a range request for an empty file).
   */
  public boolean emptyObject() {
    return empty;
  }

  /** Whether the server said the object does not exist (HTTP 404 or 410). */
  public boolean notFound() {
    return status == 404 || status == 410;
  }
}
