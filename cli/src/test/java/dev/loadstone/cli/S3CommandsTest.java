package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.loadstone.s3.testing.S3Server;
import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.SafeTensorsWriter;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code inspect}, {@code verify} and {@code bench} of {@code s3://} URLs against S3Proxy on
 * loopback (unsigned requests allowed, so that bench's curl baseline reaches the objects too).
 */
class S3CommandsTest {
  static S3Server server;
  static long dataBytes;
  @TempDir static Path local;

  @BeforeAll
  static void start() throws Exception {
    server = new S3Server(false);
    server.bucket("models");
    server.configureClients();
    Random random = new Random(7);
    byte[] a = new byte[300_000];
    byte[] b = new byte[40_000];
    random.nextBytes(a);
    random.nextBytes(b);
    dataBytes = a.length + b.length;
    Path folder = Files.createDirectories(local.resolve("m"));
    SafeTensorsWriter.write(folder.resolve("model.safetensors"), null, List.of(
        TensorView.of("embed.weight", DType.BF16, new long[] {150_000}, MemorySegment.ofArray(a)),
        TensorView.of("norm.weight", DType.F32, new long[] {10_000}, MemorySegment.ofArray(b))));
    server.putFolder("models", "m/", folder);
  }

  @AfterAll
  static void stop() throws Exception {
    S3Server.clearClients();
    server.close();
  }

  @Test
  void inspectAndVerifyReadAnS3Directory() {
    Cli.Result inspect = Cli.run("inspect", "s3://models/m/");
    assertEquals(0, inspect.exit(), inspect.err());
    assertTrue(inspect.out().contains("embed.weight") && inspect.out().contains("norm.weight"), inspect.out());
    Cli.Result verify = Cli.run("verify", "s3://models/m/");
    assertEquals(0, verify.exit(), verify.err());
    assertTrue(verify.out().startsWith("OK s3://models/m/"), verify.out());
  }

  @Test
  void whatIsMissingIsAnInvalidCheckpointNamingTheUrl() {
    Cli.Result prefix = Cli.run("verify", "s3://models/absent/");
    assertEquals(1, prefix.exit(), prefix.err());
    assertTrue(prefix.err().contains("s3://models/absent/") && prefix.err().contains("NO_WEIGHTS"), prefix.err());
    Cli.Result bucket = Cli.run("inspect", "s3://no-such-bucket/m/");
    assertEquals(1, bucket.exit(), bucket.err());
    assertTrue(bucket.err().contains("s3://no-such-bucket/m/") && bucket.err().contains("MISSING_BUCKET"), bucket.err());
  }

  @Test
  void benchLoadsAnS3CheckpointBesideCurl() throws IOException {
    Cli.Result bench = Cli.run("bench", "s3://models/m/", "--runs", "2", "--concurrency", "2", "--range-bytes", "64KiB",
        "--json");
    assertEquals(0, bench.exit(), bench.err());
    Map<String, Object> json = fields(bench.out());
    assertEquals("s3://models/m/", json.get("path"));
    assertEquals(dataBytes, ((Number) json.get("bytes")).longValue());
    assertEquals(dataBytes, ((Number) json.get("bytes_read")).longValue());
    assertEquals(2, ((Number) json.get("concurrency")).intValue());
    assertEquals(65_536L, ((Number) json.get("range_bytes")).longValue());
    assertTrue(((Number) json.get("median_gbps")).doubleValue() > 0, bench.out());
    // curl fetched the whole object (header included) from the endpoint, path style.
    assertEquals(Files.size(local.resolve("m/model.safetensors")), ((Number) json.get("curl_bytes")).longValue(),
        bench.out());
    assertTrue(((Number) json.get("load_to_curl")).doubleValue() > 0, bench.out());
  }

  @Test
  void benchRefusesLocalOnlyOptionsForAUrl() {
    Cli.Result alias = Cli.run("bench", "s3://models/m/", "--mode", "alias");
    assertEquals(2, alias.exit(), alias.err());
    assertTrue(alias.err().contains("--mode"), alias.err());
    Cli.Result local = Cli.run("bench", S3CommandsTest.local.resolve("m").toString(), "--concurrency", "4");
    assertEquals(2, local.exit(), local.err());
    assertTrue(local.err().contains("--concurrency"), local.err());
  }

  /** The top-level scalar fields of a JSON object. */
  private static Map<String, Object> fields(String text) throws IOException {
    Map<String, Object> fields = new HashMap<>();
    try (JsonParser parser = new JsonFactory().createParser(text)) {
      parser.nextToken();
      while (parser.nextToken() == JsonToken.FIELD_NAME) {
        String name = parser.currentName();
        JsonToken value = parser.nextToken();
        if (value == JsonToken.START_ARRAY || value == JsonToken.START_OBJECT) {
          parser.skipChildren();
        } else if (value == JsonToken.VALUE_STRING) {
          fields.put(name, parser.getText());
        } else if (value.isNumeric()) {
          fields.put(name, parser.getNumberValue());
        }
      }
    }
    return fields;
  }
}
