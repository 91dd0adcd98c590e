package dev.loadstone.spark;

import dev.loadstone.llama.LlamaModel;
import dev.loadstone.safetensors.DType;
import dev.loadstone.store.LoadMode;
import java.io.IOException;
import java.io.Serializable;
import java.util.Objects;

/**
 * How an executor turns a {@link ModelManifest} into a loaded model. Serializable, so that a
 * job's functions can carry it to the executors; {@link #name()} is part of the
 * {@link ModelRegistry}'s key (with the manifest), so two loaders of one manifest (its tensors,
 * and a model built on them) are two entries.
 *
 * @param <M> what the loader makes; closing it frees the model (unmaps, frees memory)
 */
public interface ModelLoader<M extends AutoCloseable> extends Serializable {
  /** A stable name of what this loader makes, the same in every JVM (a lambda's class name is not). */
  String name();

  /**
   * Loads the model the manifest describes: called once per key and JVM by the registry.
   *
   * @throws IOException if the checkpoint cannot be read or breaks a rule (the exception names
   *     the file and tensor)
   */
  M load(ModelManifest manifest) throws IOException;

  /**
   * A loader from a name and a function (which must be serializable: a method reference or a
   * lambda assigned to {@link Function}).
   */
  static <M extends AutoCloseable> ModelLoader<M> of(String name, Function<M> load) {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(load, "load");
    return new ModelLoader<>() {
      @java.io.Serial
      private static final long serialVersionUID = 1L;

      @Override
      public String name() {
        return name;
      }

      @Override
      public M load(ModelManifest manifest) throws IOException {
        return load.load(manifest);
      }
    };
  }

  /** A serializable load function, for {@link #of}. */
  @FunctionalInterface
  interface Function<M extends AutoCloseable> extends Serializable {
    /** Loads the model {@code manifest} describes. */
    M load(ModelManifest manifest) throws IOException;
  }

  /**
   * The checkpoint's tensors in a {@link dev.loadstone.store.VarStore}, one variable per tensor
   * ({@code VarStore.fromCheckpoint} with {@link ModelManifest#loadOptions()}: the rank's slice
   * shapes with a partition), after checking the expected hashes.
   */
  static ModelLoader<LoadedCheckpoint> checkpoint() {
    return of("loadstone.checkpoint", LoadedCheckpoint::load);
  }

  /**
   * A Llama model ({@code LlamaForCausalLM}, {@link LlamaModel#load}) from the manifest's model
   * directory, run on {@link ModelManifest#effectiveThreads()} threads: in ALIAS mode (the
   * default) the F32/F16/BF16 weights are read where they lie in the mapping, in COPY mode
   * they are copied into F32. A partitioned manifest is refused (the model runs whole).
   */
  static ModelLoader<LlamaModel> llama() {
    return of("loadstone.llama", manifest -> {
      if (manifest.world() > 1) {
        throw new IllegalArgumentException(manifest.location() + ": a Llama model runs whole, not rank "
            + manifest.rank() + " of " + manifest.world());
      }
      if (!manifest.expectedSha256().isEmpty()) {
        manifest.openVerified().close();
      }
      LlamaModel.Options options = LlamaModel.Options.defaults().withThreads(manifest.effectiveThreads());
      if (manifest.mode() == LoadMode.COPY) {
        options = options.withWeightType(DType.F32);
      } else if (manifest.prefetch()) {
        options = options.withPrefetch();
      }
      return LlamaModel.load(manifest.directory(), options);
    });
  }
}
