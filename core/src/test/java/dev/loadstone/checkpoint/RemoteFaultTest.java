package dev.loadstone.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.loadstone.checkpoint.FaultProxy.Fault;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.VarStore;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Remote loads through {@link FaultProxy} in front of nginx: what is worth retrying is retried
 * (resets, stalls, 503 with {@code Retry-After}) from the first byte that did not arrive, what
 * cannot be the object's bytes fails the load naming the URL and the tensor, a server that
 * ignores {@code Range} is caught without reading its body, and the token never leaves the
 * endpoint's host.
 */
class RemoteFaultTest {
  static Nginx nginx;
  String base;
  Path file;
  FaultProxy proxy;

  @BeforeAll
  static void server() {
    nginx = Nginx.get().orElse(null);
  }

  @BeforeEach
  void checkpoint() throws IOException {
    // Each test is reported skipped, with the reason (no server running, none installed).
    assumeTrue(nginx != null, () -> "no nginx: " + Nginx.unavailable());
    base = "f-" + UUID.randomUUID();
    Path dir = Files.createDirectories(nginx.root().resolve(base));
    file = dir.resolve("model.safetensors");
    SafeTensorsWriter.write(file, Map.of("format", "pt"), RemoteCheckpointTest.tensors(2, 7));
    proxy = new FaultProxy("127.0.0.1", nginx.url(""));
  }

  @org.junit.jupiter.api.AfterEach
  void close() throws IOException {
    if (proxy != null) {
      proxy.close();
    }
  }

  private RemoteOptions options() {
    return RemoteCheckpointTest.options(nginx).withStallTimeout(Duration.ofSeconds(1));
  }

  private Checkpoint open(RemoteOptions options) throws IOException {
    return Checkpoint.open(proxy.url(base + "/model.safetensors").toString(), options);
  }

  private void assertLoadsAsLocal(RemoteOptions options) throws IOException {
    try (Checkpoint remote = open(options); Checkpoint local = Checkpoint.open(file)) {
      RemoteCheckpointTest.assertSameLoad(local, remote, LoadOptions.defaults().withCreateDType(DType.F32));
    }
  }

  private LoadException failedLoad(Fault fault, int times, long afterBytes) throws IOException {
    try (Checkpoint remote = open(options())) {
      proxy.inject(fault, times, afterBytes);
      return assertThrows(LoadException.class,
          () -> VarStore.fromCheckpoint(remote, LoadOptions.defaults().withCreateDType(DType.F32)).close());
    }
  }

  private static long rangeStart(Map<String, String> request) {
    String range = request.get("range");
    return Long.parseLong(range.substring("bytes=".length(), range.indexOf('-')));
  }

  @Test
  void resetsAreRetried() throws IOException {
    proxy.inject(Fault.RESET, 2, 10_000);   // the first range request, which opens the file
    try (Checkpoint remote = open(options().withRetries(8)); Checkpoint local = Checkpoint.open(file)) {
      proxy.inject(Fault.RESET, 6, 10_000);   // ranges of the load
      RemoteCheckpointTest.assertSameLoad(local, remote, LoadOptions.defaults().withCreateDType(DType.F32));
    }
    assertEquals(8, proxy.requests().stream().filter(r -> r.get(":fault").equals("RESET")).count());
  }

  @Test
  void aStalledRangeIsAbandonedAndItsMissingPartRequestedAgain() throws IOException {
    try (Checkpoint remote = open(options()); Checkpoint local = Checkpoint.open(file)) {
      proxy.inject(Fault.STALL, 1, 20_000);
      RemoteCheckpointTest.assertSameLoad(local, remote, LoadOptions.defaults());
    }
    Map<String, String> stalled = proxy.requests().stream().filter(r -> r.get(":fault").equals("STALL"))
        .findFirst().orElseThrow();
    long resumed = rangeStart(stalled) + 20_000;
    assertTrue(proxy.requests().stream().anyMatch(r -> r.containsKey("range") && rangeStart(r) == resumed),
        "a request from byte " + resumed + " among " + proxy.requests());
  }

