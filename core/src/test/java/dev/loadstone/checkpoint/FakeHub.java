package dev.loadstone.checkpoint;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A small Hugging Face hub on loopback, for tests: the API's revision answer
 * ({@code /api/models/ID/revision/REV}: {@code sha}, {@code siblings}), {@code resolve} URLs
 * that answer as the hub does (an LFS file: a 302 to the CDN on 127.0.0.2 with
 * {@code X-Repo-Commit}, {@code X-Linked-Etag} (its SHA-256) and {@code X-Linked-Size}; another
 * file: the bytes, with its git blob id as {@code ETag}), and the CDN serving blobs by SHA-256
 * with ranges. It counts the bytes the CDN sends, records who sent a token, and on demand cuts
 * the CDN's bodies short or corrupts them.
 */
final class FakeHub implements AutoCloseable {
  private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-(\\d*)");

  private final HttpServer hub;
  private final HttpServer cdn;
  private final ExecutorService executor = Executors.newCachedThreadPool(r -> {
    Thread thread = new Thread(r, "fake-hub");
    thread.setDaemon(true);
    return thread;
  });
  private final String modelId;
  private final String commit;
  private final Map<String, byte[]> files;
  private final Map<String, byte[]> blobs = new ConcurrentHashMap<>();
  /** Bytes of bodies the CDN sent. */
  final AtomicLong cdnBytes = new AtomicLong();
  private final java.util.concurrent.atomic.AtomicInteger cdnBusy = new java.util.concurrent.atomic.AtomicInteger();
  /** The Authorization headers each host received ("hub: Bearer x", "cdn: Bearer x"). */
  final List<String> authorizations = new CopyOnWriteArrayList<>();
  /** The paths the CDN was asked for. */
  final List<String> cdnRequests = new CopyOnWriteArrayList<>();
  /**
   * When not negative: the CDN's bodies from its request of this number on (counting from 0)
   * are cut at half their length, the connection dropped.
   */
  volatile int cutFromRequest = -1;
  /** When set, the CDN flips a byte of this file's body. */
  volatile String corrupt;

  FakeHub(String modelId, String commit, Map<String, byte[]> files) throws IOException {
    this.modelId = modelId;
    this.commit = commit;
    this.files = new LinkedHashMap<>(files);
    hub = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
    cdn = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.2"), 0), 0);
    hub.setExecutor(executor);
    cdn.setExecutor(executor);
    hub.createContext("/", this::hub);
    cdn.createContext("/", this::cdn);
    for (Map.Entry<String, byte[]> file : files.entrySet()) {
      if (isLfs(file.getKey())) {
        blobs.put(sha256(file.getValue()), file.getValue());
      }
    }
    hub.start();
    cdn.start();
  }

  /** The hub's endpoint, {@code http://127.0.0.1:PORT}. */
  URI endpoint() {
    return URI.create("http://127.0.0.1:" + hub.getAddress().getPort());
  }

  static boolean isLfs(String name) {
    return name.endsWith(".safetensors");
  }

  static String sha256(byte[] bytes) {
    return HexFormat.of().formatHex(digest("SHA-256", bytes));
  }

  /** The id git gives a file's content: SHA-1 of {@code "blob SIZE\0"} and the bytes. */
  static String gitBlobId(byte[] bytes) {
    byte[] prefix = ("blob " + bytes.length + "\0").getBytes(StandardCharsets.US_ASCII);
    byte[] all = new byte[prefix.length + bytes.length];
    System.arraycopy(prefix, 0, all, 0, prefix.length);
    System.arraycopy(bytes, 0, all, prefix.length, bytes.length);
    return HexFormat.of().formatHex(digest("SHA-1", all));
  }

