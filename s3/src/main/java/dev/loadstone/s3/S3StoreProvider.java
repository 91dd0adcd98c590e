package dev.loadstone.s3;

import dev.loadstone.remote.RemoteStore;
import dev.loadstone.remote.RemoteStoreProvider;
import dev.loadstone.safetensors.RemoteOptions;
import java.io.IOException;

/**
 * Reads {@code s3://BUCKET/KEY} URLs with the AWS SDK for Java v2. Found by
 * {@link java.util.ServiceLoader}; applications do not call it.
 *
 * <p>Credentials and region come from the SDK's default provider chains (environment,
 * system properties, profile files, container and instance roles); with no credentials
 * anywhere, requests go unsigned (public buckets). An endpoint override for S3-compatible stores
 * comes from {@code AWS_ENDPOINT_URL_S3} or {@code AWS_ENDPOINT_URL} (or the system properties
 * {@code aws.endpointUrlS3}, {@code aws.endpointUrl}), and then addresses buckets path-style.
 */
public final class S3StoreProvider implements RemoteStoreProvider {
  /** For the service loader. */
  public S3StoreProvider() {}

  @Override
  public boolean supports(String scheme) {
    return scheme.equals("s3");
  }

  @Override
  public RemoteStore open(RemoteOptions options) throws IOException {
    return S3Store.open(options, S3Settings.fromEnvironment());
  }
}