  @Test
  void serverErrorsAreRetriedAfterRetryAfter() throws IOException {
    proxy.inject(Fault.SERVER_ERROR, 2, 0);
    long start = System.nanoTime();
    assertLoadsAsLocal(options());
    assertTrue(System.nanoTime() - start >= 1_000_000_000L, "waited for Retry-After: 1");
  }

  @Test
  void aStallThatDoesNotEndFailsTheLoadAfterTheRetries() throws IOException {
    LoadException e = failedLoad(Fault.STALL, 100, 0);
    assertTrue(e.getMessage().contains("stalled") && e.getMessage().contains("gave up"), e.getMessage());
  }

  @Test
  void aShortBodyFailsTheLoadNamingUrlAndTensor() throws IOException {
    LoadException e = failedLoad(Fault.TRUNCATE, 1, 0);
    assertTrue(e.getMessage().startsWith(proxy.url(base + "/model.safetensors") + ": tensor '"), e.getMessage());
    assertTrue(e.getMessage().contains("Content-Length"), e.getMessage());
    assertTrue(e.report().loaded().isEmpty());
  }

  @Test
  void aWrongContentRangeFailsTheLoad() throws IOException {
    LoadException e = failedLoad(Fault.WRONG_RANGE, 1, 0);
    assertTrue(e.getMessage().contains("wrong Content-Range"), e.getMessage());
  }

  @Test
  void anObjectThatChangedDuringTheLoadFailsIt() throws IOException {
    LoadException e = failedLoad(Fault.CHANGE_ETAG, 1, 0);
    assertTrue(e.getMessage().contains("changed since it was opened"), e.getMessage());
    assertTrue(e.getMessage().contains("tensor '"), e.getMessage());
  }

  @Test
  void aServerThatIgnoresRangeIsCaughtWithoutReadingTheBody() throws IOException {
    Path big = file.resolveSibling("big.safetensors");
    SafeTensorsWriter.write(big, null, List.of(TensorView.of("w", DType.U8, new long[] {64L << 20},
        MemorySegment.ofArray(new byte[64 << 20]))));
    proxy.inject(Fault.IGNORE_RANGE, 1, 0);
    IOException e = assertThrows(IOException.class,
        () -> Checkpoint.open(proxy.url(base + "/big.safetensors").toString(), options()).close());
    assertTrue(e.getMessage().contains("ignored the Range request"), e.getMessage());
    assertTrue(proxy.bodyBytesSent() < 32L << 20, proxy.bodyBytesSent() + " bytes sent of " + (64 << 20));
  }

  @Test
  void theTokenGoesOnlyToTheEndpointAndNeverAcrossARedirect() throws IOException {
    try (FaultProxy cdn = new FaultProxy("127.0.0.2", nginx.url(""))) {
      proxy.redirectTo(cdn.url(""));
      URI endpoint = URI.create("http://127.0.0.1:" + proxy.url("").getPort());
      RemoteOptions options = options().withEndpoint(endpoint).withToken("hf_secret_token");
      assertFalse(options.toString().contains("hf_secret_token"));
      assertLoadsAsLocal(options);
      assertFalse(proxy.requests().isEmpty());
      assertTrue(proxy.requests().stream().allMatch(r -> "Bearer hf_secret_token".equals(r.get("authorization"))),
          proxy.requests().toString());
      assertFalse(cdn.requests().isEmpty());
      assertTrue(cdn.requests().stream().noneMatch(r -> r.containsKey("authorization")), cdn.requests().toString());
    }
    // Another endpoint: the token goes nowhere.
    FaultProxy plain = proxy;
    proxy = new FaultProxy("127.0.0.1", nginx.url(""));
    plain.close();
    assertLoadsAsLocal(options().withToken("hf_secret_token"));
    assertTrue(proxy.requests().stream().noneMatch(r -> r.containsKey("authorization")));
  }

  @Test
  void aRedirectLoopEnds() throws IOException {
    proxy.redirectTo(proxy.url(""));
    IOException e = assertThrows(IOException.class, () -> open(options()).close());
    assertTrue(e.getMessage().contains("more than 10 redirects"), e.getMessage());
    assertEquals(11, proxy.requests().size());
  }
}
