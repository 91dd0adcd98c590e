package dev.loadstone.checkpoint;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The nginx of the remote tests, on loopback: the one {@code .ci/run} started (it sets
 * {@code LOADSTONE_TEST_NGINX_URL} and {@code LOADSTONE_TEST_NGINX_ROOT}), else one started here
 * from the same configuration ({@code nginx/nginx.conf} on the test class path) when an nginx
 * binary is installed, stopped when the test JVM exits. Without either the tests are skipped,
 * saying why ({@link #unavailable()}).
 */
final class Nginx {
  private static final List<String> BINARIES = List.of("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx");
  private static Nginx instance;
  private static String unavailable;

  private final int port;
  private final Path root;

  private Nginx(int port, Path root) {
    this.port = port;
    this.root = root;
  }

  /** The server, started on first use; empty when there is none ({@link #unavailable()} says why). */
  static synchronized Optional<Nginx> get() {
    if (instance == null && unavailable == null) {
      try {
        instance = findOrStart();
      } catch (IOException | InterruptedException e) {
        unavailable = "nginx could not be started: " + e.getMessage();
      }
    }
    return Optional.ofNullable(instance);
  }

  /** Why there is no server. */
  static synchronized String unavailable() {
    return unavailable;
  }

  private static Nginx findOrStart() throws IOException, InterruptedException {
    String url = System.getenv("LOADSTONE_TEST_NGINX_URL");
    String root = System.getenv("LOADSTONE_TEST_NGINX_ROOT");
    if (url != null && root != null) {
      return new Nginx(URI.create(url).getPort(), Path.of(root));
    }
    Optional<String> binary = BINARIES.stream().filter(b -> Files.isExecutable(Path.of(b))).findFirst();
    if (binary.isEmpty()) {
      unavailable = "no nginx running (LOADSTONE_TEST_NGINX_URL unset, as .ci/run sets it) and none installed"
          + " (apt-get install -y nginx)";
      return null;
    }
    Path prefix = Files.createTempDirectory("loadstone-nginx");
    Path served = Files.createDirectory(prefix.resolve("www"));
    // Workers of a root master run as nobody: the served folder must be readable by all.
    Files.setPosixFilePermissions(prefix, PosixFilePermissions.fromString("rwxr-xr-x"));
    Files.setPosixFilePermissions(served, PosixFilePermissions.fromString("rwxr-xr-x"));
    String template;
    try (InputStream in = Nginx.class.getResourceAsStream("/nginx/nginx.conf")) {
      template = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    IOException last = null;
    for (int attempt = 0; attempt < 5; attempt++) {
      int port;
      try (ServerSocket probe = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
        port = probe.getLocalPort();
      }
      Path config = prefix.resolve("nginx.conf");
      Files.writeString(config, template.replace("@PREFIX@", prefix.toString())
          .replace("@ROOT@", served.toString()).replace("@PORT@", Integer.toString(port)));
      Process process = new ProcessBuilder(binary.get(), "-p", prefix.toString(), "-e", prefix.resolve("error.log").toString(),
          "-c", config.toString(),
          "-g", "daemon off;").redirectErrorStream(true).redirectOutput(prefix.resolve("stdout.log").toFile()).start();
      Runtime.getRuntime().addShutdownHook(new Thread(() -> stop(process, prefix)));
      for (int wait = 0; wait < 100 && process.isAlive(); wait++) {
        if (listening("127.0.0.1", port) && listening("127.0.0.2", port)) {
          return new Nginx(port, served);
        }
        Thread.sleep(50);
      }
      process.destroy();
      process.waitFor(5, TimeUnit.SECONDS);
      last = new IOException(binary.get() + " did not start: " + Files.readString(prefix.resolve("stdout.log")).strip()
          + " " + (Files.exists(prefix.resolve("error.log")) ? Files.readString(prefix.resolve("error.log")).strip() : ""));
    }
    throw last;
  }

  /** Stops nginx and removes its folder, with everything the tests wrote there. */
  private static void stop(Process process, Path prefix) {
    process.destroy();
    try {
      process.waitFor(5, TimeUnit.SECONDS);
      try (var files = Files.walk(prefix)) {
        for (Path file : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.deleteIfExists(file);
        }
      }
    } catch (IOException | InterruptedException e) {
      // leaves a folder in the temporary directory; nothing else to do at exit
    }
  }

  private static boolean listening(String host, int port) {
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress(host, port), 200);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /** The port, on 127.0.0.1 and 127.0.0.2. */
  int port() {
    return port;
  }

  /** The folder served: {@code ROOT/X} is {@code http://127.0.0.1:PORT/X}. */
  Path root() {
    return root;
  }

  /** A URL on 127.0.0.1. */
  URI url(String path) {
    return URI.create("http://127.0.0.1:" + port + "/" + path);
  }
}
