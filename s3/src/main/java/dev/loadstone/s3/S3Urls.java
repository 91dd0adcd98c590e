package dev.loadstone.s3;

import java.net.URI;
import java.util.Optional;

/** What the environment makes of {@code s3://} URLs, for tools that reach the same objects otherwise. */
public final class S3Urls {
  private S3Urls() {}

  /**
   * The plain HTTP URL of the object at {@code s3Url} at the configured endpoint override, path
   * style ({@code ENDPOINT/BUCKET/KEY}): what an unsigned client such as {@code curl} fetches
   * from an S3-compatible store that allows anonymous reads. Empty without an endpoint override
   * ({@code AWS_ENDPOINT_URL_S3}, {@code AWS_ENDPOINT_URL}, or their system properties).
   *
   * @throws IllegalArgumentException if {@code s3Url} is not {@code s3://BUCKET/KEY}
   */
  public static Optional<URI> endpointUrl(URI s3Url) {
    if (!"s3".equalsIgnoreCase(s3Url.getScheme()) || s3Url.getRawAuthority() == null) {
      throw new IllegalArgumentException("not an s3://BUCKET/KEY URL: " + S3Store.describe(s3Url));
    }
    String bucket = s3Url.getHost() != null ? s3Url.getHost() : s3Url.getRawAuthority();
    return S3Settings.fromEnvironment().endpoint().map(endpoint -> {
      String base = endpoint.toString().replaceAll("/+$", "");
      return URI.create(base + "/" + bucket + (s3Url.getRawPath() == null ? "" : s3Url.getRawPath()));
    });
  }
}
