package dev.loadstone.torch;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.store.LoadException;
import dev.loadstone.store.LoadMode;
import dev.loadstone.store.LoadOptions;
import dev.loadstone.store.LoadReport;
import java.util.Optional;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Module;

/**
 * Loads safetensors checkpoints into libtorch modules: each checkpoint tensor is wrapped with
 * {@code from_blob} over the file's mapping (no copy) and copied into its parameter or buffer
 * with {@code copy_} under a {@code NoGradGuard}, libtorch converting the dtype on the way. The
 * report is the core loader's {@link LoadReport}, in the same terms.
 *
 * <p>One exception to {@code copy_}: a contiguous CPU tensor loaded from the same dtype, or
 * float32 loaded from bfloat16 or float16, is written by Loadstone's own copy straight into the
 * tensor's memory. The bits are the ones {@code copy_} writes (a byte copy; exact widenings,
 * compared with libtorch's for every input in the tests), the copy is
 * faster (streaming stores, which libtorch's CPU copy does not use), and a file truncated under
 * it fails with an exception instead of a fault in native code. Like {@code copy_} under
 * {@code NoGradGuard}, it leaves autograd out; unlike it, it does not bump the tensor's version
 * counter, which only matters for tensors already saved by an autograd graph.
 *
 * <pre>{@code
 * LinearImpl linear = new LinearImpl(2048, 8192);                     // float32 parameters
 * try (Checkpoint checkpoint = Checkpoint.open(Path.of("mlp"))) {     // BF16 tensors
 *   LoadReport report = TorchLoader.load(linear, checkpoint,
 *       LoadOptions.defaults().withNames(NameMapping.identity().stripPrefix("up_proj.")));
 * }
 * }</pre>
 *
 * <p>What the options mean here:
 *
 * <ul>
 *   <li>strict (the default): every pairing is checked first, and a {@link LoadException}
 *       with the whole report is thrown before any tensor is written if a parameter or buffer
 *       is missing from the checkpoint or a tensor does not fit (shape, or a dtype libtorch
 *       cannot convert). Shapes must match exactly: {@code copy_} would broadcast, this does
 *       not. Partial: loads what fits and reports the rest;
 *   <li>threads: the number of threads that copy, chunk by chunk, each calling libtorch with
 *       one intra-op thread (libtorch's own setting, {@code at::set_num_threads}, is restored
 *       after the load);
 *   <li>names, progress and releasing copied pages: as for the core loader;
 *   <li>mode: COPY only. Tensors are never bound to the mapping.
 * </ul>
 *
 * <p>Not meant to run while another thread closes the checkpoint: libtorch reads the mapping
 * natively, so the check that the checkpoint is open, made before each chunk, cannot stop a
 * close that races with the copy itself.
 */
public final class TorchLoader {
  private TorchLoader() {}

  /**
   * Loads a checkpoint into a module's parameters and buffers where they are (CPU, or the
   * device the module was moved to).
   *
   * @throws LoadException if strict mode finds a problem (nothing written), or a copy fails
   *     midway
   * @throws IllegalArgumentException if the options ask for ALIAS mode or a partition of more
   *     than one rank (this backend loads whole tensors)
   */
  public static LoadReport load(Module module, Checkpoint checkpoint, LoadOptions options) throws LoadException {
    return new ModuleLoad(module, checkpoint, options, Optional.empty()).run();
  }

  /**
   * Loads a checkpoint into a module's parameters and buffers, moving every one of them to
   * {@code device} first ({@code cpu}, {@code cuda} or {@code cuda:N}) as {@code module.to}
   * would, except that tensors about to be loaded get fresh memory there instead of a copy of
   * their old values. In strict mode nothing moves when the check fails.
   *
   * @throws IllegalArgumentException if the device is unknown or libtorch sees no such device
   *     (checked before anything else)
   */
  public static LoadReport load(Module module, Checkpoint checkpoint, LoadOptions options, String device)
      throws LoadException {
    return new ModuleLoad(module, checkpoint, options, Optional.of(Libtorch.device(device))).run();
  }

  /**
   * Creates a module with one tensor per checkpoint tensor (as {@link TorchModules#create}
   * describes, but not zero-filled) and loads it: each tensor's memory is written once, by the
   * copy. Float tensors are converted to {@link LoadOptions#createDType()} when set.
   */
  public static Module fromCheckpoint(Checkpoint checkpoint, LoadOptions options, String device) throws LoadException {
    Device target = Libtorch.device(device);
    Module module = TorchModules.create(checkpoint, options, target, false);
    try {
      new ModuleLoad(module, checkpoint, options, Optional.empty()).run();
      return module;
    } catch (LoadException | RuntimeException e) {
      module.close();
      throw e;
    }
  }

  static void requireCopyMode(LoadOptions options) {
    if (options.mode() != LoadMode.COPY) {
      throw new IllegalArgumentException("the libtorch backend copies: use LoadMode.COPY, not " + options.mode());
    }
    if (options.partition().isPresent() && options.partition().get().world() > 1) {
      throw new IllegalArgumentException("the libtorch backend does not load a partition (rank "
          + options.partition().get().rank() + " of " + options.partition().get().world() + "): write the rank's"
          + " checkpoint once with 'loadstone slice' and load that, or load the slice into a VarStore");
    }
  }
}
