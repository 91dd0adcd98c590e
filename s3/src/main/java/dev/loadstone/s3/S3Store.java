package dev.loadstone.s3;

import dev.loadstone.checkpoint.CheckpointException;
import dev.loadstone.internal.UrlPath;
import dev.loadstone.remote.RemoteObject;
import dev.loadstone.remote.RemoteStore;
import dev.loadstone.remote.RetryableReadException;
import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import software.amazon.awssdk.auth.credentials.AnonymousCredentialsProvider;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.SdkHttpClient;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.NoSuchBucketException;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * The {@link RemoteStore} of {@code s3://BUCKET/KEY} URLs: one {@code GetObject} with a
 * {@code Range} per call, its body copied into the caller's memory as it arrives. A range
 * request carries {@code If-Match} with the ETag the object had when it was opened, and the
 * response's {@code Content-Range} and ETag are checked too, so that bytes of another version
 * of the object are never taken. Messages name the {@code s3://} URL and the S3 error code;
 * never a credential.
 */
final class S3Store implements RemoteStore {
  private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+)");
  /** Bytes copied from the response stream at a time. */
  private static final int COPY_BYTES = 256 << 10;
  private static final ThreadLocal<byte[]> BUFFERS = ThreadLocal.withInitial(() -> new byte[COPY_BYTES]);

  static {
    // HttpURLConnection keeps at most 5 idle connections per host alive by default; a load with
    // more ranges in flight would open a new connection (a TLS handshake, on AWS) for most
    // requests. The property is read once, when the JDK's keep-alive cache is first used: set
    // here unless the application chose a number.
    if (System.getProperty("http.maxConnections") == null) {
      System.setProperty("http.maxConnections", "64");
    }
  }

  private final RemoteOptions options;
  private final S3Settings settings;
  private final S3Client s3;

  private S3Store(RemoteOptions options, S3Settings settings, S3Client s3) {
    this.options = options;
    this.settings = settings;
    this.s3 = s3;
  }

  /** A client with the timeouts of {@code options}, at the endpoint of {@code settings}. */
  static S3Store open(RemoteOptions options, S3Settings settings) throws IOException {
    // One HttpURLConnection per request in flight, kept alive by the JDK between requests.
    SdkHttpClient http = UrlConnectionHttpClient.builder()
        .connectionTimeout(options.connectTimeout())
        .socketTimeout(options.stallTimeout())
        .build();
    S3ClientBuilder builder = S3Client.builder()
        .httpClient(http)
        .region(region())
        .credentialsProvider(credentials())
        // Checksums of whole objects cannot check a range; S3-compatible stores may lack them.
        .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
        .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
        .forcePathStyle(settings.pathStyle());
    settings.endpoint().ifPresent(builder::endpointOverride);
    try {
      return new S3Store(options, settings, builder.build());
    } catch (SdkException e) {
      http.close();
      throw new IOException("cannot set up the S3 client: " + e.getMessage(), e);
    }
  }

  /** The default chain's region, else {@code us-east-1} (what S3-compatible stores accept). */
  private static Region region() {
    try {
      return new DefaultAwsRegionProviderChain().getRegion();
    } catch (SdkClientException e) {
      return Region.US_EAST_1;
    }
  }

  /** The default chain's credentials, else none (unsigned requests: public buckets). */
  private static AwsCredentialsProvider credentials() {
    DefaultCredentialsProvider chain = DefaultCredentialsProvider.builder().build();
    try {
      chain.resolveCredentials();
      return chain;
    } catch (SdkClientException e) {
      chain.close();
      return AnonymousCredentialsProvider.create();
    }
  }

  @Override
  public RemoteOptions options() {
    return options;
  }

  /** An object of an {@code s3://} URL as its first response described it. */
  private record S3Object(URI url, String bucket, String key, long size, Optional<String> version)
      implements RemoteObject {
    @Override
    public String toString() {
      return describe(url);
    }
  }

  /** The bucket and key of an {@code s3://BUCKET/KEY} URL. */
  private record Location(String bucket, String key) {
    static Location of(URI url) {
      String bucket = url.getHost() != null ? url.getHost() : url.getRawAuthority();
      String path = url.getRawPath() == null ? "" : url.getRawPath();
      String key = URLDecoder.decode(path.startsWith("/") ? path.substring(1) : path, StandardCharsets.UTF_8);
      if (bucket == null || bucket.isEmpty() || key.isEmpty()) {
        throw new IllegalArgumentException("not an s3://BUCKET/KEY URL: " + describe(url));
      }
      return new Location(bucket, key);
    }
  }

  @Override
  public Start readStart(URI url, MemorySegment target) throws IOException {
    Location at = Location.of(url);
    GetObjectRequest request = GetObjectRequest.builder().bucket(at.bucket).key(at.key)
        .range("bytes=0-" + (target.byteSize() - 1)).build();
    try (ResponseInputStream<GetObjectResponse> body = s3.getObject(request)) {
      GetObjectResponse response = body.response();
      long size;
      long length;
      if (response.contentRange() != null) {
        Matcher m = contentRange(url, response.contentRange(), 0);
        size = Long.parseLong(m.group(3));
        length = Long.parseLong(m.group(2)) + 1;
      } else {
        // A whole object in answer (an empty one, or a store that ignores Range): read what fits.
        size = response.contentLength() == null ? 0 : response.contentLength();
        length = Math.min(size, target.byteSize());
      }
      long received = copy(body, target.asSlice(0, length), url);
      if (received < length) {
        throw new IOException(describe(url) + ": the response ended after " + received + " of " + length
            + " bytes (a short body)");
      }
      if (length < size && response.contentRange() == null) {
        body.abort();
      }
      return new Start(new S3Object(url, at.bucket, at.key, size, Optional.ofNullable(response.eTag())),
          (int) received);
    } catch (S3Exception e) {
      if (e.statusCode() == 416) {
        // Range on an empty object.
        return new Start(new S3Object(url, at.bucket, at.key, 0, Optional.empty()), 0);
      }
      throw failure(url, at, e);
    } catch (SdkClientException e) {
      throw new IOException(describe(url) + ": " + clientFailure(e), e);
    }
  }

  @Override
  public long readRange(RemoteObject remote, long from, MemorySegment target) throws IOException {
    if (!(remote instanceof S3Object object)) {
      throw new IllegalArgumentException(remote + " was not opened from S3");
    }
    long to = from + target.byteSize() - 1;
    GetObjectRequest.Builder request = GetObjectRequest.builder().bucket(object.bucket).key(object.key)
        .range("bytes=" + from + "-" + to);
    object.version.ifPresent(request::ifMatch);
    ResponseInputStream<GetObjectResponse> body;
    try {
      body = s3.getObject(request.build());
    } catch (S3Exception e) {
      if (e.statusCode() == 412) {
        throw new IOException(describe(object.url) + ": the object changed since it was opened (ETag "
            + object.version.orElse("?") + " then; S3 answered " + code(e) + " to If-Match)", e);
      }
      if (e.statusCode() == 429 || e.statusCode() >= 500) {
        throw new RetryableReadException("S3 " + code(e), 0, Optional.empty(), e);
      }
      throw failure(object.url, new Location(object.bucket, object.key), e);
    } catch (SdkClientException e) {
      throw new RetryableReadException(clientFailure(e), 0, Optional.empty(), e);
    }
    try (body) {
      GetObjectResponse response = body.response();
      String range = response.contentRange();
      if (range == null) {
        body.abort();
        throw new IOException(describe(object.url) + ": the store ignored the Range request (no Content-Range)");
      }
      Matcher m = contentRange(object.url, range, from);
      long size = Long.parseLong(m.group(3));
      if (size != object.size) {
        body.abort();
        throw new IOException(describe(object.url) + ": the object changed since it was opened (" + object.size
            + " bytes then, " + size + " now)");
      }
      if (Long.parseLong(m.group(2)) != to) {
        body.abort();
        throw new IOException(describe(object.url) + ": wrong Content-Range '" + range + "' for bytes " + from + "-" + to);
      }
      if (object.version.isPresent() && response.eTag() != null && !object.version.get().equals(response.eTag())) {
        body.abort();
        throw new IOException(describe(object.url) + ": the object changed since it was opened (ETag "
            + object.version.get() + " then, " + response.eTag() + " now)");
      }
      return copy(body, target, object.url);
    }
  }

  @Override
  public byte[] readAll(URI url, long maxBytes) throws IOException {
    Location at = Location.of(url);
    try (ResponseInputStream<GetObjectResponse> body = s3.getObject(GetObjectRequest.builder()
        .bucket(at.bucket).key(at.key).build())) {
      Long length = body.response().contentLength();
      if (length != null && length > maxBytes) {
        body.abort();
        throw new IOException(describe(url) + ": larger than the " + maxBytes + " bytes accepted");
      }
      byte[] bytes = body.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBytes + 1));
      if (bytes.length > maxBytes) {
        body.abort();
        throw new IOException(describe(url) + ": larger than the " + maxBytes + " bytes accepted");
      }
      return bytes;
    } catch (S3Exception e) {
      throw failure(url, at, e);
    } catch (SdkClientException e) {
      throw new IOException(describe(url) + ": " + clientFailure(e), e);
    }
  }

  /**
   * Copies the body into {@code target}; a failure on the way is worth another request for the
   * rest. Returns the bytes copied (fewer than asked when the body ended early).
   */
  private static long copy(InputStream body, MemorySegment target, URI url) throws IOException {
    byte[] buffer = BUFFERS.get();
    MemorySegment heap = MemorySegment.ofArray(buffer);
    long received = 0;
    long length = target.byteSize();
    try {
      while (received < length) {
        int n = body.read(buffer, 0, (int) Math.min(buffer.length, length - received));
        if (n < 0) {
          return received;
        }
        MemorySegment.copy(heap, 0, target, received, n);
        received += n;
      }
      if (body.read() >= 0) {
        throw new IOException(describe(url) + ": the response holds more bytes than its Content-Range");
      }
      return received;
    } catch (IOException e) {
      if (e.getMessage() != null && e.getMessage().startsWith(describe(url))) {
        throw e;
      }
      throw new RetryableReadException("the connection failed after " + received + " bytes: " + e, received,
          Optional.empty(), e);
    } catch (SdkClientException e) {
      throw new RetryableReadException("the connection failed after " + received + " bytes: " + clientFailure(e),
          received, Optional.empty(), e);
    }
  }

  private static Matcher contentRange(URI url, String range, long from) throws IOException {
    Matcher m = CONTENT_RANGE.matcher(range.strip());
    if (!m.matches() || Long.parseLong(m.group(1)) != from) {
      throw new IOException(describe(url) + ": Content-Range '" + range + "' is not bytes " + from + "-LAST/SIZE");
    }
    return m;
  }

  /** A missing bucket or key, refused access, or another error of S3, naming the URL. */
  private IOException failure(URI url, Location at, S3Exception e) {
    String code = code(e);
    if (e instanceof NoSuchBucketException || "NoSuchBucket".equals(code)) {
      return new CheckpointException(Reason.MISSING_BUCKET, UrlPath.of(url), null,
          "there is no bucket '" + at.bucket + "'" + where() + " (S3 " + code + ")");
    }
    if (e instanceof NoSuchKeyException || "NoSuchKey".equals(code) || e.statusCode() == 404) {
      NoSuchFileException missing = new NoSuchFileException(describe(url), null,
          "no key '" + at.key + "' in bucket '" + at.bucket + "' (S3 " + code + ")");
      missing.initCause(e);
      return missing;
    }
    if (e.statusCode() == 403) {
      return new IOException(describe(url) + ": access refused (S3 " + code + ", HTTP 403); credentials come from "
          + "the AWS default chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...)", e);
    }
    return new IOException(describe(url) + ": S3 " + code + " (HTTP " + e.statusCode() + ")", e);
  }

  private String where() {
    return settings.endpoint().map(uri -> " at " + uri.getScheme() + "://" + uri.getHost()
        + (uri.getPort() == -1 ? "" : ":" + uri.getPort())).orElse("");
  }

  private static String code(S3Exception e) {
    return e.awsErrorDetails() != null && e.awsErrorDetails().errorCode() != null
        ? e.awsErrorDetails().errorCode() : "HTTP " + e.statusCode();
  }

  private static String clientFailure(SdkClientException e) {
    return "the request failed: " + (e.getCause() != null ? e.getCause().toString() : e.getMessage());
  }

  /** {@code s3://bucket/key}, without a query or user information. */
  static String describe(URI url) {
    return url.getScheme() + "://" + (url.getHost() != null ? url.getHost() : url.getRawAuthority())
        + (url.getRawPath() == null ? "" : url.getRawPath());
  }

  @Override
  public void close() {
    s3.close();
  }

  @Override
  public String toString() {
    return "S3Store[" + settings + "]";
  }
}
