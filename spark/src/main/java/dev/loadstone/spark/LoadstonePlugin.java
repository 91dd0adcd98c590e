package dev.loadstone.spark;

import java.util.Map;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * A Spark plugin that closes the executor's models when the executor stops
 * ({@link ModelRegistry#closeAll()} on {@link ModelRegistry#shared()}), rather than only when
 * its JVM exits. Enable it with {@code spark.plugins=dev.loadstone.spark.LoadstonePlugin}. In
 * local mode the executor stops with the {@code SparkContext}.
 */
public final class LoadstonePlugin implements SparkPlugin {
  /** Made by Spark from the {@code spark.plugins} setting. */
  public LoadstonePlugin() {}

  /** None: the driver loads nothing. */
  @Override
  public DriverPlugin driverPlugin() {
    return null;
  }

  /** Closes the shared registry's models when the executor shuts down. */
  @Override
  public ExecutorPlugin executorPlugin() {
    return new ExecutorPlugin() {
      @Override
      public void init(PluginContext context, Map<String, String> extraConf) {
        ModelRegistry.shared();   // the shutdown hook, in case the executor is killed instead
      }

      @Override
      public void shutdown() {
        ModelRegistry.shared().closeAll();
      }
    };
  }
}
