package dev.loadstone.spark.examples;

import dev.loadstone.llama.Generation;
import dev.loadstone.llama.Generator;
import dev.loadstone.llama.LlamaModel;
import dev.loadstone.llama.Sampler;
import dev.loadstone.llama.tokenizer.Tokenizer;
import dev.loadstone.spark.ModelLoader;
import dev.loadstone.spark.ModelManifest;
import dev.loadstone.spark.SparkModels;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Set;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;

/**
 * Batch generation over a dataset of prompts: each partition's task takes the executor's one
 * copy of the model from the registry ({@link SparkModels#forTask}, loaded once per executor
 * JVM, ALIAS by default so executors on a host share its pages) and generates greedily for each
 * prompt as Spark pulls the rows.
 *
 * <p>A model's forward passes run one at a time on its own team of threads
 * ({@link ModelManifest#threads()}): tasks that share it take turns, each pass using all of the
 * team. Give the model the executor's cores ({@code spark.executor.cores}), not one each.
 */
public final class FortuneGeneration {
  private FortuneGeneration() {}

  /**
   * A Llama model and its tokenizer, loaded together: what the registry holds per executor.
   *
   * @param model the model
   * @param tokenizer its {@code tokenizer.json}
   */
  public record Fortune(LlamaModel model, Tokenizer tokenizer) implements AutoCloseable {
    /** Closes the model. */
    @Override
    public void close() {
      model.close();
    }
  }

  /** The registry's loader of a {@link Fortune}: {@link ModelLoader#llama()} plus the tokenizer. */
  public static ModelLoader<Fortune> loader() {
    return ModelLoader.of("loadstone.examples.fortune", FortuneGeneration::load);
  }

  /** Loads the model and tokenizer of {@code manifest}'s directory (what {@link #loader()} does). */
  public static Fortune load(ModelManifest manifest) throws IOException {
    Path directory = manifest.directory();
    Tokenizer tokenizer = Tokenizer.load(directory.resolve("tokenizer.json"));
    return new Fortune(ModelLoader.llama().load(manifest), tokenizer);
  }

  /**
   * Generates up to {@code maxNewTokens} tokens greedily after each prompt, stopping at the end
   * of sequence; one output row per prompt, in the prompts' order.
   */
  public static Dataset<String> generate(Dataset<String> prompts, ModelManifest manifest, int maxNewTokens) {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(prompts.sparkSession().sparkContext());
    Broadcast<ModelManifest> shared = jsc.broadcast(manifest);
    ModelLoader<Fortune> loader = loader();
    return prompts.mapPartitions((MapPartitionsFunction<String, String>) rows -> {
      Fortune fortune = SparkModels.forTask(shared.value(), loader);
      return new Iterator<>() {
        @Override
        public boolean hasNext() {
          return rows.hasNext();
        }

        @Override
        public String next() {
          return complete(fortune, rows.next(), maxNewTokens);
        }
      };
    }, Encoders.STRING());
  }

  /** One greedy completion of {@code prompt} (after the beginning-of-sequence token), as text. */
  public static String complete(Fortune fortune, String prompt, int maxNewTokens) {
    LlamaModel model = fortune.model();
    int[] encoded = fortune.tokenizer().encode(prompt);
    int[] ids = encoded;
    if (model.config().bosTokenId().isPresent()) {
      ids = new int[encoded.length + 1];
      ids[0] = model.config().bosTokenId().getAsInt();
      System.arraycopy(encoded, 0, ids, 1, encoded.length);
    }
    Set<Integer> stop = new HashSet<>(model.config().eosTokenIds());
    Generation generation = new Generator(model, Sampler.greedy()).generate(ids, maxNewTokens, stop, token -> {});
    return fortune.tokenizer().decode(generation.tokens(), true);
  }
}
