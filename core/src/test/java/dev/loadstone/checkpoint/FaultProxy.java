package dev.loadstone.checkpoint;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An HTTP/1.1 proxy on a loopback address between the client under test and a server (nginx),
 * that injects faults on demand into the responses to range requests: a reset, a body cut short,
 * a stall, a wrong {@code Content-Range}, a changed {@code ETag}, a 503 with
 * {@code Retry-After}, the whole body (as a server that ignores {@code Range}), or a redirect.
 * One request per connection ({@code Connection: close}); it records each request's headers and
 * counts the body bytes it sent.
 */
final class FaultProxy implements AutoCloseable {
  /** What to do to a response. */
  enum Fault {
    /** Send the head and {@code afterBytes} of the body, then reset the connection. */
    RESET,
    /** Announce half the range's length in {@code Content-Length}, send that much, close. */
    TRUNCATE,
    /** Send the head and {@code afterBytes} of the body, then send nothing for a long time. */
    STALL,
    /** Shift the first byte of {@code Content-Range} by one. */
    WRONG_RANGE,
    /** Replace the {@code ETag} (the object changed). */
    CHANGE_ETAG,
    /** Answer {@code 503} with {@code Retry-After: 1}, without asking the server. */
    SERVER_ERROR,
    /** Drop the {@code Range} header: the server sends the whole object with {@code 200}. */
    IGNORE_RANGE
  }

  private record Planned(Fault fault, long afterBytes) {}

  private final ServerSocket server;
  private final URI upstream;
  private final Deque<Planned> planned = new ArrayDeque<>();
  private final List<Map<String, String>> requests = new CopyOnWriteArrayList<>();
  private final AtomicLong bodyBytesSent = new AtomicLong();
  private volatile URI redirectTo;
  private volatile boolean closed;
  private final Thread acceptor;

  /** A proxy on {@code host} (127.0.0.1, 127.0.0.2) in front of {@code upstream} (scheme, host and port). */
  FaultProxy(String host, URI upstream) throws IOException {
    this.server = new ServerSocket();
    server.bind(new InetSocketAddress(InetAddress.getByName(host), 0));
    this.upstream = upstream;
    this.acceptor = Thread.ofPlatform().daemon().name("fault-proxy").start(this::accept);
  }

  /** The proxy's URL for {@code path}. */
  URI url(String path) {
    return URI.create("http://" + server.getInetAddress().getHostAddress() + ":" + server.getLocalPort() + "/" + path);
  }

  /**
   * The next {@code times} range requests longer than {@code afterBytes} get {@code fault}
   * (after {@code afterBytes} of body, where it applies).
   */
  synchronized FaultProxy inject(Fault fault, int times, long afterBytes) {
    for (int i = 0; i < times; i++) {
      planned.add(new Planned(fault, afterBytes));
    }
    return this;
  }

  /** Every request is answered with a redirect to {@code target} + the request's path. */
  FaultProxy redirectTo(URI target) {
    this.redirectTo = target;
    return this;
  }

  /** The headers of each request so far (names in lower case), with {@code :path}. */
  List<Map<String, String>> requests() {
    return requests;
  }

  /** The body bytes sent to clients so far (each piece counted as it is handed to the socket). */
  long bodyBytesSent() {
    return bodyBytesSent.get();
  }

  /**
   * The fault for a request with this {@code Range} header (null: none): the next planned one,
   * if the range is longer than its {@code afterBytes} (a shorter range would be sent whole).
   */
  private synchronized Planned next(String range) {
    if (range == null || planned.isEmpty()) {
      return null;
    }
    String spec = range.substring(range.indexOf('=') + 1).strip();   // FIRST-LAST
    int dash = spec.indexOf('-');
    long length = Long.parseLong(spec.substring(dash + 1)) - Long.parseLong(spec.substring(0, dash)) + 1;
    return length > planned.peek().afterBytes() ? planned.poll() : null;
  }

  private void accept() {
    while (!closed) {
      try {
        Socket client = server.accept();
        Thread.ofPlatform().daemon().name("fault-proxy-connection").start(() -> serve(client));
      } catch (IOException e) {
        return;
      }
    }
  }

