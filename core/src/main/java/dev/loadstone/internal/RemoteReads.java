package dev.loadstone.internal;

import dev.loadstone.remote.RemoteObject;
import dev.loadstone.remote.RemoteStore;
import dev.loadstone.remote.RetryableReadException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.foreign.MemorySegment;
import java.net.URI;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The rules of a remote range read, the same for every {@link RemoteStore}: the store makes one
 * request at a time ({@link RemoteStore#readRange}); a failure worth retrying is retried with
 * backoff (or after the server's {@code Retry-After}) from the first byte that did not arrive, at
 * most {@code retries} times in a row (a response that delivered bytes starts that count again,
 * but a range gives up after {@code 4 × retries} failures in all); a response that ends short
 * fails at once; any other failure is final. Messages start with the URL and what was read.
 */
public final class RemoteReads {
  private static final Duration FIRST_BACKOFF = Duration.ofMillis(200);
  private static final Duration MAX_BACKOFF = Duration.ofSeconds(5);

  private RemoteReads() {}

  /**
   * Reads bytes {@code [start, start + target.byteSize())} of {@code object} into
   * {@code target}, retrying what did not arrive.
   *
   * @param what what the bytes are, for messages (a tensor)
   * @throws IOException naming the URL and {@code what} if they cannot all be read
   */
  public static void read(RemoteStore store, RemoteObject object, long start, MemorySegment target, String what)
      throws IOException {
    long length = target.byteSize();
    if (length == 0) {
      return;
    }
    String name = describe(object.url());
    if (start < 0 || start + length > object.size()) {
      throw new IOException(name + ": " + what + ": bytes " + start + " to " + (start + length)
          + " lie outside the object's " + object.size() + " bytes");
    }
    int retries = store.options().retries();
    long done = 0;
    int failures = 0;
    int allFailures = 0;
    while (done < length) {
      long from = start + done;
      long received;
      try {
        received = store.readRange(object, from, target.asSlice(done));
      } catch (RetryableReadException e) {
        done += e.received();
        // Counted afresh after a response that brought bytes, but not for ever: a server that
        // keeps failing after a few bytes each time gives up too.
        failures = e.received() > 0 ? 1 : failures + 1;
        if (failures > retries || ++allFailures > 4 * retries) {
          throw new IOException(name + ": " + what + ": " + e.getMessage() + "; gave up after " + retries
              + " retries", e);
        }
        sleep(e.retryAfter().isPresent() ? e.retryAfter().get() : backoff(failures));
        continue;
      } catch (InterruptedIOException e) {
        throw e;
      } catch (IOException e) {
        String message = e.getMessage() == null ? e.toString() : e.getMessage();
        String prefix = name + ": ";
        String detail = message.startsWith(prefix) ? message.substring(prefix.length()) : message;
        int status = e instanceof RemoteReadException remote ? remote.status : -1;
        throw new RemoteReadException(prefix + what + ": " + detail, status, e);
      }
      if (received < length - done) {
        throw new RemoteReadException(name + ": " + what + ": the response for bytes " + from + "-"
            + (start + length - 1) + " ended after " + received + " bytes (a short body)", -1);
      }
      done += received;
    }
  }

  /** The wait before retry number {@code failures}: 200 ms, 400 ms, ... up to 5 s, plus up to half again. */
  static Duration backoff(int failures) {
    long base = Math.min(MAX_BACKOFF.toMillis(), FIRST_BACKOFF.toMillis() << Math.min(Math.max(failures, 1) - 1, 10));
    return Duration.ofMillis(base + ThreadLocalRandom.current().nextLong(base / 2 + 1));
  }

  static void sleep(Duration duration) throws InterruptedIOException {
    try {
      Thread.sleep(duration);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting to retry");
    }
  }

  /** {@code scheme://host[:port]/path} of a URL: no query (a signature), no user information. */
  public static String describe(URI url) {
    return url.getScheme() + "://" + url.getHost() + (url.getPort() == -1 ? "" : ":" + url.getPort())
        + (url.getRawPath() == null ? "" : url.getRawPath());
  }
}
