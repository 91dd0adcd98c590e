package dev.loadstone.s3;

import java.net.URI;
import java.util.Optional;

/**
 * Where and how the S3 client connects, beyond what the SDK's provider chains find: the endpoint
 * override (S3-compatible stores) and path-style addressing.
 *
 * @param endpoint the endpoint override, if any
 * @param pathStyle whether buckets are addressed in the path ({@code http://host/bucket/key})
 */
record S3Settings(Optional<URI> endpoint, boolean pathStyle) {

  /**
   * From the environment: the endpoint from {@code aws.endpointUrlS3}, {@code aws.endpointUrl}
   * (system properties), {@code AWS_ENDPOINT_URL_S3}, {@code AWS_ENDPOINT_URL} (the SDK's
   * names, in its order); path style when an endpoint is set, unless
   * {@code loadstone.s3.pathStyle} (or {@code LOADSTONE_S3_PATH_STYLE}) says {@code false}.
   */
  static S3Settings fromEnvironment() {
    Optional<URI> endpoint = first(System.getProperty("aws.endpointUrlS3"), System.getProperty("aws.endpointUrl"),
        System.getenv("AWS_ENDPOINT_URL_S3"), System.getenv("AWS_ENDPOINT_URL")).map(S3Settings::endpoint);
    Optional<String> pathStyle = first(System.getProperty("loadstone.s3.pathStyle"), System.getenv("LOADSTONE_S3_PATH_STYLE"));
    return new S3Settings(endpoint, pathStyle.map(Boolean::parseBoolean).orElse(endpoint.isPresent()));
  }

  private static URI endpoint(String text) {
    URI uri;
    try {
      uri = URI.create(text);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("the S3 endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) is not a URL", e);
    }
    if (uri.getScheme() == null || uri.getHost() == null) {
      throw new IllegalArgumentException("the S3 endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) needs a scheme and host");
    }
    return uri;
  }

  private static Optional<String> first(String... values) {
    for (String value : values) {
      if (value != null && !value.isBlank()) {
        return Optional.of(value.strip());
      }
    }
    return Optional.empty();
  }
}
