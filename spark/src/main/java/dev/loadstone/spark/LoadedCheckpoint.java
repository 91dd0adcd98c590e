package dev.loadstone.spark;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.VarStore;
import dev.loadstone.safetensors.TensorView;
import java.io.IOException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * A checkpoint's tensors loaded into a {@link VarStore}, as {@link ModelLoader#checkpoint()}
 * makes them. In ALIAS mode the variables are views of the checkpoint's mapping, which stays
 * open until {@link #close()}; in COPY mode the checkpoint is closed once loaded.
 */
public final class LoadedCheckpoint implements AutoCloseable {
  private final ModelManifest manifest;
  private final VarStore store;
  private final Checkpoint checkpoint;
  private final Map<String, long[]> tensorShapes;

  private LoadedCheckpoint(ModelManifest manifest, VarStore store, Checkpoint checkpoint, Map<String, long[]> shapes) {
    this.manifest = manifest;
    this.store = store;
    this.checkpoint = checkpoint;
    this.tensorShapes = shapes;
  }

  /**
   * Opens the manifest's checkpoint, checks its hashes and loads it with the manifest's options.
   *
   * @throws IOException if the checkpoint cannot be read, breaks a rule, has a file whose hash
   *     differs, or does not load (a {@link dev.loadstone.store.LoadException} names the tensor)
   */
  public static LoadedCheckpoint load(ModelManifest manifest) throws IOException {
    Objects.requireNonNull(manifest, "manifest");
    Checkpoint checkpoint = manifest.openVerified();
    try {
      Map<String, long[]> shapes = new LinkedHashMap<>();
      for (TensorView tensor : checkpoint.tensors()) {
        shapes.put(tensor.name(), tensor.shape());
      }
      VarStore store = VarStore.fromCheckpoint(checkpoint, manifest.loadOptions());
      if (manifest.mode() == LoadMode.COPY) {
        checkpoint.close();
        return new LoadedCheckpoint(manifest, store, null, Collections.unmodifiableMap(shapes));
      }
      return new LoadedCheckpoint(manifest, store, checkpoint, Collections.unmodifiableMap(shapes));
    } catch (IOException | RuntimeException | Error e) {
      checkpoint.close();
      throw e;
    }
  }

  /** The manifest this was loaded from. */
  public ModelManifest manifest() {
    return manifest;
  }

  /** The variables, one per tensor (the rank's slice with a partition). */
  public VarStore store() {
    return store;
  }

  /**
   * Each tensor's shape in the checkpoint, by its name there: the whole tensor's, where a
   * partition's variable holds a slice of it ({@code Partition.sliceOf} says which).
   */
  public Map<String, long[]> tensorShapes() {
    return tensorShapes;
  }

  /** Frees the variables and unmaps the checkpoint. Idempotent. */
  @Override
  public void close() {
    store.close();
    if (checkpoint != null) {
      checkpoint.close();
    }
  }

  @Override
  public String toString() {
    return "LoadedCheckpoint[" + manifest + ", " + store.variables().size() + " variables]";
  }
}