  private void serve(Socket client) {
    try (client) {
      InputStream in = client.getInputStream();
      String head = readHead(in);
      if (head == null) {
        return;
      }
      String[] lines = head.split("\r\n");
      String[] requestLine = lines[0].split(" ");
      Map<String, String> headers = new LinkedHashMap<>();
      headers.put(":path", requestLine[1]);
      for (int i = 1; i < lines.length; i++) {
        int colon = lines[i].indexOf(':');
        if (colon > 0) {
          headers.put(lines[i].substring(0, colon).strip().toLowerCase(Locale.ROOT), lines[i].substring(colon + 1).strip());
        }
      }
      OutputStream out = client.getOutputStream();
      if (redirectTo != null) {
        requests.add(headers);
        out.write(("HTTP/1.1 302 Found\r\nLocation: " + redirectTo.resolve(requestLine[1]) + "\r\nContent-Length: 0\r\n"
            + "Connection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
        return;
      }
      Planned fault = next(headers.get("range"));
      headers.put(":fault", fault == null ? "" : fault.fault().name());
      requests.add(headers);
      if (fault != null && fault.fault() == Fault.SERVER_ERROR) {
        out.write("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
        return;
      }
      StringBuilder forward = new StringBuilder(lines[0]).append("\r\n");
      for (int i = 1; i < lines.length; i++) {
        String name = lines[i].contains(":") ? lines[i].substring(0, lines[i].indexOf(':')).strip().toLowerCase(Locale.ROOT) : "";
        if (name.equals("connection") || (name.equals("range") && fault != null && fault.fault() == Fault.IGNORE_RANGE)) {
          continue;
        }
        forward.append(lines[i]).append("\r\n");
      }
      forward.append("Connection: close\r\n\r\n");
      try (Socket server = new Socket(upstream.getHost(), upstream.getPort())) {
        server.getOutputStream().write(forward.toString().getBytes(StandardCharsets.ISO_8859_1));
        server.getOutputStream().flush();
        InputStream fromServer = server.getInputStream();
        String responseHead = readHead(fromServer);
        if (responseHead == null) {
          return;
        }
        relay(responseHead, fromServer, client, out, fault);
      }
    } catch (IOException e) {
      // the client went away, or a fault ended the connection
    }
  }

  private void relay(String head, InputStream body, Socket client, OutputStream out, Planned fault) throws IOException {
    List<String> lines = new ArrayList<>(List.of(head.split("\r\n")));
    long length = -1;
    for (int i = 1; i < lines.size(); i++) {
      String line = lines.get(i);
      String lower = line.toLowerCase(Locale.ROOT);
      if (lower.startsWith("content-length:")) {
        length = Long.parseLong(line.substring(15).strip());
        if (fault != null && fault.fault() == Fault.TRUNCATE) {
          lines.set(i, "Content-Length: " + length / 2);
        }
      } else if (lower.startsWith("content-range:") && fault != null && fault.fault() == Fault.WRONG_RANGE) {
        String value = line.substring(14).strip();   // bytes A-B/S
        int dash = value.indexOf('-');
        long first = Long.parseLong(value.substring(6, dash));
        lines.set(i, "Content-Range: bytes " + (first + 1) + value.substring(dash));
      } else if (lower.startsWith("etag:") && fault != null && fault.fault() == Fault.CHANGE_ETAG) {
        lines.set(i, "ETag: \"changed-" + System.nanoTime() + "\"");
      } else if (lower.startsWith("connection:")) {
        lines.set(i, "Connection: close");
      }
    }
    out.write((String.join("\r\n", lines) + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
    long limit = Long.MAX_VALUE;
    if (fault != null) {
      switch (fault.fault()) {
        case RESET, STALL -> limit = fault.afterBytes();
        case TRUNCATE -> limit = length / 2;
        default -> { }
      }
    }
    byte[] buffer = new byte[64 << 10];
    long sent = 0;
    int n;
    while (sent < limit && (n = body.read(buffer, 0, (int) Math.min(buffer.length, limit - sent))) > 0) {
      // Counted before the write: a client that has the bytes (and a test that then asks) never
      // finds the count behind.
      bodyBytesSent.addAndGet(n);
      out.write(buffer, 0, n);
      sent += n;
    }
    out.flush();
    if (fault != null && fault.fault() == Fault.RESET) {
      client.setSoLinger(true, 0);   // close() now sends RST
    } else if (fault != null && fault.fault() == Fault.STALL) {
      try {
        Thread.sleep(60_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** The bytes up to and including the blank line, or null at the end of the stream. */
  private static String readHead(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int state = 0;
    int b;
    while ((b = in.read()) != -1) {
      head.write(b);
      state = switch (state) {
        case 0 -> b == '\r' ? 1 : 0;
        case 1 -> b == '\n' ? 2 : b == '\r' ? 1 : 0;
        case 2 -> b == '\r' ? 3 : 0;
        case 3 -> b == '\n' ? 4 : 0;
        default -> 0;
      };
      if (state == 4) {
        String text = head.toString(StandardCharsets.ISO_8859_1);
        return text.substring(0, text.length() - 4);
      }
      if (head.size() > 64 << 10) {
        throw new IOException("head too long");
      }
    }
    return null;
  }

  @Override
  public void close() throws IOException {
    closed = true;
    server.close();
    acceptor.interrupt();
  }
}
