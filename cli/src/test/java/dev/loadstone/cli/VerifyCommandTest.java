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
