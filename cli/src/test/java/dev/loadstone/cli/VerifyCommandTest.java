package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class VerifyCommandTest {
  @TempDir Path dir;

  @Test
  void validFile() throws IOException {
    Path file = Cli.validFile(dir);
    Cli.Result result = Cli.run("verify", file.toString());
    assertEquals(0, result.exit(), result.err());
    assertEquals("OK " + file + ": 2 tensors, 12 bytes\n", result.out());
    assertEquals("", result.err());
  }

  @Test
  void theExample() {
    Path example = Cli.repoRoot().resolve(TourCommand.EXAMPLE);
    Cli.Result result = Cli.run("verify", example.toString());
    assertEquals(0, result.exit(), result.err());
    assertEquals("OK " + example + ": 56 tensors, 8,968,704 bytes\n", result.out());
  }

  static Stream<org.junit.jupiter.params.provider.Arguments> invalidFiles() {
    String entry = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    return Stream.of(
        arguments("trailing bytes", Cli.safetensors(entry, new byte[6]), Reason.TRAILING_BYTES),
        arguments("truncated data", Cli.safetensors(entry, new byte[3]), Reason.DATA_TRUNCATED),
        arguments("unknown dtype", Cli.safetensors(
            "{\"a\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]), Reason.UNKNOWN_DTYPE),
        arguments("shorter than 8 bytes", new byte[] {1, 0, 0}, Reason.FILE_TOO_SMALL),
        arguments("header past the end", new byte[] {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'},
            Reason.HEADER_OUT_OF_BOUNDS),
        arguments("not JSON", Cli.safetensors("{\"a\":", new byte[0]), Reason.HEADER_INVALID_JSON),
        arguments("gap", Cli.safetensors(
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}", new byte[3]), Reason.OFFSET_GAP),
        arguments("newline in a name", Cli.safetensors(
            "{\"x\\ny\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", new byte[4]),
            Reason.SIZE_MISMATCH));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("invalidFiles")
  void invalidFileGivesOneLineWithFileReasonAndRule(String what, byte[] bytes, Reason reason) throws IOException {
    Path file = Cli.write(dir, "bad.safetensors", bytes);
    Cli.Result result = Cli.run("verify", file.toString());
    assertEquals(1, result.exit(), result.err());
    assertEquals("", result.out());
    assertEquals(1, result.errLines().size(), result.err());
    String line = result.errLines().get(0);
    assertTrue(line.startsWith("INVALID " + file + ": "), line);
    assertTrue(line.contains(reason.name()), line);
    assertTrue(line.contains(reason.rule()), line);
    Cli.assertNoStackTrace(result.err());
  }

  private static String sha256(Path file) throws IOException {
    try {
      return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
          .digest(Files.readAllBytes(file)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void sha256WithoutAnExpectedHashIsReportedUncheckedNotPassed() throws IOException {
    Path file = Cli.validFile(dir);
    Cli.Result result = Cli.run("verify", "--sha256", file.toString());
    assertEquals(0, result.exit(), result.err());
    assertEquals("SHA256 " + sha256(file) + "  " + file.getFileName() + "  unchecked (no expected hash)\n"
        + "OK " + file + ": 2 tensors, 12 bytes; SHA-256: 0 checked, 1 unchecked\n", result.out());
  }

  @Test
  void sha256GivenOnTheCommandLineOrInASha256sumFileIsChecked() throws IOException {
    Path file = Cli.validFile(dir);
    String name = file.getFileName().toString();
    String hash = sha256(file);
    Cli.Result given = Cli.run("verify", "--expected-sha256", name + "=" + hash.toUpperCase(java.util.Locale.ROOT),
        file.toString());
    assertEquals(0, given.exit(), given.err());
    assertEquals("SHA256 " + hash + "  " + name + "  ok (given)", given.outLines().getFirst());
    Path list = Cli.write(dir, "SHA256SUMS", (hash + " *" + name + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
    Cli.Result listed = Cli.run("verify", "--sha256-file", list.toString(), file.toString());
    assertEquals(0, listed.exit(), listed.err());
    assertTrue(listed.out().endsWith("; SHA-256: 1 checked, 0 unchecked\n"), listed.out());
  }

  @Test
  void aSha256MismatchNamesTheFileTheExpectedAndTheActualHashAndExitsOne() throws IOException {
    Path file = Cli.validFile(dir);
    String wrong = "ab".repeat(32);
    Cli.Result result = Cli.run("verify", "--expected-sha256", file.getFileName() + "=" + wrong, file.toString());
    assertEquals(1, result.exit(), result.err());
    assertEquals("", result.out());
    assertEquals("INVALID " + file + ": SHA256_MISMATCH: SHA-256 " + sha256(file) + ", expected " + wrong
        + " (given) (rule: " + Reason.SHA256_MISMATCH.rule() + ")\n", result.err());
  }

  @Test
  void aCachedFileIsCheckedAgainstItsBlobName() throws IOException {
    // The hub cache's layout: the snapshot's file links to a blob named by its SHA-256.
    Path source = Cli.validFile(dir);
    Path blobs = Files.createDirectories(dir.resolve("models--org--m/blobs"));
    Path snapshot = Files.createDirectories(dir.resolve("models--org--m/snapshots/c"));
    Path blob = Files.copy(source, blobs.resolve(sha256(source)));
    Path link = Files.createSymbolicLink(snapshot.resolve("model.safetensors"), Path.of("../../blobs", sha256(source)));
    Cli.Result ok = Cli.run("verify", "--sha256", snapshot.toString());
    assertEquals(0, ok.exit(), ok.err());
    assertEquals("SHA256 " + sha256(source) + "  model.safetensors  ok (the cache's blob name)", ok.outLines().getFirst());
    // A blob damaged in place: same size, another byte.
    byte[] bytes = Files.readAllBytes(blob);
    bytes[bytes.length - 1] ^= 1;
    Files.write(blob, bytes);
    Cli.Result bad = Cli.run("verify", "--sha256", snapshot.toString());
    assertEquals(1, bad.exit(), bad.err());
    assertTrue(bad.err().startsWith("INVALID " + link + ": SHA256_MISMATCH: SHA-256 " + sha256(blob) + ", expected "
        + sha256(source) + " (the cache's blob name)"), bad.err());
  }

  @Test
  void sha256UsageErrors() throws IOException {
    Path file = Cli.validFile(dir);
    assertUsage(Cli.run("verify", "--expected-sha256", "nohash", file.toString()),
        "loadstone verify: --expected-sha256 takes NAME=HEX, not 'nohash'");
    assertUsage(Cli.run("verify", "--expected-sha256", "other.safetensors=" + "a".repeat(64), file.toString()),
        "loadstone verify: no file 'other.safetensors' in " + file + " (its files: " + file.getFileName() + ")");
    assertUsage(Cli.run("verify", "--expected-sha256", file.getFileName() + "=abc", file.toString()),
        "loadstone verify: the SHA-256 given for '" + file.getFileName() + "' is not 64 hex digits: 'abc'");
  }

  @Test
  void missingFileIsAnIoError() {
    Path missing = dir.resolve("missing.safetensors");
    Cli.Result result = Cli.run("verify", missing.toString());
    assertEquals(2, result.exit());
    assertEquals("", result.out());
    assertEquals("loadstone verify: " + missing + ": no such file\n", result.err());
  }

  @Test
  void directoryWithoutWeightsIsInvalid() {
    Cli.Result result = Cli.run("verify", dir.toString());
    assertEquals(1, result.exit());
    assertEquals(1, result.errLines().size(), result.err());
    assertTrue(result.err().startsWith("INVALID " + dir + ": NO_WEIGHTS: "), result.err());
  }

  @Test
  void unreadableFileIsAnIoError() throws IOException {
    Path file = Cli.validFile(dir);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("---------"));
    Assumptions.assumeFalse(Files.isReadable(file), "root reads any file");
    Cli.Result result = Cli.run("verify", file.toString());
    assertEquals(2, result.exit());
    assertEquals("loadstone verify: " + file + ": permission denied\n", result.err());
  }

  @Test
  void usageErrors() throws IOException {
    Path file = Cli.validFile(dir);
    assertUsage(Cli.run("verify"), "loadstone verify: missing argument PATH");
    assertUsage(Cli.run("verify", file.toString(), "extra"), "loadstone verify: unexpected argument 'extra'");
    assertUsage(Cli.run("verify", "--json", file.toString()), "loadstone verify: unknown option '--json'");
  }

  private static void assertUsage(Cli.Result result, String message) {
    assertEquals(2, result.exit());
    assertEquals("", result.out());
    assertEquals(message + " (run 'loadstone help verify' for usage)\n", result.err());
  }
}
