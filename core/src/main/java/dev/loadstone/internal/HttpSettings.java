package dev.loadstone.internal;

import java.net.URI;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * How remote files are read over HTTP: the public {@code RemoteOptions} of the format package,
 * as the HTTP client here takes them.
 *
 * @param concurrency range requests in flight during a load
 * @param rangeBytes bytes per range request during a load
 * @param connectTimeout the longest a connection may take to open
 * @param stallTimeout the longest a response may go without a byte (headers included)
 * @param retries how often a failed request is tried again (resets, 5xx, 429, stalls)
 * @param tokenOrigin the only origin (scheme, host, port) the token is sent to
 * @param token the bearer token, if any; never printed
 */
public record HttpSettings(int concurrency, long rangeBytes, Duration connectTimeout, Duration stallTimeout,
    int retries, URI tokenOrigin, Optional<String> token) {

  /** The settings of a client that reads with {@code options}. */
  public static HttpSettings of(dev.loadstone.safetensors.RemoteOptions options) {
    return new HttpSettings(options.concurrency(), options.rangeBytes(), options.connectTimeout(),
        options.stallTimeout(), options.retries(), options.endpoint(), options.token());
  }

  /** Checks the values. */
  public HttpSettings {
    Objects.requireNonNull(connectTimeout, "connectTimeout");
    Objects.requireNonNull(stallTimeout, "stallTimeout");
    Objects.requireNonNull(tokenOrigin, "tokenOrigin");
    Objects.requireNonNull(token, "token");
  }

  /** Whether a request to {@code uri} may carry the token: same scheme, host and port as the origin. */
  boolean sendsTokenTo(URI uri) {
    return token.isPresent()
        && tokenOrigin.getScheme() != null && tokenOrigin.getScheme().equalsIgnoreCase(uri.getScheme())
        && tokenOrigin.getHost() != null && tokenOrigin.getHost().equalsIgnoreCase(uri.getHost())
        && port(tokenOrigin) == port(uri);
  }

  private static int port(URI uri) {
    return uri.getPort() != -1 ? uri.getPort() : "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
  }

  @Override
  public String toString() {
    return "HttpSettings[concurrency=" + concurrency + ", rangeBytes=" + rangeBytes + ", connectTimeout="
        + connectTimeout + ", stallTimeout=" + stallTimeout + ", retries=" + retries + ", tokenOrigin="
        + tokenOrigin + ", token=" + (token.isPresent() ? "<set>" : "<none>") + "]";
  }
}
