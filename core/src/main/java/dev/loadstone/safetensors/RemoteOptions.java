package dev.loadstone.safetensors;

import java.net.URI;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * How remote checkpoints ({@code http://} and {@code https://} URLs) are read. Immutable; each
 * {@code with} method returns a changed copy.
 *
 * <pre>{@code
 * RemoteOptions remote = RemoteOptions.defaults()    // HF_ENDPOINT, HF_TOKEN from the environment
 *     .withConcurrency(32)
 *     .withRangeBytes(8 << 20);
 * try (Checkpoint model = Checkpoint.open("https://huggingface.co/org/name/resolve/main/", remote)) { ... }
 * }</pre>
 *
 * <p>The token goes only to the endpoint's origin (same scheme, host and port), as a bearer
 * token; a redirect to another host never carries it. It appears in no message, log or
 * {@link #toString()}.
 *
 * @param concurrency range requests in flight during a COPY load, at least 1
 * @param rangeBytes bytes per range request during a COPY load (at least 64 KiB); with
 *     {@code concurrency}, the most memory a converting load stages at once
 * @param connectTimeout the longest a connection may take to open
 * @param stallTimeout the longest a response may go without a byte arriving (a stalled read is
 *     retried)
 * @param retries how often a failed request is tried again after a connection reset, a 5xx, a
 *     429 (after its {@code Retry-After}) or a stall, with growing waits
 * @param endpoint the Hugging Face endpoint, the one origin the token is sent to
 * @param token the bearer token, if any
 */
public record RemoteOptions(int concurrency, long rangeBytes, Duration connectTimeout, Duration stallTimeout,
    int retries, URI endpoint, Optional<String> token) {
  /** The hub's endpoint when {@code HF_ENDPOINT} is not set. */
  public static final URI DEFAULT_ENDPOINT = URI.create("https://huggingface.co");
  private static final long MIN_RANGE_BYTES = 64 << 10;

  /** Checks the values. */
  public RemoteOptions {
    Objects.requireNonNull(connectTimeout, "connectTimeout");
    Objects.requireNonNull(stallTimeout, "stallTimeout");
    Objects.requireNonNull(endpoint, "endpoint");
    Objects.requireNonNull(token, "token");
    if (concurrency < 1) {
      throw new IllegalArgumentException("concurrency must be at least 1, not " + concurrency);
    }
    if (rangeBytes < MIN_RANGE_BYTES || rangeBytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("rangeBytes must be between " + MIN_RANGE_BYTES + " and 2^31 - 1, not " + rangeBytes);
    }
    if (retries < 0) {
      throw new IllegalArgumentException("retries must be at least 0, not " + retries);
    }
    if (connectTimeout.isNegative() || connectTimeout.isZero() || stallTimeout.isNegative() || stallTimeout.isZero()) {
      throw new IllegalArgumentException("timeouts must be positive");
    }
    if (endpoint.getHost() == null) {
      throw new IllegalArgumentException("the endpoint needs a host: " + endpoint);
    }
  }

  /**
   * 16 requests of 8 MiB in flight, 10 s to connect, 30 s without a byte, 5 retries; the
   * endpoint from {@code HF_ENDPOINT} (else {@link #DEFAULT_ENDPOINT}) and the token from
   * {@code HF_TOKEN}, as the Hugging Face tools read them.
   */
  public static RemoteOptions defaults() {
    String endpoint = System.getenv("HF_ENDPOINT");
    String token = System.getenv("HF_TOKEN");
    return new RemoteOptions(16, 8L << 20, Duration.ofSeconds(10), Duration.ofSeconds(30), 5,
        endpoint == null || endpoint.isBlank() ? DEFAULT_ENDPOINT : URI.create(endpoint.strip()),
        token == null || token.isBlank() ? Optional.empty() : Optional.of(token.strip()));
  }

  /** With another number of range requests in flight. */
  public RemoteOptions withConcurrency(int newConcurrency) {
    return new RemoteOptions(newConcurrency, rangeBytes, connectTimeout, stallTimeout, retries, endpoint, token);
  }

  /** With another size of range requests. */
  public RemoteOptions withRangeBytes(long newRangeBytes) {
    return new RemoteOptions(concurrency, newRangeBytes, connectTimeout, stallTimeout, retries, endpoint, token);
  }

  /** With another connect timeout. */
  public RemoteOptions withConnectTimeout(Duration newConnectTimeout) {
    return new RemoteOptions(concurrency, rangeBytes, newConnectTimeout, stallTimeout, retries, endpoint, token);
  }

  /** With another stall timeout. */
  public RemoteOptions withStallTimeout(Duration newStallTimeout) {
    return new RemoteOptions(concurrency, rangeBytes, connectTimeout, newStallTimeout, retries, endpoint, token);
  }

  /** With another number of retries. */
  public RemoteOptions withRetries(int newRetries) {
    return new RemoteOptions(concurrency, rangeBytes, connectTimeout, stallTimeout, newRetries, endpoint, token);
  }

  /** With another endpoint (the origin the token is sent to). */
  public RemoteOptions withEndpoint(URI newEndpoint) {
    return new RemoteOptions(concurrency, rangeBytes, connectTimeout, stallTimeout, retries, newEndpoint, token);
  }

  /** With a bearer token, or none ({@code null}). */
  public RemoteOptions withToken(String newToken) {
    return new RemoteOptions(concurrency, rangeBytes, connectTimeout, stallTimeout, retries, endpoint,
        Optional.ofNullable(newToken));
  }

  /** The options, the token hidden. */
  @Override
  public String toString() {
    return "RemoteOptions[concurrency=" + concurrency + ", rangeBytes=" + rangeBytes + ", connectTimeout="
        + connectTimeout + ", stallTimeout=" + stallTimeout + ", retries=" + retries + ", endpoint=" + endpoint
        + ", token=" + (token.isPresent() ? "<set>" : "<none>") + "]";
  }
}
