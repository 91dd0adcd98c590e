package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Commands that take a checkpoint accept a Hugging Face model id, resolved in the cache that
 * {@code HF_HUB_CACHE} names: run in a JVM of their own, since the cache comes from the
 * environment.
 */
class ModelIdTest {
  private static final String COMMIT = "89abcdef0123456789abcdef0123456789abcdef";

  @TempDir
  Path root;

  /** {@code models--org--tiny}: refs/main, and a snapshot linking to the example model's blob. */
  private Path cache() throws IOException {
    Path repo = Files.createDirectories(root.resolve("hub/models--org--tiny"));
    Path blob = Files.createDirectories(repo.resolve("blobs")).resolve("a".repeat(64));
    Files.copy(Path.of("../examples/fortune-llama/model.safetensors"), blob);
    Path snapshot = Files.createDirectories(repo.resolve("snapshots").resolve(COMMIT));
    Files.createSymbolicLink(snapshot.resolve("model.safetensors"), Path.of("../../blobs").resolve(blob.getFileName()));
    Files.createDirectories(repo.resolve("refs"));
    Files.writeString(repo.resolve("refs/main"), COMMIT);
    return repo;
  }

  private record Run(int exit, String output) {}

  private Run loadstone(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("--enable-native-access=ALL-UNNAMED");
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(Main.class.getName());
    command.addAll(List.of(args));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().put("HF_HUB_CACHE", root.resolve("hub").toString());
    builder.environment().remove("HF_HOME");
    Process process = builder.start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    return new Run(process.waitFor(), output);
  }

  @Test
  void verifyAndInspectTakeAModelId() throws Exception {
    cache();
    Run verify = loadstone("verify", "org/tiny");
    assertEquals(0, verify.exit(), verify.output());
    assertTrue(verify.output().startsWith("OK org/tiny: "), verify.output());
    Run inspect = loadstone("inspect", "--json", "org/tiny@" + COMMIT);
    assertEquals(0, inspect.exit(), inspect.output());
    assertTrue(inspect.output().contains("\"name\":\"model.embed_tokens.weight\""), inspect.output());
  }

  @Test
  void aModelIdNotInTheCacheIsOneLineWithItsReason() throws Exception {
    cache();
    Run verify = loadstone("verify", "org/absent");
    assertEquals(Main.EXIT_INVALID, verify.exit(), verify.output());
    assertTrue(verify.output().contains("MODEL_NOT_CACHED") && verify.output().contains("models--org--absent"),
        verify.output());
    Run dangling = loadstone("inspect", "org/tiny@v2");
    assertTrue(dangling.output().contains("REVISION_NOT_CACHED"), dangling.output());
  }

  @Test
  void convertTakesAModelIdAndRefusesAUrl() throws Exception {
    cache();
    Path out = root.resolve("out.safetensors");
    Run convert = loadstone("convert", "org/tiny", out.toString());
    assertEquals(0, convert.exit(), convert.output());
    assertTrue(Files.size(out) > 0);
    Run url = loadstone("convert", "http://127.0.0.1:9/model.safetensors", root.resolve("x.safetensors").toString());
    assertEquals(Main.EXIT_USAGE, url.exit(), url.output());
    assertTrue(url.output().contains("not a URL"), url.output());
  }
}
