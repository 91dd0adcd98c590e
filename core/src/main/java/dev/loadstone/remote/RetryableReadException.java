package dev.loadstone.remote;

import java.io.IOException;
import java.time.Duration;
import java.util.Optional;

/**
 * A request that failed in a way worth another (a connection reset, a stall, a 5xx, a throttle):
 * thrown by {@link RemoteStore#readRange}, after writing {@link #received()} bytes, which are kept;
 * the next request asks only for the rest. Any other exception from a store fails the read.
 */
public class RetryableReadException extends IOException {
  private static final long serialVersionUID = 1L;
  private final long received;
  private final transient Optional<Duration> retryAfter;

  /**
   * @param message what went wrong, without the URL (the caller adds it)
   * @param received how many bytes were written to the target before the failure
   * @param retryAfter how long the server asked to wait, if it did
   * @param cause the failure, or null
   */
  public RetryableReadException(String message, long received, Optional<Duration> retryAfter, Throwable cause) {
    super(message, cause);
    if (received < 0) {
      throw new IllegalArgumentException("received must be at least 0, not " + received);
    }
    this.received = received;
    this.retryAfter = retryAfter == null ? Optional.empty() : retryAfter;
  }

  /** The bytes written to the target before the failure, from its start. */
  public long received() {
    return received;
  }

  /** How long the server asked to wait before the next request, if it did. */
  public Optional<Duration> retryAfter() {
    return retryAfter;
  }
}
