package dev.loadstone.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loadstone.safetensors.DType;
import dev.loadstone.store.LoadMode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The weights of an ALIAS load are the file's mapping. By default the kernels read it only
 * through the threads' stages, so a file truncated while the model generates ends the generation
 * with an exception that names the file, instead of taking the JVM down (a fault in compiled
 * vector code is fatal: what the kernels did before staging, and do with direct mapped reads).
 * The generation runs in a JVM of its own, so that a crash is a failed assertion here rather than
 * a lost test run.
 */
class TruncatedWeightsTest {
  static final Path MODEL = Path.of("src/test/resources/reference/gqa4-tied-llama3-bf16");

  @TempDir Path dir;

  @Test
  void anAliasLoadReadsEveryMatrixThroughTheStagesUnlessToldToReadTheMappingDirectly() throws Exception {
    LlamaModel.Options options = LlamaModel.Options.defaults().withThreads(1);
    try (LlamaModel model = LlamaModel.load(MODEL, options)) {
      assertEquals(LoadMode.ALIAS, model.loadMode());
      for (Matrix m : model.matrices()) {
        assertTrue(m.staged(), m.name());
        assertTrue(m.data().isMapped(), m.name());
      }
    }
    try (LlamaModel model = LlamaModel.load(MODEL, options.withDirectMappedReads())) {
      assertEquals(LoadMode.ALIAS, model.loadMode());
      for (Matrix m : model.matrices()) {
        assertFalse(m.staged(), m.name());
      }
    }
    try (LlamaModel model = LlamaModel.load(MODEL, options.withWeightType(DType.BF16))) {
      assertEquals(LoadMode.COPY, model.loadMode());
      for (Matrix m : model.matrices()) {
        assertFalse(m.staged(), m.name() + ": the model's own memory is read in place");
        assertFalse(m.data().isMapped(), m.name());
      }
    }
  }

  @Test
  void aWeightsFileTruncatedDuringGenerationIsAnExceptionNamingItNotACrash() throws Exception {
    Path model = dir.resolve("model");
    Files.createDirectories(model);
    for (String name : List.of("config.json", "model.safetensors")) {
      Files.copy(MODEL.resolve(name), model.resolve(name));
    }
    Path weights = model.resolve("model.safetensors");
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "-XX:ErrorFile=" + dir.resolve("hs_err_%p.log"), "-XX:-CreateCoredumpOnCrash",
        "-cp", System.getProperty("java.class.path"),
        TruncationProcess.class.getName(), model.toString(), weights.toString()));
    Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output;
    try {
      output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(child.waitFor(120, TimeUnit.SECONDS), "the child JVM did not end");
    } finally {
      child.destroyForcibly();
    }
    assertFalse(output.contains("A fatal error has been detected"), output);
    assertEquals(0, child.exitValue(), output);
    assertTrue(output.contains("mode ALIAS, warm"), output);
    assertTrue(output.contains("exception: java.io.UncheckedIOException: " + weights), output);
    assertTrue(output.contains("truncated"), output);
  }

}
