package dev.loadstone.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpHeaders;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The plain HTTP/1.1 client against a scripted server on loopback: how bodies are framed,
 * when connections are reused, and which answers are failures of the connection.
 */
class Http1ClientTest {
  private static final Duration STALL = Duration.ofMillis(500);

  private Server server;
  private Http1Client client;

  @BeforeEach
  void start() throws IOException {
    server = new Server();
    client = new Http1Client(Duration.ofSeconds(2));
  }

  @AfterEach
  void stop() throws IOException {
    client.close();
    server.close();
  }

  @Test
  void keepAliveConnectionsAreReusedAndRequestsCarryTheirHeaders() throws IOException {
    for (int i = 0; i < 3; i++) {
      server.reply("HTTP/1.1 206 Partial Content\r\nContent-Length: 6\r\n\r\nhello" + i);
    }
    for (int i = 0; i < 3; i++) {
      Body body = get("/dir/model.safetensors?sig=a%20b", Map.of("Range", "bytes=0-5"));
      assertEquals(206, body.status);
      assertEquals("hello" + i, body.text());
    }
    assertEquals(1, server.connections.get(), "one connection for three requests");
    String request = server.requests.getFirst();
    assertTrue(request.startsWith("GET /dir/model.safetensors?sig=a%20b HTTP/1.1\r\n"), request);
    assertTrue(request.contains("\r\nHost: 127.0.0.1:" + server.port() + "\r\n"), request);
    assertTrue(request.contains("\r\nRange: bytes=0-5\r\n"), request);
  }

  @Test
  void bodiesLargerThanTheStagingBufferArriveWhole() throws IOException {
    byte[] payload = new byte[3 * Http1Client.STAGING_BYTES + 12_345];
    new Random(7).nextBytes(payload);
    server.reply(("HTTP/1.1 200 OK\r\nContent-Length: " + payload.length + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1),
        payload);
    Body body = get("/big", Map.of());
    assertArrayEquals(payload, body.bytes.toByteArray());
    assertTrue(body.pieces > 1, "delivered in pieces of at most the staging buffer");
  }

  @Test
  void chunkedAndCloseFramedBodiesAreDecoded() throws IOException {
    server.reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "5;name=value\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    server.reply("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", true);
    assertEquals("hello, world", get("/chunked", Map.of()).text());
    assertEquals("until the end", get("/closed", Map.of()).text());
    assertEquals(1, server.connections.get(), "the chunked response kept its connection");
  }

  @Test
  void connectionCloseIsHonoured() throws IOException {
    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\na");
    server.reply("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb");
    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc");
    assertEquals("a", get("/a", Map.of()).text());
    assertEquals("b", get("/b", Map.of()).text());
    assertEquals("c", get("/c", Map.of()).text());
    assertEquals(3, server.connections.get(), "a new connection after Connection: close and after HTTP/1.0");
  }

  @Test
  void interimResponsesAreSkipped() throws IOException {
    server.reply("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    Body body = get("/", Map.of());
    assertEquals(200, body.status);
    assertEquals("ok", body.text());
  }

  @Test
  void anIdleConnectionTheServerDroppedIsReplacedOnce() throws IOException {
    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
    server.dropNextRequest();   // the reused connection reads the request and ends unanswered
    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
    assertEquals("a", get("/a", Map.of()).text());
    assertEquals("b", get("/b", Map.of()).text());
    assertEquals(2, server.connections.get());

    client.close();
    client = new Http1Client(Duration.ofSeconds(2));
    server.dropNextRequest();   // a new connection that fails is a failure: no second try
    Http1Client.ConnectionException e = assertThrows(Http1Client.ConnectionException.class, () -> get("/c", Map.of()));
    assertTrue(e.getMessage().contains("ended before a response"), e.getMessage());
  }

  @Test
  void aBodyNotWantedIsReadOnlyWhenShort() throws IOException {
    server.reply("HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 9\r\n\r\nredirect.");
    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz");
    // The rest of the announced gigabyte never comes: reading it would stall.
    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n" + "x".repeat(1000), false, true);
    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny");
    Body redirect = get("/r", Map.of(), false);
    assertEquals(302, redirect.status);
    assertEquals(0, redirect.bytes.size());
    assertEquals("z", get("/z", Map.of()).text());
    assertEquals(1, server.connections.get(), "the short refused body was read past, the connection kept");

    assertEquals(200, get("/huge", Map.of(), false).status);
    assertEquals("y", get("/y", Map.of()).text());
    assertEquals(2, server.connections.get(), "the refused long body's connection was closed");
  }

  @Test
  void stallsEarlyEndsAndMalformedResponsesAreConnectionFailures() throws IOException {
    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, true);
    long start = System.nanoTime();
    Http1Client.StallException stall = assertThrows(Http1Client.StallException.class, () -> get("/stall", Map.of()));
    assertTrue(System.nanoTime() - start >= STALL.toNanos() * 9 / 10, "waited for the stall timeout");
    assertTrue(stall.getMessage().contains("stalled"), stall.getMessage());

    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true);
    Http1Client.ConnectionException shortBody = assertThrows(Http1Client.ConnectionException.class,
        () -> get("/short", Map.of()));
    assertTrue(shortBody.getMessage().contains("3 bytes into a body of 10"), shortBody.getMessage());

    server.reply("SSH-2.0-OpenSSH\r\n\r\n", true);
    Http1Client.ConnectionException notHttp = assertThrows(Http1Client.ConnectionException.class,
        () -> get("/ssh", Map.of()));
    assertTrue(notHttp.getMessage().contains("not an HTTP/1.x response"), notHttp.getMessage());

