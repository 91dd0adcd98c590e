package dev.loadstone.store;

/**
 * Receives progress while a checkpoint loads. Called from the loading threads, possibly
 * concurrently; implementations must be thread-safe and quick.
 *
 * <pre>{@code
 * LoadOptions.defaults().withProgress((done, total, tensor) ->
 *     System.err.printf("\r%3d%% %s", 100 * done / Math.max(1, total), tensor));
 * }</pre>
 */
@FunctionalInterface
public interface LoadProgress {
  /** A listener that ignores every event. */
  LoadProgress NONE = (bytesDone, bytesTotal, tensor) -> {};

  /**
   * Reports that {@code bytesDone} of {@code bytesTotal} bytes of tensor data are loaded.
   *
   * @param tensor the name of a tensor being loaded now (in the store's naming)
   */
  void onProgress(long bytesDone, long bytesTotal, String tensor);
}
