package dev.loadstone.store;

import dev.loadstone.safetensors.DType;
import java.util.Objects;
import java.util.Optional;

/**
 * How to load a checkpoint into a {@link VarStore}. Immutable; each {@code with} method returns
 * a changed copy.
 *
 * <pre>{@code
 * LoadOptions options = LoadOptions.defaults()          // COPY, strict, all cores
 *     .withMode(LoadMode.ALIAS)
 *     .withNames(NameMapping.identity().stripPrefix("model."))
 *     .partial();                                       // report problems instead of failing
 * }</pre>
 *
 * @param mode copy into owned memory, or alias the mapped bytes
 * @param strict fail (before writing any variable) if a variable is missing from the
 *     checkpoint or a tensor does not fit its variable; otherwise load what fits and report
 * @param threads the number of loading threads, at least 1
 * @param names how checkpoint names map to variable names
 * @param progress who hears about progress
 * @param releaseMappedPages whether to drop copied file pages from the process once copied
 *     ({@code madvise(MADV_DONTNEED)}), so resident memory holds about one copy of the weights;
 *     the data stays in the OS page cache
 * @param createDType for {@link VarStore#fromCheckpoint}: the dtype of created float
 *     variables, or empty to keep each tensor's own dtype
 */
public record LoadOptions(LoadMode mode, boolean strict, int threads, NameMapping names,
    LoadProgress progress, boolean releaseMappedPages, Optional<DType> createDType) {

  /** Checks the values. */
  public LoadOptions {
    Objects.requireNonNull(mode, "mode");
    Objects.requireNonNull(names, "names");
    Objects.requireNonNull(progress, "progress");
    Objects.requireNonNull(createDType, "createDType");
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be at least 1, not " + threads);
    }
  }

  /** COPY mode, strict, one thread per available core, names unchanged, no progress. */
  public static LoadOptions defaults() {
    return new LoadOptions(LoadMode.COPY, true, Runtime.getRuntime().availableProcessors(),
        NameMapping.identity(), LoadProgress.NONE, true, Optional.empty());
  }

  /** With another load mode. */
  public LoadOptions withMode(LoadMode newMode) {
    return new LoadOptions(newMode, strict, threads, names, progress, releaseMappedPages, createDType);
  }

  /** Loads what fits and reports the rest instead of failing. */
  public LoadOptions partial() {
    return new LoadOptions(mode, false, threads, names, progress, releaseMappedPages, createDType);
  }

  /** With another number of loading threads. */
  public LoadOptions withThreads(int newThreads) {
    return new LoadOptions(mode, strict, newThreads, names, progress, releaseMappedPages, createDType);
  }

  /** With another name mapping. */
  public LoadOptions withNames(NameMapping newNames) {
    return new LoadOptions(mode, strict, threads, newNames, progress, releaseMappedPages, createDType);
  }

  /** With a progress listener. */
  public LoadOptions withProgress(LoadProgress newProgress) {
    return new LoadOptions(mode, strict, threads, names, newProgress, releaseMappedPages, createDType);
  }

  /** Whether to release copied file pages from the process (on by default). */
  public LoadOptions withReleaseMappedPages(boolean release) {
    return new LoadOptions(mode, strict, threads, names, progress, release, createDType);
  }

  /** For {@link VarStore#fromCheckpoint}: convert float tensors to this dtype. */
  public LoadOptions withCreateDType(DType dtype) {
    return new LoadOptions(mode, strict, threads, names, progress, releaseMappedPages, Optional.of(dtype));
  }
}
