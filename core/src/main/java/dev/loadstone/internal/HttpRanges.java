package dev.loadstone.internal;

import dev.loadstone.remote.RemoteStore;
import dev.loadstone.remote.RetryableReadException;
import dev.loadstone.safetensors.RemoteOptions;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.foreign.MemorySegment;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.NoSuchFileException;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Range reads over HTTP(S): the bytes go straight into the caller's memory as they arrive (no
 * temporary file, no copy of the whole body), a request that fails
 * on the way (a reset, a 5xx, a 429, a stall) is retried with backoff from the first byte that
 * did not arrive, and a response that cannot be the object's bytes (a {@code 200} to a range
 * request, a wrong {@code Content-Range} or {@code Content-Length}, another {@code ETag} or
 * {@code Last-Modified} than when the object was opened, a short body) fails at once without
 * being read to its end.
 *
 * <p>Redirects are followed here (at most {@link #MAX_REDIRECTS}), so that the bearer token
 * goes only to {@link HttpSettings#tokenOrigin()}: each hop decides afresh, and a redirect to
 * another host never carries it. Messages name the URL the caller asked for (without a query),
 * never a token or a redirect's signed location.
 *
 * <p>{@code http:} URLs are read by Loadstone's own HTTP/1.1 client ({@link Http1Client}: pooled
 * keep-alive connections, each with a small staging buffer), which runs loads at {@code curl}'s
 * speed where the JDK's client ran at half of it; {@code https:} URLs, and {@code HEAD}
 * requests, by the JDK's {@link HttpClient}. The system property
 * {@value #CLIENT_PROPERTY}{@code =jdk} sends {@code http:} URLs to the JDK's client too.
 *
 * <p>One pair of clients per {@link HttpSettings}, shared by the files that use the same
 * settings and closed when the last of them releases it ({@link #acquire}, {@link #release}). It is the
 * {@link RemoteStore} of {@code http} and {@code https} URLs; the retries of range reads follow
 * {@link RemoteReads}' rules, as every store's do.
 */
public final class HttpRanges implements RemoteStore {
  /** The system property that, set to {@code jdk}, reads {@code http:} URLs with the JDK's client. */
  public static final String CLIENT_PROPERTY = "loadstone.http.client";
  /** The most redirects one request follows. */
  static final int MAX_REDIRECTS = 10;
  /** The longest {@code Retry-After} honoured; a longer one is cut to this. */
  private static final Duration MAX_RETRY_AFTER = Duration.ofSeconds(60);
  private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+|\\*)");

  private static final Map<HttpSettings, HttpRanges> SHARED = new HashMap<>();

  static {
    // The JDK client reads responses in buffers of 16 KiB by default, which halved a load's
    // throughput on loopback against 256 KiB (docs/remote.md). The property is read once, when
    // the client's classes load: set here unless the application chose a size, it applies
    // where this class is loaded before any HttpClient of the JVM is made.
    if (System.getProperty("jdk.httpclient.bufsize") == null) {
      System.setProperty("jdk.httpclient.bufsize", Integer.toString(256 << 10));
    }
  }

  private final HttpSettings settings;
  private final HttpClient client;
  /** The client of {@code http:} URLs, or null where they go to {@link #client}. */
  private final Http1Client plain;
  private int users;

  private HttpRanges(HttpSettings settings) {
    this.settings = settings;
    this.client = HttpClient.newBuilder()
        .connectTimeout(settings.connectTimeout())
        .followRedirects(HttpClient.Redirect.NEVER)
        // One connection per request in flight: predictable throughput, like curl's.
        .version(HttpClient.Version.HTTP_1_1)
        .build();
    this.plain = "jdk".equalsIgnoreCase(System.getProperty(CLIENT_PROPERTY)) ? null
        : new Http1Client(settings.connectTimeout());
  }

  /** The client for these settings, shared; {@link #release()} it when done. */
  public static HttpRanges acquire(HttpSettings settings) {
    synchronized (SHARED) {
      HttpRanges ranges = SHARED.computeIfAbsent(settings, HttpRanges::new);
      ranges.users++;
      return ranges;
    }
  }

  /** Gives the client back; the last user's release closes it. Call once per {@link #acquire}. */
  public void release() {
    synchronized (SHARED) {
      if (--users == 0) {
        SHARED.remove(settings);
        client.shutdownNow();
        if (plain != null) {
          plain.close();
        }
      }
    }
  }

  /** The settings this client reads with. */
  public HttpSettings settings() {
    return settings;
  }

  @Override
  public RemoteOptions options() {
    return new RemoteOptions(settings.concurrency(), settings.rangeBytes(), settings.connectTimeout(),
        settings.stallTimeout(), settings.retries(), settings.tokenOrigin(), settings.token());
  }

  /** {@link #release()}: the store interface's name for it. */
  @Override
  public void close() {
    release();
  }

  /**
   * A remote object as its first response described it: size and validators, and the location
   * the redirects led to (read from there until it fails, then from the URL again).
   */
  public static final class RemoteObject implements dev.loadstone.remote.RemoteObject {
    private final URI url;
    private final long size;
    private final String etag;
    private final String lastModified;
    private volatile URI location;
    private Map<String, String> firstHeaders = Map.of();

    RemoteObject(URI url, long size, String etag, String lastModified, URI location) {
      this.url = url;
      this.size = size;
      this.etag = etag;
      this.lastModified = lastModified;
      this.location = location;
    }

    /** The URL asked for. */
    @Override
    public URI url() {
      return url;
    }

    /** The object's size in bytes. */
    @Override
    public long size() {
      return size;
    }

    /** The {@code ETag} of the first response, if any. */
    public Optional<String> etag() {
      return Optional.ofNullable(etag);
    }

    /** The {@code ETag} of the first response, else its {@code Last-Modified}, if any. */
    @Override
    public Optional<String> version() {
      return Optional.ofNullable(etag != null ? etag : lastModified);
    }

    @Override
    public Optional<String> header(String name) {
      return firstHeader(name);
    }

    /**
     * A header of the first request for the object, from the first of its responses (the URL's
     * own, then each redirect's) that had it: how the hub's {@code X-Linked-Etag},
     * {@code X-Linked-Size} and {@code X-Repo-Commit}, sent on its redirect to the CDN, are read.
     *
     * @param name the header's name, in any case
     */
    public Optional<String> firstHeader(String name) {
      return Optional.ofNullable(firstHeaders.get(name.toLowerCase(java.util.Locale.ROOT)));
    }

    @Override
    public String toString() {
      return describe(url);
    }
  }

  /**
   * Reads the first {@code target.byteSize()} bytes of the object at {@code url} (fewer when it
   * is smaller; none of an empty object), and how large it is.
   *
   * @throws NoSuchFileException naming the URL if the object does not exist (HTTP 404, 410;
   *     its cause the {@link RemoteReadException})
   * @throws RemoteReadException if the server refuses, or cannot serve ranges
   */
  @Override
  public Start readStart(URI url, MemorySegment target) throws IOException {
    try {
      return readStart(url, 0, target);
    } catch (RemoteReadException e) {
      if (e.notFound()) {
        throw notFound(url, e);
      }
      if (e.emptyObject()) {
        return new Start(new RemoteObject(url, 0, null, null, url), 0);
      }
      throw e;
    }
  }

  private static NoSuchFileException notFound(URI url, RemoteReadException e) {
    NoSuchFileException missing = new NoSuchFileException(describe(url), null, "HTTP " + e.status());
    missing.initCause(e);
    return missing;
  }

  /**
   * Reads bytes from {@code from} of the object at {@code url} into {@code target} (fewer when
   * the object ends before), and how large it is: {@link #readStart(URI, MemorySegment)} from
   * another byte (a download that resumes).
   *
   * @throws RemoteReadException if the object does not exist, is not longer than {@code from}
   *     ({@link RemoteReadException#emptyObject()}: HTTP 416), or the server refuses
   */
  public Start readStart(URI url, long from, MemorySegment target) throws IOException {
    Exchange exchange = retrying(url, () -> exchange(url, url, from, from + target.byteSize() - 1, target, null, false, 0));
    if (exchange.received != exchange.expected) {
      throw new RemoteReadException(describe(url) + ": the response ended after " + exchange.received + " of "
          + exchange.expected + " bytes (a short body)", -1);
    }
    return new Start(exchange.object, (int) exchange.received);
  }

  /** One attempt of a request. */
  @FunctionalInterface
  private interface Attempt {
    Exchange run() throws IOException;
  }

  /** Runs a request of nothing but headers and a small body again while it fails in a way worth retrying. */
  private Exchange retrying(URI url, Attempt attempt) throws IOException {
    for (int failures = 1; ; failures++) {
      try {
        return attempt.run();
      } catch (RetryableException e) {
        if (failures > settings.retries()) {
          throw new IOException(describe(url) + ": " + e.getMessage() + "; gave up after " + settings.retries()
              + " retries", e);
        }
        RemoteReads.sleep(e.retryAfter().isPresent() ? e.retryAfter().get() : RemoteReads.backoff(failures));
      }
    }
  }

  /**
   * Reads bytes {@code [start, start + target.byteSize())} of {@code object} into
   * {@code target}, retrying what did not arrive ({@link RemoteReads#read}).
   *
   * @param what what the bytes are, for messages (a tensor)
   * @throws IOException naming the URL and {@code what} if they cannot all be read
   */
  public void read(dev.loadstone.remote.RemoteObject object, long start, MemorySegment target, String what)
      throws IOException {
    RemoteReads.read(this, object, start, target, what);
  }

  /**
   * One range request (and its redirects) for bytes from {@code from} of an object this client
   * opened. A 4xx from the location a redirect led to (an expired signed URL, say) makes the
   * next request ask the URL again, and is retried.
   */
  @Override
  public long readRange(dev.loadstone.remote.RemoteObject remote, long from, MemorySegment target) throws IOException {
    if (!(remote instanceof RemoteObject object)) {
      throw new IllegalArgumentException(remote + " was not opened over HTTP");
    }
    long to = from + target.byteSize() - 1;
    URI location = object.location;
    try {
      return exchange(object.url, location, from, to, target, object, true, 0).received;
    } catch (RemoteReadException e) {
      if (!location.equals(object.url) && e.status >= 400 && e.status < 500) {
        object.location = object.url;
        throw new RetryableReadException("HTTP " + e.status + " from the location a redirect led to; asking "
            + describe(object.url) + " again", 0, Optional.of(Duration.ZERO), e);
      }
      throw e;
    }
  }

  /**
   * Reads a whole object of at most {@code maxBytes} bytes (an index), following redirects.
   *
   * @throws RemoteReadException if it does not exist or is larger
   */
  @Override
  public byte[] readAll(URI url, long maxBytes) throws IOException {
    try {
      return retrying(url, () -> exchange(url, url, -1, -1, null, null, false, maxBytes)).collected();
    } catch (LimitException e) {
      throw new RemoteReadException(describe(url) + ": larger than the " + maxBytes + " bytes accepted", -1);
    } catch (RemoteReadException e) {
      if (e.notFound()) {
        throw notFound(url, e);
      }
      throw e;
    }
  }

  /** Thrown inside {@link #readAll} when a body outgrows its limit. */
  private static final class LimitException extends IOException {
    private static final long serialVersionUID = 1L;
  }

  /** A failure worth another request: a reset, a 5xx, a 429, a stall. */
  private static final class RetryableException extends RetryableReadException {
    private static final long serialVersionUID = 1L;

    RetryableException(String message, Optional<Duration> retryAfter, long received, Throwable cause) {
      super(message, received, retryAfter, cause);
    }
  }

  /**
   * One request and its redirects. {@code from < 0}: a plain GET of the whole object, collected
   * in memory. {@code object == null} with a range: the first response of the object, which
   * may end before {@code to} and describes the object.
   */
  private Exchange exchange(URI url, URI location, long from, long to, MemorySegment target, RemoteObject object,
      boolean exact, long limit) throws IOException {
    URI current = location;
    Map<String, String> seen = new HashMap<>();
    for (int hop = 0; ; hop++) {
      Exchange exchange = new Exchange(url, from, to, target, object, exact, limit);
      Map<String, String> headers = new java.util.LinkedHashMap<>();
      if (from >= 0) {
        headers.put("Range", "bytes=" + from + "-" + to);
      }
      if (settings.sendsTokenTo(current)) {
        headers.put("Authorization", "Bearer " + settings.token().orElseThrow());
      }
      if (plain != null && "http".equalsIgnoreCase(current.getScheme())) {
        exchange.send(plain, current, headers, settings.stallTimeout());
      } else {
        HttpRequest.Builder request = HttpRequest.newBuilder(current).GET().timeout(settings.stallTimeout());
        headers.forEach(request::header);
        exchange.send(client, request.build(), settings.stallTimeout());
      }
      HttpHeaders responseHeaders = exchange.headers;
      if (responseHeaders != null) {
        responseHeaders.map().forEach((name, values) -> {
          if (!values.isEmpty()) {
            seen.putIfAbsent(name.toLowerCase(java.util.Locale.ROOT), values.getFirst());
          }
        });
      }
      if (exchange.redirect != null) {
        if (hop == MAX_REDIRECTS) {
          throw new RemoteReadException(describe(url) + ": more than " + MAX_REDIRECTS + " redirects", exchange.status);
        }
        try {
          current = current.resolve(exchange.redirect);
        } catch (IllegalArgumentException e) {
          throw new RemoteReadException(describe(url) + ": redirected to an invalid location", exchange.status, e);
        }
        if (!"http".equalsIgnoreCase(current.getScheme()) && !"https".equalsIgnoreCase(current.getScheme())) {
          throw new RemoteReadException(describe(url) + ": redirected to a " + current.getScheme() + " URL", exchange.status);
        }
        continue;
      }
      if (from >= 0) {
        if (object == null) {
          exchange.object.firstHeaders = Map.copyOf(seen);
        }
        exchange.object.location = current;
      }
      return exchange;
    }
  }

  private RemoteReadException accessRefused(URI url, int code) {
    return new RemoteReadException(describe(url) + ": access refused (HTTP " + code + ")"
        + (settings.sendsTokenTo(url) ? "; the token was sent" : settings.token().isPresent()
            ? "; the token is sent only to " + describe(settings.tokenOrigin()) : "; no token set (HF_TOKEN)"), code);
  }

  /**
   * What a {@code HEAD} request said about an object.
   *
   * @param status the last response's status: 200, or a redirect to another origin
   * @param headers the last response's headers, by lower-case name (first values)
   * @param location where the object's bytes are: the URL (after same-origin redirects), or
   *     the other origin a redirect named
   */
  public record Head(int status, Map<String, String> headers, URI location) {
    /** Copies the headers. */
    public Head {
      headers = Map.copyOf(headers);
    }

    /** A header's value, by its name in any case. */
    public Optional<String> header(String name) {
      return Optional.ofNullable(headers.get(name.toLowerCase(java.util.Locale.ROOT)));
    }
  }

  /**
   * Asks for an object's headers with {@code HEAD}, following redirects only within the URL's
   * origin (a renamed repository, say) and stopping at one to another origin (the hub's CDN),
   * whose headers and location it returns: how {@code huggingface_hub} asks the hub about a
   * file. Resets, 5xx and 429 are retried as reads are; the token goes as for reads.
   *
   * @throws RemoteReadException if the object does not exist ({@link RemoteReadException#notFound()})
   *     or access is refused
   */
  public Head head(URI url) throws IOException {
    URI current = url;
    int hops = 0;
    for (int failures = 1; ; failures++) {
      HttpRequest.Builder request = HttpRequest.newBuilder(current)
          .method("HEAD", HttpRequest.BodyPublishers.noBody()).timeout(settings.stallTimeout());
      if (settings.sendsTokenTo(current)) {
        request.header("Authorization", "Bearer " + settings.token().orElseThrow());
      }
      HttpResponse<Void> response;
      Optional<Duration> retryAfter = Optional.empty();
      String failure;
      try {
        response = client.send(request.build(), HttpResponse.BodyHandlers.discarding());
        int code = response.statusCode();
        if (code != 429 && code < 500) {
          Map<String, String> headers = new HashMap<>();
          response.headers().map().forEach((name, values) -> {
            if (!values.isEmpty()) {
              headers.put(name.toLowerCase(java.util.Locale.ROOT), values.getFirst());
            }
          });
          if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
            URI next;
            try {
              next = current.resolve(response.headers().firstValue("Location").orElseThrow(() ->
                  new RemoteReadException(describe(url) + ": HTTP " + code + " without a Location", code)));
            } catch (IllegalArgumentException e) {
              throw new RemoteReadException(describe(url) + ": redirected to an invalid location", code, e);
            }
            if (sameOrigin(next, current) && hops++ < MAX_REDIRECTS) {
              current = next;
              failures = 0;
              continue;
            }
            return new Head(code, headers, next);
          }
          if (code == 404 || code == 410) {
            throw new RemoteReadException(describe(url) + ": not found (HTTP " + code + ")", code);
          }
          if (code == 401 || code == 403) {
            throw accessRefused(url, code);
          }
          if (code != 200) {
            throw new RemoteReadException(describe(url) + ": HTTP " + code + " to HEAD", code);
          }
          return new Head(code, headers, current);
        }
        failure = "HTTP " + code;
        retryAfter = retryAfter(response.headers());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException(describe(url) + ": interrupted");
      } catch (RemoteReadException e) {
        throw e;
      } catch (IOException e) {
        failure = e instanceof java.net.http.HttpTimeoutException
            ? "no response within " + settings.stallTimeout().toMillis() + " ms" : "the connection failed: " + e;
      }
      if (failures > settings.retries()) {
        throw new IOException(describe(url) + ": " + failure + "; gave up after " + settings.retries() + " retries");
      }
      RemoteReads.sleep(retryAfter.isPresent() ? retryAfter.get() : RemoteReads.backoff(failures));
    }
  }

  private static boolean sameOrigin(URI a, URI b) {
    return a.getScheme() != null && a.getScheme().equalsIgnoreCase(b.getScheme())
        && a.getHost() != null && a.getHost().equalsIgnoreCase(b.getHost()) && port(a) == port(b);
  }

  private static int port(URI uri) {
    return uri.getPort() != -1 ? uri.getPort() : "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
  }

  /** {@code scheme://host[:port]/path} of a URL: no query (a signature), no user information. */
  static String describe(URI url) {
    return RemoteReads.describe(url);
  }

  /** The state of one request: what the response said, and the bytes that arrived. */
  private final class Exchange implements HttpResponse.BodyHandler<Void>, Http1Client.Response {
    final URI url;
    final long from;
    final long to;
    final MemorySegment target;
    final boolean exact;
    final long limit;
    RemoteObject object;
    volatile int status;
    volatile HttpHeaders headers;
    volatile String redirect;
    volatile IOException refusal;
    volatile long received;
    volatile long expected;
    volatile long lastProgress = System.nanoTime();
    volatile Flow.Subscription subscription;
    private final java.io.ByteArrayOutputStream collected;
    private final CompletableFuture<Void> done = new CompletableFuture<>();

    Exchange(URI url, long from, long to, MemorySegment target, RemoteObject object, boolean exact, long limit) {
      this.url = url;
      this.limit = limit;
      this.from = from;
      this.to = to;
      this.target = target;
      this.object = object;
      this.exact = exact;
      this.collected = from < 0 ? new java.io.ByteArrayOutputStream() : null;
    }

    byte[] collected() {
      return collected.toByteArray();
    }

    /** Sends the request and waits for the body, giving up when nothing arrives for {@code stall}. */
    void send(HttpClient client, HttpRequest request, Duration stall) throws IOException {
      CompletableFuture<HttpResponse<Void>> response = client.sendAsync(request, this);
      long poll = Math.max(10, Math.min(stall.toMillis() / 4, 1000));
      while (true) {
        try {
          response.get(poll, TimeUnit.MILLISECONDS);
          break;
        } catch (TimeoutException e) {
          if (System.nanoTime() - lastProgress > stall.toNanos()) {
            abort();
            response.cancel(true);
            throw new RetryableException("no byte arrived for " + stall.toMillis() + " ms (a stalled read)",
                Optional.empty(), received, null);
          }
        } catch (InterruptedException e) {
          abort();
          response.cancel(true);
          Thread.currentThread().interrupt();
          throw new InterruptedIOException(describe(url) + ": interrupted");
        } catch (ExecutionException e) {
          Throwable cause = e.getCause();
          if (refusal != null) {
            throw refusal;
          }
          if (cause instanceof LimitException limit) {
            throw limit;
          }
          // A reset, an early end of the connection, a timeout before the headers.
          throw new RetryableException(cause instanceof java.net.http.HttpTimeoutException
              ? "no response within " + stall.toMillis() + " ms" : "the connection failed: " + cause,
              Optional.empty(), received, cause);
        }
      }
      if (refusal != null) {
        throw refusal;
      }
    }

    /** Sends the request with {@code http}, giving up when nothing arrives for {@code stall}. */
    void send(Http1Client http, URI location, Map<String, String> headers, Duration stall) throws IOException {
      try {
        http.get(location, headers, stall, this);
      } catch (InterruptedIOException e) {
        throw new InterruptedIOException(describe(url) + ": interrupted");
      } catch (Http1Client.ConnectionException e) {
        throw new RetryableException(e instanceof Http1Client.StallException ? e.getMessage()
            : "the connection failed: " + e.getMessage(), Optional.empty(), received, e);
      }
    }

    @Override
    public boolean head(int code, HttpHeaders headers) throws IOException {
      status = code;
      this.headers = headers;
      judge(headers);
      return redirect == null;
    }

    @Override
    public void body(ByteBuffer bytes) throws IOException {
      try {
        take(bytes);
      } catch (RuntimeException e) {
        throw new IOException(describe(url) + ": cannot take the response's bytes: " + e, e);
      }
    }

    /** Writes bytes of the body where they belong: the target, or the collected body. */
    private void take(ByteBuffer item) throws IOException {
      int n = item.remaining();
      if (collected != null) {
        if (collected.size() + (long) n > limit) {
          throw new LimitException();
        }
        byte[] bytes = new byte[n];
        item.get(bytes);
        collected.write(bytes, 0, n);
      } else {
        if (received + n > expected) {
          throw new RemoteReadException(describe(url) + ": the response holds more bytes than its Content-Range", status);
        }
        MemorySegment.copy(MemorySegment.ofBuffer(item), 0, target, received, n);
      }
      received += n;
    }

    private void abort() {
      Flow.Subscription s = subscription;
      if (s != null) {
        s.cancel();
      }
    }

    @Override
    public HttpResponse.BodySubscriber<Void> apply(HttpResponse.ResponseInfo info) {
      lastProgress = System.nanoTime();
      status = info.statusCode();
      HttpHeaders headers = info.headers();
      this.headers = headers;
      try {
        judge(headers);
      } catch (IOException e) {
        refusal = e;
        return new Subscriber(false);
      }
      return new Subscriber(redirect == null);
    }

    /** Decides from the status and headers whether the body is wanted; throws if the response is refused. */
    private void judge(HttpHeaders headers) throws IOException {
      int code = status;
      if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
        redirect = headers.firstValue("Location").orElseThrow(() -> new RemoteReadException(
            describe(url) + ": HTTP " + code + " without a Location", code));
        return;
      }
      if (code == 429 || code >= 500) {
        throw new RetryableException("HTTP " + code, retryAfter(headers), 0, null);
      }
      if (code == 404 || code == 410) {
        throw new RemoteReadException(describe(url) + ": not found (HTTP " + code + ")", code);
      }
      if (code == 401 || code == 403) {
        throw accessRefused(url, code);
      }
      if (from < 0) {
        if (code != 200) {
          throw new RemoteReadException(describe(url) + ": HTTP " + code, code);
        }
        return;
      }
      if (code == 416 && object == null) {
        throw RemoteReadException.empty(describe(url), code);
      }
      if (code == 200 && object == null && headers.firstValueAsLong("Content-Length").orElse(-1) == 0) {
        throw RemoteReadException.empty(describe(url), code);
      }
      if (code == 200) {
        throw new RemoteReadException(describe(url) + ": the server ignored the Range request (HTTP 200 with "
            + headers.firstValueAsLong("Content-Length").stream().mapToObj(n -> n + " bytes").findFirst().orElse("the whole body")
            + "); range reads need a server that honours Range (not read further)", code);
      }
      if (code != 206) {
        throw new RemoteReadException(describe(url) + ": HTTP " + code + " to a range request", code);
      }
      String range = headers.firstValue("Content-Range").orElseThrow(() -> new RemoteReadException(
          describe(url) + ": HTTP 206 without Content-Range", code));
      Matcher m = CONTENT_RANGE.matcher(range.strip());
      if (!m.matches() || m.group(3).equals("*")) {
        throw new RemoteReadException(describe(url) + ": Content-Range '" + range + "' is not bytes FIRST-LAST/SIZE", code);
      }
      long first = Long.parseLong(m.group(1));
      long last = Long.parseLong(m.group(2));
      long size = Long.parseLong(m.group(3));
      boolean wrong = first != from || last < first || last >= size
          || (exact ? last != to : last != Math.min(to, size - 1));
      if (object != null && size != object.size) {
        throw new RemoteReadException(describe(url) + ": the object changed since it was opened (" + object.size
            + " bytes then, " + size + " now)", code);
      }
      if (wrong) {
        throw new RemoteReadException(describe(url) + ": wrong Content-Range '" + range + "' for bytes " + from + "-" + to, code);
      }
      long length = last - first + 1;
      OptionalLong contentLength = headers.firstValueAsLong("Content-Length");
      if (contentLength.isPresent() && contentLength.getAsLong() != length) {
        throw new RemoteReadException(describe(url) + ": Content-Length " + contentLength.getAsLong()
            + " disagrees with Content-Range '" + range + "'", code);
      }
      String etag = headers.firstValue("ETag").orElse(null);
      String lastModified = headers.firstValue("Last-Modified").orElse(null);
      if (object == null) {
        object = new RemoteObject(url, size, etag, lastModified, url);
      } else if (object.etag != null ? !object.etag.equals(etag)
          : object.lastModified != null && !object.lastModified.equals(lastModified)) {
        throw new RemoteReadException(describe(url) + ": the object changed since it was opened ("
            + (object.etag != null ? "ETag " + object.etag + " then, " + etag + " now"
                : "Last-Modified " + object.lastModified + " then, " + lastModified + " now") + ")", code);
      }
      expected = length;
    }

    /** Writes the body where it belongs, or refuses it at once (cancelling the exchange, unread). */
    private final class Subscriber implements HttpResponse.BodySubscriber<Void> {
      private final boolean wanted;

      Subscriber(boolean wanted) {
        this.wanted = wanted;
      }

      @Override
      public CompletableFuture<Void> getBody() {
        return done;
      }

      @Override
      public void onSubscribe(Flow.Subscription s) {
        subscription = s;
        if (!wanted) {
          s.cancel();
          done.complete(null);
          return;
        }
        s.request(1);
      }

      @Override
      public void onNext(List<ByteBuffer> items) {
        try {
          for (ByteBuffer item : items) {
            take(item);
          }
          lastProgress = System.nanoTime();
          subscription.request(1);
        } catch (IOException e) {
          refusal = e instanceof LimitException ? null : e;
          subscription.cancel();
          done.completeExceptionally(e);
        } catch (RuntimeException e) {
          refusal = new IOException(describe(url) + ": cannot take the response's bytes: " + e, e);
          subscription.cancel();
          done.completeExceptionally(e);
        }
      }

      @Override
      public void onError(Throwable error) {
        done.completeExceptionally(error);
      }

      @Override
      public void onComplete() {
        done.complete(null);
      }
    }
  }

  /** {@code Retry-After}: seconds, or an HTTP date; at most {@link #MAX_RETRY_AFTER}. */
  static Optional<Duration> retryAfter(HttpHeaders headers) {
    Optional<String> value = headers.firstValue("Retry-After").map(String::strip);
    if (value.isEmpty()) {
      return Optional.empty();
    }
    Duration wait;
    try {
      wait = Duration.ofSeconds(Long.parseLong(value.get()));
    } catch (NumberFormatException e) {
      try {
        wait = Duration.between(ZonedDateTime.now(), ZonedDateTime.parse(value.get(), DateTimeFormatter.RFC_1123_DATE_TIME));
      } catch (DateTimeParseException e2) {
        return Optional.empty();
      }
    }
    if (wait.isNegative()) {
      wait = Duration.ZERO;
    }
    return Optional.of(wait.compareTo(MAX_RETRY_AFTER) > 0 ? MAX_RETRY_AFTER : wait);
  }
}
