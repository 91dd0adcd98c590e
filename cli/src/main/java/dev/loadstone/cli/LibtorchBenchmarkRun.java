package dev.loadstone.cli;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.torch.Libtorch;
import dev.loadstone.torch.TorchLoader;
import dev.loadstone.torch.TorchModules;
import java.io.IOException;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Module;

/**
 * One run of {@code bench --backend torch}: the load into libtorch tensors, measured as the
 * Java backend's run is. Only this class touches libtorch, so the other commands never load it.
 */
@SuppressWarnings("try") // a PointerScope or NoGradGuard acts by being open, unreferenced
final class LibtorchBenchmarkRun {
  private LibtorchBenchmarkRun() {}

  /**
   * Whether the torch module is there to use. The CLI requires it statically (only this backend
   * needs it), so on the module path it is resolved only when added, as the launcher does for
   * {@code bench}; on the class path it is a plain dependency.
   */
  static boolean available() {
    ModuleLayer layer = LibtorchBenchmarkRun.class.getModule().getLayer();
    return layer == null || layer.findModule("dev.loadstone.torch").isPresent();
  }

  /** Loads libtorch, so that its own memory is part of the benchmark's baseline. */
  static void prepare() {
    Libtorch.load();
  }

  /**
   * Creates a module whose parameters mirror the checkpoint (zero-filled, as a model's
   * constructor leaves them: the alloc time), then times the load into it. Every tensor of the
   * run is freed at its end, not whenever the garbage collector gets to it.
   */
  static LoadBenchmark.Run copyRun(LoadBenchmark.Settings settings) throws IOException {
    LoadOptions options = settings.loadOptions();
    if (settings.dtype().isPresent()) {
      options = options.withCreateDType(settings.dtype().get());
    }
    LoadOptions loadOptions = options;
    Checkpoint checkpoint = Checkpoint.open(settings.path());
    try (checkpoint; PointerScope scope = new PointerScope()) {
      long start = System.nanoTime();
      Module module = TorchModules.create(checkpoint, options, "cpu");
      double alloc = (System.nanoTime() - start) / 1e9;
      return LoadBenchmark.timedLoad(settings, checkpoint, alloc, opened -> TorchLoader.load(module, opened, loadOptions));
    }
  }
}