  private static byte[] digest(String algorithm, byte[] bytes) {
    try {
      return MessageDigest.getInstance(algorithm).digest(bytes);
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  private void hub(HttpExchange exchange) throws IOException {
    try (exchange) {
      exchange.getRequestHeaders().getOrDefault("Authorization", List.of()).forEach(a -> authorizations.add("hub: " + a));
      String path = exchange.getRequestURI().getRawPath();
      String api = "/api/models/" + modelId + "/revision/";
      if (path.startsWith(api)) {
        String revision = URLDecoder.decode(path.substring(api.length()), StandardCharsets.UTF_8);
        if (!revision.equals("main") && !revision.equals(commit)) {
          send(exchange, 404, "{\"error\":\"Invalid rev id\"}".getBytes(StandardCharsets.UTF_8));
          return;
        }
        StringBuilder json = new StringBuilder("{\"id\":\"" + modelId + "\",\"sha\":\"" + commit + "\",\"siblings\":[");
        int i = 0;
        for (String name : files.keySet()) {
          json.append(i++ == 0 ? "" : ",").append("{\"rfilename\":\"").append(name).append("\"}");
        }
        send(exchange, 200, json.append("],\"private\":false}").toString().getBytes(StandardCharsets.UTF_8));
        return;
      }
      String resolve = "/" + modelId + "/resolve/";
      if (!path.startsWith(resolve)) {
        send(exchange, 404, new byte[0]);
        return;
      }
      String rest = path.substring(resolve.length());
      String revision = rest.substring(0, rest.indexOf('/'));
      String name = URLDecoder.decode(rest.substring(rest.indexOf('/') + 1), StandardCharsets.UTF_8);
      byte[] bytes = files.get(name);
      if (bytes == null || (!revision.equals("main") && !revision.equals(commit))) {
        exchange.getResponseHeaders().add("X-Error-Code", "EntryNotFound");
        send(exchange, 404, new byte[0]);
        return;
      }
      exchange.getResponseHeaders().add("X-Repo-Commit", commit);
      if (isLfs(name)) {
        String sha = sha256(bytes);
        exchange.getResponseHeaders().add("X-Linked-Etag", "\"" + sha + "\"");
        exchange.getResponseHeaders().add("X-Linked-Size", Long.toString(bytes.length));
        exchange.getResponseHeaders().add("ETag", "\"" + gitBlobId(("version https://git-lfs.github.com/spec/v1\noid sha256:"
            + sha).getBytes(StandardCharsets.US_ASCII)) + "\"");
        exchange.getResponseHeaders().add("Location", "http://127.0.0.2:" + cdn.getAddress().getPort() + "/blobs/" + sha
            + "?signature=secret");
        exchange.sendResponseHeaders(302, -1);
        return;
      }
      exchange.getResponseHeaders().add("ETag", "\"" + gitBlobId(bytes) + "\"");
      serve(exchange, bytes, false, false);
    }
  }

  /** Waits until the CDN answers no request (a client's abandoned requests included). */
  void awaitIdle() throws InterruptedException {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (cdnBusy.get() > 0 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    Thread.sleep(50);   // a request on its way in
    while (cdnBusy.get() > 0 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
  }

  private void cdn(HttpExchange exchange) throws IOException {
    cdnBusy.incrementAndGet();
    try (exchange) {
      exchange.getRequestHeaders().getOrDefault("Authorization", List.of()).forEach(a -> authorizations.add("cdn: " + a));
      String path = exchange.getRequestURI().getRawPath();
      int number;
      synchronized (cdnRequests) {
        number = cdnRequests.size();
        cdnRequests.add(path);
      }
      byte[] bytes = path.startsWith("/blobs/") ? blobs.get(path.substring("/blobs/".length())) : null;
      if (bytes == null) {
        send(exchange, 404, new byte[0]);
        return;
      }
      String sha = path.substring("/blobs/".length());
      exchange.getResponseHeaders().add("ETag", "\"" + sha + "\"");
      boolean corrupted = corrupt != null && sha.equals(sha256(files.get(corrupt)));
      serve(exchange, bytes, corrupted, cutFromRequest >= 0 && number >= cutFromRequest);
    } finally {
      cdnBusy.decrementAndGet();
    }
  }

  /** Sends {@code bytes} whole or the range asked for (HEAD: the headers). */
  private void serve(HttpExchange exchange, byte[] bytes, boolean corrupted, boolean cut) throws IOException {
    boolean isCdn = exchange.getLocalAddress().getAddress().getHostAddress().equals("127.0.0.2");
    long from = 0;
    long to = bytes.length - 1;
    int status = 200;
    String range = exchange.getRequestHeaders().getFirst("Range");
    if (range != null) {
      Matcher m = RANGE.matcher(range);
      if (!m.matches()) {
        send(exchange, 416, new byte[0]);
        return;
      }
      from = Long.parseLong(m.group(1));
      to = m.group(2).isEmpty() ? bytes.length - 1 : Math.min(Long.parseLong(m.group(2)), bytes.length - 1);
      if (from >= bytes.length) {
        exchange.getResponseHeaders().add("Content-Range", "bytes */" + bytes.length);
        send(exchange, 416, new byte[0]);
        return;
      }
      status = 206;
      exchange.getResponseHeaders().add("Content-Range", "bytes " + from + "-" + to + "/" + bytes.length);
    }
    exchange.getResponseHeaders().add("Accept-Ranges", "bytes");
    if (exchange.getRequestMethod().equals("HEAD")) {
      exchange.getResponseHeaders().add("Content-Length", Long.toString(to - from + 1));
      exchange.sendResponseHeaders(status, -1);
      return;
    }
    int length = (int) (to - from + 1);
    byte[] body = new byte[length];
    System.arraycopy(bytes, (int) from, body, 0, length);
    if (corrupted && from <= bytes.length / 2 && bytes.length / 2 <= to) {
      body[(int) (bytes.length / 2 - from)] ^= 1;
    }
    exchange.sendResponseHeaders(status, length);
    int sent = cut ? length / 2 : length;
    if (isCdn) {
      // Counted before they are sent, so that a client that has them sees them counted.
      cdnBytes.addAndGet(sent);
    }
    OutputStream out = exchange.getResponseBody();
    out.write(body, 0, sent);
    out.flush();
    if (sent < length) {
      // Drops the connection with the body short of its Content-Length.
      throw new IOException("cut after " + sent + " bytes (a fault of the test)");
    }
  }

  private static void send(HttpExchange exchange, int status, byte[] body) throws IOException {
    exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
    if (body.length > 0) {
      exchange.getResponseBody().write(body);
    }
  }

  @Override
  public void close() {
    hub.stop(0);
    cdn.stop(0);
    executor.shutdownNow();
  }
}
