package dev.loadstone.s3.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.gaul.s3proxy.AuthenticationType;
import org.gaul.s3proxy.S3Proxy;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStore;
import org.jclouds.blobstore.BlobStoreContext;
import org.jclouds.filesystem.reference.FilesystemConstants;

/**
 * A real S3-compatible server for the tests: S3Proxy in this JVM, on a free port of 127.0.0.1,
 * keeping its objects in a temporary folder (jclouds' filesystem store), checking AWS v4
 * signatures made with fixed test keys. Clients reach it through a counting relay (also on
 * 127.0.0.1), so that tests can tell how many bytes a command transferred.
 */
public final class S3Server implements AutoCloseable {
  /** The test keys, which a signed server checks. */
  public static final String ACCESS_KEY = "loadstone-test-access";
  /** The test secret. */
  public static final String SECRET_KEY = "loadstone-test-secret";

  private final Path root;
  private final BlobStoreContext context;
  private final S3Proxy proxy;
  private final ServerSocket relay;
  private final AtomicLong bytesToClient = new AtomicLong();
  /** Bytes the relay still passes before it drops a connection; negative: none dropped. */
  private final AtomicLong resetAfter = new AtomicLong(-1);

  /** A server that checks AWS v4 (or v2) signatures made with the test keys. */
  public S3Server() throws Exception {
    this(true);
  }

  /**
   * @param signed whether requests must be signed with the test keys; else any request is
   *     served (S3Proxy's authorization none), unsigned ones too, as by {@code curl}
   */
  public S3Server(boolean signed) throws Exception {
    root = Files.createTempDirectory("loadstone-s3proxy");
    Properties properties = new Properties();
    properties.setProperty(FilesystemConstants.PROPERTY_BASEDIR, root.toString());
    context = ContextBuilder.newBuilder("filesystem").overrides(properties).build(BlobStoreContext.class);
    proxy = S3Proxy.builder()
        .blobStore(context.getBlobStore())
        .endpoint(URI.create("http://127.0.0.1:0"))
        .awsAuthentication(signed ? AuthenticationType.AWS_V2_OR_V4 : AuthenticationType.NONE,
            signed ? ACCESS_KEY : "", signed ? SECRET_KEY : "")
        .build();
    proxy.start();
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (!proxy.getState().equals("STARTED")) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("S3Proxy did not start: " + proxy.getState());
      }
      Thread.sleep(10);
    }
    relay = new ServerSocket();
    relay.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
    Thread.ofVirtual().start(this::accept);
  }

  /** The endpoint clients use: the counting relay. */
  /** @return the endpoint */
  public URI endpoint() {
    return URI.create("http://127.0.0.1:" + relay.getLocalPort());
  }

  /** The bytes the server sent to clients (headers and bodies) since the last reset. */
  public long bytesToClient() {
    return bytesToClient.get();
  }

  public void resetCount() {
    bytesToClient.set(0);
  }

  /**
   * Makes the relay drop the connection that carries the server's byte number {@code bytes}
   * from now (once): a reset in the middle of a response.
   */
  public void resetOnceAfter(long bytes) {
    resetAfter.set(bytes);
  }

  /** Whether a reset asked for has not happened yet. */
  public boolean resetPending() {
    return resetAfter.get() >= 0;
  }

  public BlobStore blobs() {
    return context.getBlobStore();
  }

  /** Creates a bucket. */
  public void bucket(String name) {
    blobs().createContainerInLocation(null, name);
  }

  /** Writes (or replaces) an object. */
  public void put(String bucket, String key, byte[] bytes) {
    blobs().putBlob(bucket, blobs().blobBuilder(key).payload(bytes).contentLength(bytes.length).build());
  }

  /** Uploads every file of a local folder under {@code prefix} (which ends with {@code /}). */
  public void putFolder(String bucket, String prefix, Path folder) throws IOException {
    try (var files = Files.list(folder)) {
      for (Path file : files.toList()) {
        put(bucket, prefix + file.getFileName(), Files.readAllBytes(file));
      }
    }
  }

  private void accept() {
    while (!relay.isClosed()) {
      try {
        Socket client = relay.accept();
        Socket server = new Socket(InetAddress.getLoopbackAddress(), proxy.getPort());
        Thread.ofVirtual().start(() -> pump(client, server, null, null));
        Thread.ofVirtual().start(() -> pump(server, client, bytesToClient, resetAfter));
      } catch (IOException e) {
        if (!relay.isClosed()) {
          throw new UncheckedIOException(e);
        }
      }
    }
  }

  private static void pump(Socket from, Socket to, AtomicLong counter, AtomicLong resetAfter) {
    byte[] buffer = new byte[256 << 10];
    try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
      for (int n; (n = in.read(buffer)) >= 0; ) {
        if (resetAfter != null && resetAfter.get() >= 0) {
          long left = resetAfter.getAndAdd(-n);
          if (left >= 0 && left < n) {
            out.write(buffer, 0, (int) left);
            out.flush();
            resetAfter.set(-1);
            to.setSoLinger(true, 0);   // a reset, not an orderly end
            return;
          }
        }
        // Counted before the write: a client that has the bytes never finds the count behind.
        if (counter != null) {
          counter.addAndGet(n);
        }
        out.write(buffer, 0, n);
      }
    } catch (IOException e) {
      // the other side closed
    } finally {
      try {
        from.close();
        to.close();
      } catch (IOException e) {
        // closing
      }
    }
  }

  /**
   * Sets the system properties the SDK's chains and the S3 store read: the test keys, region
   * {@code us-east-1}, and this server as the endpoint override ({@code aws.endpointUrlS3}).
   */
  public void configureClients() {
    System.setProperty("aws.accessKeyId", ACCESS_KEY);
    System.setProperty("aws.secretAccessKey", SECRET_KEY);
    System.setProperty("aws.region", "us-east-1");
    System.setProperty("aws.endpointUrlS3", endpoint().toString());
  }

  /** Clears what {@link #configureClients()} set. */
  public static void clearClients() {
    for (String property : java.util.List.of("aws.accessKeyId", "aws.secretAccessKey", "aws.region", "aws.endpointUrlS3")) {
      System.clearProperty(property);
    }
  }

  @Override
  public void close() throws Exception {
    relay.close();
    proxy.stop();
    context.close();
    try (var walk = Files.walk(root)) {
      walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }
}
