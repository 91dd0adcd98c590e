/**
 * Loadstone's {@code s3://} checkpoints: a {@link dev.loadstone.remote.RemoteStoreProvider} that
 * reads S3 (and S3-compatible stores) with the AWS SDK for Java v2. With this module on the
 * module or class path, {@code Checkpoint.open("s3://bucket/prefix/")} and every command that
 * takes a checkpoint read from S3, as they read {@code https://} URLs.
 */
module dev.loadstone.s3 {
  requires dev.loadstone.core;
  requires software.amazon.awssdk.services.s3;
  requires software.amazon.awssdk.core;
  requires software.amazon.awssdk.awscore;
  requires software.amazon.awssdk.regions;
  requires software.amazon.awssdk.auth;
  requires software.amazon.awssdk.identity.spi;
  requires software.amazon.awssdk.http;
  requires software.amazon.awssdk.http.urlconnection;

  // S3Urls, for the command line's baseline; the provider itself is found by the service loader.
  exports dev.loadstone.s3;

  provides dev.loadstone.remote.RemoteStoreProvider with dev.loadstone.s3.S3StoreProvider;
}
