package dev.loadstone.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.spark.TaskContext;
import org.apache.spark.util.TaskCompletionListener;

/**
 * Models for Spark tasks: {@link ModelRegistry#shared()}'s model, held until the task ends.
 *
 * <p>A {@code mapPartitions} function returns an iterator that Spark consumes after the
 * function has returned, so a model cannot be released with try-with-resources there. {@link
 * #forTask} releases it when the task completes (successfully or not), through a
 * {@link TaskContext} completion listener:
 *
 * <pre>{@code
 * Broadcast<ModelManifest> manifest = jsc.broadcast(ModelManifest.of("/models/fortune-llama"));
 * prompts.mapPartitions((MapPartitionsFunction<String, String>) rows -> {
 *   LlamaModel model = SparkModels.forTask(manifest.value(), ModelLoader.llama());
 *   return Iterators.map(rows, prompt -> generate(model, prompt));   // lazily, as Spark pulls
 * }, Encoders.STRING());
 * }</pre>
 */
public final class SparkModels {
  private SparkModels() {}

  /**
   * The model of {@code manifest}, loaded once per executor JVM, held by the current task until
   * it completes. Outside a task (on the driver) there is nothing to release it: use
   * {@link ModelRegistry#acquire} and close the handle.
   *
   * @throws UncheckedIOException if the load fails (its cause names the checkpoint)
   * @throws IllegalStateException if called outside a Spark task
   */
  public static <M extends AutoCloseable> M forTask(ModelManifest manifest, ModelLoader<M> loader) {
    TaskContext task = TaskContext.get();
    if (task == null) {
      throw new IllegalStateException("SparkModels.forTask runs in a Spark task; elsewhere use"
          + " ModelRegistry.shared().acquire(manifest, loader) and close the handle");
    }
    ModelRegistry.Handle<M> handle;
    try {
      handle = ModelRegistry.shared().acquire(manifest, loader);
    } catch (IOException e) {
      throw new UncheckedIOException(e.getMessage(), e);
    }
    TaskCompletionListener release = context -> handle.close();
    task.addTaskCompletionListener(release);
    return handle.get();
  }
}