    server.reply("HTTP/1.1 200 OK\r\nX-Long: " + "a".repeat(Http1Client.MAX_HEAD_BYTES) + "\r\n\r\n", true);
    Http1Client.ConnectionException longHead = assertThrows(Http1Client.ConnectionException.class,
        () -> get("/long", Map.of()));
    assertTrue(longHead.getMessage().contains("headers are longer than"), longHead.getMessage());

    server.reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", true);
    assertThrows(Http1Client.ConnectionException.class, () -> get("/badchunk", Map.of()));
  }

  @Test
  void whatTheResponseHandlerThrowsGoesThroughAndClosesTheConnection() throws IOException {
    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
    server.reply("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
    IOException refusal = new IOException("refused by the caller");
    IOException thrown = assertThrows(IOException.class, () -> client.get(server.url("/a"), Map.of(), STALL,
        new Http1Client.Response() {
          @Override
          public boolean head(int status, HttpHeaders headers) throws IOException {
            throw refusal;
          }

          @Override
          public void body(ByteBuffer bytes) {}
        }));
    assertEquals(refusal, thrown);
    assertEquals("b", get("/b", Map.of()).text());
    assertEquals(2, server.connections.get());
  }

  @Test
  void aHeaderValueWithALineBreakIsRefused() {
    assertThrows(IllegalArgumentException.class,
        () -> get("/", Map.of("Authorization", "Bearer x\r\nX-Injected: 1")));
    assertEquals(0, server.requests.size());
  }

  @Test
  void aRefusedConnectionIsAConnectionFailure() throws IOException {
    int port;
    try (ServerSocket unused = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = unused.getLocalPort();
    }
    Http1Client.ConnectionException e = assertThrows(Http1Client.ConnectionException.class,
        () -> client.get(URI.create("http://127.0.0.1:" + port + "/"), Map.of(), STALL, new Body(true)));
    assertTrue(e.getMessage().contains("cannot connect"), e.getMessage());
  }

  private Body get(String path, Map<String, String> headers) throws IOException {
    return get(path, headers, true);
  }

  private Body get(String path, Map<String, String> headers, boolean wanted) throws IOException {
    Body body = new Body(wanted);
    client.get(server.url(path), headers, STALL, body);
    return body;
  }

  /** A response handler that keeps what arrived. */
  private static final class Body implements Http1Client.Response {
    final boolean wanted;
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    int status;
    int pieces;

    Body(boolean wanted) {
      this.wanted = wanted;
    }

    @Override
    public boolean head(int status, HttpHeaders headers) {
      this.status = status;
      return wanted;
    }

    @Override
    public void body(ByteBuffer piece) {
      byte[] copy = new byte[piece.remaining()];
      piece.get(copy);
      bytes.writeBytes(copy);
      pieces++;
    }

    String text() {
      return bytes.toString(StandardCharsets.ISO_8859_1);
    }
  }

  /**
   * A loopback server that answers each request, in order, with the next scripted reply: bytes
   * sent as they are, then the connection kept, closed, or left silent (a stall).
   */
  private static final class Server implements AutoCloseable {
    private record Reply(byte[][] parts, boolean close, boolean stall, boolean drop) {}

    final AtomicInteger connections = new AtomicInteger();
    final List<String> requests = new CopyOnWriteArrayList<>();
    private final Deque<Reply> replies = new ArrayDeque<>();
    private final ServerSocket socket = new ServerSocket();
    private final List<Socket> accepted = new CopyOnWriteArrayList<>();

    Server() throws IOException {
      socket.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0));
      Thread.ofPlatform().daemon().name("scripted-http").start(this::accept);
    }

    int port() {
      return socket.getLocalPort();
    }

    URI url(String path) {
      return URI.create("http://127.0.0.1:" + port() + path);
    }

    void reply(String text) {
      reply(text, false);
    }

    void reply(String text, boolean close) {
      reply(text, close, false);
    }

    void reply(String text, boolean close, boolean stall) {
      add(new Reply(new byte[][] {text.getBytes(StandardCharsets.ISO_8859_1)}, close, stall, false));
    }

    void reply(byte[]... parts) {
      add(new Reply(parts, false, false, false));
    }

    void dropNextRequest() {
      add(new Reply(new byte[0][], true, false, true));
    }

    private synchronized void add(Reply reply) {
      replies.add(reply);
    }

    private synchronized Reply next() {
      return replies.poll();
    }

    private void accept() {
      while (!socket.isClosed()) {
        try {
          Socket connection = socket.accept();
          connections.incrementAndGet();
          accepted.add(connection);
          Thread.ofPlatform().daemon().start(() -> serve(connection));
        } catch (IOException e) {
          return;
        }
      }
    }

    private void serve(Socket connection) {
      try (connection) {
        InputStream in = connection.getInputStream();
        while (true) {
          String request = readHead(in);
          if (request == null) {
            return;
          }
          requests.add(request);
          Reply reply = next();
          if (reply == null || reply.drop) {
            return;
          }
          for (byte[] part : reply.parts) {
            connection.getOutputStream().write(part);
          }
          connection.getOutputStream().flush();
          if (reply.stall) {
            Thread.sleep(10_000);
          }
          if (reply.close) {
            return;
          }
        }
      } catch (IOException | InterruptedException e) {
        // the client went away, or the test ended
      }
    }

    private static String readHead(InputStream in) throws IOException {
      ByteArrayOutputStream head = new ByteArrayOutputStream();
      int b;
      while ((b = in.read()) != -1) {
        head.write(b);
        String text = head.toString(StandardCharsets.ISO_8859_1);
        if (text.endsWith("\r\n\r\n")) {
          return text;
        }
      }
      return null;
    }

    @Override
    public void close() throws IOException {
      socket.close();
      for (Socket connection : accepted) {
        connection.close();
      }
    }
  }
}
