package dev.loadstone.internal;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.net.http.HttpHeaders;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code GET} requests over plain HTTP/1.1 ({@code http:} URLs), on keep-alive connections kept
 * per host and port, each reading its responses through its own small staging buffer.
 *
 * <p>Why not the JDK's client for these: a load reads gigabytes by range requests in parallel,
 * and the staging buffer is what makes it fast. The kernel writes each socket read into the
 * buffer, which stays the same few pages for the connection's life, and a user-space copy takes
 * the bytes on to the variables; the kernel writing into memory it has not written before (fresh
 * variables) costs many times more on virtual machines with shadow paging, such as the one the
 * figures in docs/remote.md came from. The JDK client's own buffers, flow control and selector
 * thread made the same loads run at 0.4-0.8x of {@code curl}'s speed; this client runs at curl's.
 *
 * <p>It speaks just what range reads need: one request at a time per connection (no
 * pipelining), bodies framed by {@code Content-Length}, {@code chunked} or the end of the
 * connection, interim {@code 1xx} responses skipped. The caller decides from the status and
 * headers whether it wants the body ({@link Response#head}); a body it does not want is read
 * only when short (a redirect's), else the connection is closed unread. A connection taken from
 * the pool that fails before its response's first byte (the server closed it while idle) is
 * replaced by a new one once, transparently: {@code GET} is idempotent.
 *
 * <p>Failures of the connection itself (connect, reset, early end, no byte for the stall
 * timeout, a response that is not HTTP) are thrown as {@link ConnectionException}; what the
 * {@link Response} throws goes through unchanged, and the connection is closed.
 */
final class Http1Client implements AutoCloseable {
  /** Bytes of each connection's staging buffer: socket reads are at most this large. */
  static final int STAGING_BYTES = 256 << 10;
  /** The largest status line and headers accepted. */
  static final int MAX_HEAD_BYTES = 64 << 10;
  /** A body not wanted is read to keep the connection only up to this size. */
  private static final int DRAIN_BYTES = 64 << 10;
  /** Idle connections kept per host and port; more are closed when given back. */
  private static final int MAX_IDLE = 64;

  /** What a request's response goes to. */
  interface Response {
    /**
     * The final response's status and headers arrived.
     *
     * @return whether the body is wanted
     * @throws IOException to refuse the response (the connection is closed, the body unread)
     */
    boolean head(int status, HttpHeaders headers) throws IOException;

    /** The next bytes of the body (valid only during the call). */
    void body(ByteBuffer bytes) throws IOException;
  }

  /** The connection failed, not the response's content: worth another request. */
  static class ConnectionException extends IOException {
    private static final long serialVersionUID = 1L;

    ConnectionException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** No byte arrived for the stall timeout. */
  static final class StallException extends ConnectionException {
    private static final long serialVersionUID = 1L;

    StallException(Duration stall) {
      super("no byte arrived for " + stall.toMillis() + " ms (a stalled read)", null);
    }
  }

  private final Duration connectTimeout;
  private final Map<String, ArrayDeque<Connection>> idle = new HashMap<>();
  private boolean closed;

  /** A client whose connections give up connecting after {@code connectTimeout}. */
  Http1Client(Duration connectTimeout) {
    this.connectTimeout = connectTimeout;
  }

  /**
   * Sends {@code GET url} with {@code headers} (besides {@code Host}) and hands the response to
   * {@code response}; returns when its body has been delivered whole.
   *
   * @param stall the longest the response may go without a byte, headers included
   * @throws ConnectionException if the connection fails
   * @throws InterruptedIOException if the thread is interrupted
   */
  void get(URI url, Map<String, String> headers, Duration stall, Response response) throws IOException {
    byte[] request = request(url, headers);
    String key = key(url);
    for (boolean fresh = false; ; fresh = true) {
      Connection connection = fresh ? null : takeIdle(key);
      boolean reused = connection != null;
      if (connection == null) {
        connection = Connection.open(address(url), connectTimeout);
      }
      boolean keep = false;
      try {
        keep = connection.exchange(request, stall, response);
        return;
      } catch (StallException e) {
        throw e;
      } catch (ConnectionException e) {
        if (reused && !connection.responded) {
          continue;   // closed by the server while idle: once more on a new connection
        }
        throw e;
      } finally {
        if (keep) {
          giveBack(key, connection);
        } else {
          connection.close();
        }
      }
    }
  }

  /** Closes the idle connections; those in use close when their requests end. */
  @Override
  public void close() {
    List<Connection> closing = new ArrayList<>();
    synchronized (idle) {
      closed = true;
      idle.values().forEach(closing::addAll);
      idle.clear();
    }
    closing.forEach(Connection::close);
  }

  private Connection takeIdle(String key) {
    while (true) {
      Connection connection;
      synchronized (idle) {
        ArrayDeque<Connection> connections = idle.get(key);
        connection = connections == null ? null : connections.pollLast();
      }
      if (connection == null || connection.usable()) {
        return connection;
      }
      connection.close();
    }
  }

  private void giveBack(String key, Connection connection) {
    synchronized (idle) {
      ArrayDeque<Connection> connections = idle.computeIfAbsent(key, k -> new ArrayDeque<>());
      if (!closed && connections.size() < MAX_IDLE) {
        connections.addLast(connection);
        return;
      }
    }
    connection.close();
  }

  private static String key(URI url) {
    return url.getHost().toLowerCase(Locale.ROOT) + ":" + port(url);
  }

  private static int port(URI url) {
    return url.getPort() == -1 ? 80 : url.getPort();
  }

  private static InetSocketAddress address(URI url) {
    String host = url.getHost();
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    return new InetSocketAddress(host, port(url));
  }

  private static byte[] request(URI url, Map<String, String> headers) {
    String target = (url.getRawPath() == null || url.getRawPath().isEmpty() ? "/" : url.getRawPath())
        + (url.getRawQuery() == null ? "" : "?" + url.getRawQuery());
    StringBuilder request = new StringBuilder(256).append("GET ").append(target).append(" HTTP/1.1\r\n")
        .append("Host: ").append(url.getHost()).append(url.getPort() == -1 ? "" : ":" + url.getPort()).append("\r\n")
        .append("User-Agent: loadstone\r\nAccept-Encoding: identity\r\n");
    headers.forEach((name, value) -> {
      if (value.indexOf('\r') >= 0 || value.indexOf('\n') >= 0) {
        throw new IllegalArgumentException("header " + name + " holds a line break");
      }
      request.append(name).append(": ").append(value).append("\r\n");
    });
    return request.append("\r\n").toString().getBytes(StandardCharsets.ISO_8859_1);
  }

  /** One connection: its channel, a selector for its timeouts, and its staging buffer. */
  private static final class Connection {
    private final SocketChannel channel;
    private final Selector selector;
    private final SelectionKey key;
    /** The bytes read and not yet used lie between position and limit. */
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(STAGING_BYTES);
    /** Whether the current request's response has begun to arrive. */
    boolean responded;

    private Connection(SocketChannel channel, Selector selector) throws IOException {
      this.channel = channel;
      this.selector = selector;
      this.key = channel.register(selector, SelectionKey.OP_CONNECT);
      buffer.limit(0);
    }

    static Connection open(InetSocketAddress address, Duration connectTimeout) throws IOException {
      if (address.isUnresolved()) {
        throw new ConnectionException("cannot resolve " + address.getHostString(), null);
      }
      SocketChannel channel = null;
      Selector selector = null;
      try {
        channel = SocketChannel.open();
        channel.configureBlocking(false);
        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        selector = Selector.open();
        Connection connection = new Connection(channel, selector);
        if (!channel.connect(address)) {
          connection.await(SelectionKey.OP_CONNECT, connectTimeout, "connecting");
          channel.finishConnect();
        }
        connection.key.interestOps(SelectionKey.OP_READ);
        return connection;
      } catch (ConnectionException | InterruptedIOException e) {
        closeQuietly(channel, selector);
        throw e;
      } catch (IOException e) {
        closeQuietly(channel, selector);
        throw new ConnectionException("cannot connect to " + address + ": " + e, e);
      }
    }

    /** Whether an idle connection can take a request: not closed by the server, nothing unasked-for sent. */
    boolean usable() {
      try {
        buffer.clear();
        int n = channel.read(buffer);
        buffer.limit(0);
        return n == 0;
      } catch (IOException e) {
        return false;
      }
    }

    /** Sends the request and delivers the response; returns whether the connection may be reused. */
    boolean exchange(byte[] request, Duration stall, Response response) throws IOException {
      responded = false;
      buffer.clear().limit(0);
      write(ByteBuffer.wrap(request), stall);
      Head head;
      do {
        head = readHead(stall);
      } while (head.status >= 100 && head.status < 200);
      boolean wanted = response.head(head.status, head.headers);
      boolean keepAlive = head.keepAlive;
      String encoding = head.headers.firstValue("Transfer-Encoding").orElse(null);
      long length = encoding != null ? -1 : contentLength(head.headers);
      boolean chunked = encoding != null && encoding.toLowerCase(Locale.ROOT).strip().endsWith("chunked");
      if (head.status == 204 || head.status == 304) {
        length = 0;
      }
      if (!wanted) {
        if (length >= 0 && length <= DRAIN_BYTES) {
          deliver(length, stall, null);
          return keepAlive && !buffer.hasRemaining();
        }
        return false;
      }
      if (chunked) {
        deliverChunked(stall, response);
      } else if (length >= 0) {
        deliver(length, stall, response);
      } else {
        // Framed by the end of the connection: what arrived with the headers, then the rest.
        do {
          deliver(buffer.remaining(), stall, response);
        } while (fill(Integer.MAX_VALUE, stall));
        return false;
      }
      return keepAlive && !buffer.hasRemaining() && (encoding == null || chunked);
    }

    /** The response's status line and headers. */
    private record Head(int status, HttpHeaders headers, boolean keepAlive) {}

    private Head readHead(Duration stall) throws IOException {
      int scanned = buffer.position();
      while (true) {
        int end = headEnd(scanned);
        if (end >= 0 && end - buffer.position() <= MAX_HEAD_BYTES) {
          return parseHead(end);
        }
        scanned = Math.max(buffer.position(), buffer.limit() - 3);
        if (end >= 0 || buffer.remaining() >= MAX_HEAD_BYTES) {
          throw new ProtocolException("the response's headers are longer than " + MAX_HEAD_BYTES + " bytes");
        }
        int before = buffer.position();
        if (!fill(Integer.MAX_VALUE, stall)) {
          throw new ConnectionException(responded ? "the connection ended inside the response's headers"
              : "the connection ended before a response", null);
        }
        scanned -= before;   // fill() moved the unread bytes to the front
      }
    }

    /** The index after the blank line that ends the head, scanning from {@code from}; -1 if not there yet. */
    private int headEnd(int from) {
      for (int i = Math.max(from, buffer.position()); i < buffer.limit(); i++) {
        if (buffer.get(i) == '\n') {
          if (i + 1 < buffer.limit() && buffer.get(i + 1) == '\n') {
            return i + 2;
          }
          if (i + 2 < buffer.limit() && buffer.get(i + 1) == '\r' && buffer.get(i + 2) == '\n') {
            return i + 3;
          }
        }
      }
      return -1;
    }

    private Head parseHead(int end) throws ProtocolException {
      byte[] bytes = new byte[end - buffer.position()];
      buffer.get(bytes);
      String[] lines = new String(bytes, StandardCharsets.ISO_8859_1).split("\r?\n");
      String statusLine = lines[0];
      if (!statusLine.startsWith("HTTP/1.") || statusLine.length() < 12 || statusLine.charAt(8) != ' ') {
        throw new ProtocolException("not an HTTP/1.x response: '" + printable(statusLine) + "'");
      }
      int status;
      try {
        status = Integer.parseInt(statusLine.substring(9, 12));
      } catch (NumberFormatException e) {
        throw new ProtocolException("no status code in '" + printable(statusLine) + "'");
      }
      Map<String, List<String>> headers = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
      for (int i = 1; i < lines.length; i++) {
        int colon = lines[i].indexOf(':');
        if (colon <= 0) {
          throw new ProtocolException("a header line without a name: '" + printable(lines[i]) + "'");
        }
        headers.computeIfAbsent(lines[i].substring(0, colon).strip(), k -> new ArrayList<>())
            .add(lines[i].substring(colon + 1).strip());
      }
      HttpHeaders parsed = HttpHeaders.of(headers, (name, value) -> true);
      String connection = parsed.firstValue("Connection").orElse("").toLowerCase(Locale.ROOT);
      boolean keepAlive = statusLine.startsWith("HTTP/1.1") ? !connection.contains("close") : connection.contains("keep-alive");
      return new Head(status, parsed, keepAlive);
    }

    private static long contentLength(HttpHeaders headers) throws ProtocolException {
      List<String> values = headers.allValues("Content-Length");
      long length = -1;
      for (String value : values) {
        long parsed;
        try {
          parsed = Long.parseLong(value.strip());
        } catch (NumberFormatException e) {
          throw new ProtocolException("Content-Length '" + printable(value) + "' is not a number");
        }
        if (parsed < 0 || (length >= 0 && parsed != length)) {
          throw new ProtocolException("Content-Length " + values + " is not one length");
        }
        length = parsed;
      }
      return length;
    }

    /** Hands the next {@code length} bytes to {@code response} (or drops them if it is null). */
    private void deliver(long length, Duration stall, Response response) throws IOException {
      long left = length;
      while (left > 0) {
        if (!buffer.hasRemaining() && !fill(left, stall)) {
          throw new ConnectionException("the connection ended " + (length - left) + " bytes into a body of "
              + length, null);
        }
        int n = (int) Math.min(left, buffer.remaining());
        if (response != null) {
          response.body(buffer.slice(buffer.position(), n));
        }
        buffer.position(buffer.position() + n);
        left -= n;
      }
    }

    private void deliverChunked(Duration stall, Response response) throws IOException {
      while (true) {
        String line = readLine(stall);
        int semicolon = line.indexOf(';');
        long size;
        try {
          size = Long.parseLong((semicolon < 0 ? line : line.substring(0, semicolon)).strip(), 16);
        } catch (NumberFormatException e) {
          throw new ProtocolException("a chunk size '" + printable(line) + "' is not hexadecimal");
        }
        if (size < 0) {
          throw new ProtocolException("a negative chunk size");
        }
        if (size == 0) {
          while (!readLine(stall).isEmpty()) {
            // trailer fields: not used
          }
          return;
        }
        deliver(size, stall, response);
        if (!readLine(stall).isEmpty()) {
          throw new ProtocolException("a chunk longer than its size");
        }
      }
    }

    private String readLine(Duration stall) throws IOException {
      while (true) {
        for (int i = buffer.position(); i < buffer.limit(); i++) {
          if (buffer.get(i) == '\n') {
            byte[] bytes = new byte[i - buffer.position()];
            buffer.get(bytes);
            buffer.get();
            String line = new String(bytes, StandardCharsets.ISO_8859_1);
            return line.endsWith("\r") ? line.substring(0, line.length() - 1) : line;
          }
        }
        if (buffer.remaining() > 4096) {
          throw new ProtocolException("a chunk's size line is longer than 4096 bytes");
        }
        if (!fill(Integer.MAX_VALUE, stall)) {
          throw new ConnectionException("the connection ended inside a chunked body", null);
        }
      }
    }

    /**
     * Reads more bytes after those not yet used (moved to the buffer's front), at most
     * {@code most}; false at the end of the connection.
     */
    private boolean fill(long most, Duration stall) throws IOException {
      buffer.compact();
      if (most < buffer.remaining()) {
        buffer.limit(buffer.position() + (int) most);
      }
      try {
        long deadline = System.nanoTime() + stall.toNanos();
        boolean late = false;
        while (true) {
          int n = read();
          if (n != 0) {
            responded |= n > 0;
            return n > 0;
          }
          if (late) {
            throw new StallException(stall);
          }
          await(SelectionKey.OP_READ, Duration.ofNanos(Math.max(1, deadline - System.nanoTime())), null);
          late = System.nanoTime() - deadline >= 0;
        }
      } finally {
        buffer.flip();
      }
    }

    private int read() throws ConnectionException {
      try {
        return channel.read(buffer);
      } catch (IOException e) {
        throw new ConnectionException("the connection failed: " + e, e);
      }
    }

    private void write(ByteBuffer bytes, Duration stall) throws IOException {
      while (bytes.hasRemaining()) {
        int n;
        try {
          n = channel.write(bytes);
        } catch (IOException e) {
          throw new ConnectionException("the connection failed: " + e, e);
        }
        if (n == 0) {
          key.interestOps(SelectionKey.OP_WRITE);
          try {
            await(SelectionKey.OP_WRITE, stall, "sending the request");
          } finally {
            key.interestOps(SelectionKey.OP_READ);
          }
        }
      }
    }

    /**
     * Waits until the channel is ready for {@code op} or {@code timeout} passes; a non-null
     * {@code what} makes the timeout an error saying what was being done.
     */
    private void await(int op, Duration timeout, String what) throws IOException {
      long millis = Math.max(1, timeout.toMillis());
      int ready;
      try {
        ready = selector.select(millis);
      } catch (IOException e) {
        throw new ConnectionException("the connection failed: " + e, e);
      }
      selector.selectedKeys().clear();
      if (Thread.currentThread().isInterrupted()) {
        throw new InterruptedIOException("interrupted");
      }
      if (ready == 0 && what != null) {
        throw new ConnectionException("no answer within " + millis + " ms " + what, null);
      }
    }

    void close() {
      closeQuietly(channel, selector);
    }

    private static void closeQuietly(SocketChannel channel, Selector selector) {
      try {
        if (selector != null) {
          selector.close();
        }
      } catch (IOException e) {
        // closing: nothing left to do
      }
      try {
        if (channel != null) {
          channel.close();
        }
      } catch (IOException e) {
        // closing: nothing left to do
      }
    }
  }

  /** A response that breaks HTTP/1.1's rules. */
  private static final class ProtocolException extends ConnectionException {
    private static final long serialVersionUID = 1L;

    ProtocolException(String message) {
      super(message, null);
    }
  }

  private static String printable(String text) {
    String cut = text.length() > 80 ? text.substring(0, 80) + "..." : text;
    return cut.replaceAll("[^\\x20-\\x7e]", "?");
  }
}
