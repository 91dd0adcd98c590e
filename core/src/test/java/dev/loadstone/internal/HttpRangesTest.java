package dev.loadstone.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpHeaders;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The pieces of the HTTP client that need no server: where the token goes, Retry-After, names. */
class HttpRangesTest {
  private static HttpSettings settings(String origin, String token) {
    return new HttpSettings(4, 1 << 20, Duration.ofSeconds(1), Duration.ofSeconds(1), 3, URI.create(origin),
        Optional.ofNullable(token));
  }

  private static HttpHeaders headers(String name, String value) {
    return HttpHeaders.of(Map.of(name, List.of(value)), (a, b) -> true);
  }

  @Test
  void theTokenGoesOnlyToTheEndpointsOrigin() {
    HttpSettings hub = settings("https://huggingface.co", "hf_x");
    assertTrue(hub.sendsTokenTo(URI.create("https://huggingface.co/org/name/resolve/main/model.safetensors")));
    assertTrue(hub.sendsTokenTo(URI.create("https://HuggingFace.co:443/x")));
    assertFalse(hub.sendsTokenTo(URI.create("https://cdn-lfs.huggingface.co/x")));
    assertFalse(hub.sendsTokenTo(URI.create("http://huggingface.co/x")));
    assertFalse(hub.sendsTokenTo(URI.create("https://huggingface.co:8443/x")));
    assertFalse(hub.sendsTokenTo(URI.create("https://huggingface.co.evil.example/x")));
    assertFalse(settings("https://huggingface.co", null).sendsTokenTo(URI.create("https://huggingface.co/x")));
    assertFalse(hub.toString().contains("hf_x"), hub.toString());
  }

  @Test
  void retryAfterIsSecondsOrADateAndIsCapped() {
    assertEquals(Optional.of(Duration.ofSeconds(3)), HttpRanges.retryAfter(headers("Retry-After", "3")));
    assertEquals(Optional.of(Duration.ofSeconds(60)), HttpRanges.retryAfter(headers("Retry-After", "86400")));
    assertEquals(Optional.empty(), HttpRanges.retryAfter(headers("Retry-After", "soon")));
    assertEquals(Optional.empty(), HttpRanges.retryAfter(headers("X", "1")));
    String inTenSeconds = DateTimeFormatter.RFC_1123_DATE_TIME.format(ZonedDateTime.now().plusSeconds(10));
    Duration wait = HttpRanges.retryAfter(headers("Retry-After", inTenSeconds)).orElseThrow();
    assertTrue(wait.toSeconds() >= 8 && wait.toSeconds() <= 10, wait.toString());
    String past = DateTimeFormatter.RFC_1123_DATE_TIME.format(ZonedDateTime.now().minusSeconds(10));
    assertEquals(Optional.of(Duration.ZERO), HttpRanges.retryAfter(headers("Retry-After", past)));
  }

  @Test
  void messagesNameTheUrlWithoutQueryOrUser() {
    assertEquals("https://host:8080/a/b.safetensors",
        HttpRanges.describe(URI.create("https://user:pw@host:8080/a/b.safetensors?X-Amz-Signature=secret")));
    assertEquals("https://host:8080/a/b.safetensors",
        UrlPath.of(URI.create("https://user:pw@host:8080/a/b.safetensors?sig=1")).toString());
  }
}
