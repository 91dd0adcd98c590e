package dev.loadstone.store;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.engine.ChunkedCopy;
import dev.loadstone.engine.LoadPlan;
import dev.loadstone.engine.LoadPlan.Assignment;
import dev.loadstone.engine.LoadPlan.Target;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * One {@link VarStore#load}: a {@link LoadPlan} over the store's variables, then a
 * {@link ChunkedCopy} into them (converting or dequantizing on the way) or aliases of the
 * mapped bytes.
 */
final class Loader {
  private final VarStore store;
  private final Checkpoint checkpoint;
  private final LoadOptions options;

  Loader(VarStore store, Checkpoint checkpoint, LoadOptions options) {
    this.store = store;
    this.checkpoint = checkpoint;
    this.options = options;
  }

  LoadReport run() throws LoadException {
    Map<String, Target<Variable>> targets = new LinkedHashMap<>();
    for (Variable variable : store.variables()) {
      targets.put(variable.name(), Target.of(variable, variable.shape(), variable.dtype()));
    }
    LoadPlan<Variable> plan = LoadPlan.create(checkpoint, options, targets, (tensor, dtype) ->
        options.mode() == LoadMode.ALIAS ? Optional.of("ALIAS needs equal dtypes")
            : tensor.canCopyTo(dtype) ? Optional.empty() : Optional.of("no conversion"),
        options.mode() == LoadMode.ALIAS
            ? Optional.of("an ALIAS load binds the stored bytes and cannot dequantize (load with COPY)")
            : checkpoint.isRemote()
                ? Optional.of("quantized weights of a remote checkpoint are not dequantized yet (load a local copy)")
                : Optional.empty());
    if (options.mode() == LoadMode.ALIAS && checkpoint.isRemote()) {
      throw new LoadException(checkpoint.path() + ": ALIAS binds variables to a file's mapped bytes, and a"
          + " remote checkpoint has none: load it with LoadMode.COPY (its bytes are read with range requests)",
          plan.report(false), null);
    }
    if (options.mode() == LoadMode.ALIAS) {
      refuseStridedAliases(plan);
    }
    plan.requireAcceptable();
    for (Assignment<Variable> assignment : plan.assignments()) {
      assignment.target().handle().markLoaded(false);
    }
    if (options.mode() == LoadMode.ALIAS) {
      bindAliases(plan);
      if (options.prefetch() || options.sha256()) {
        // The engine's chunks with nothing to copy: each is mapped in (MADV_POPULATE_READ, which
        // reads a cold file in) on all threads, and kept; hashed on the way if asked.
        new ChunkedCopy<>(plan, options.withReadMode(ReadMode.MAPPED).withReleaseMappedPages(false))
            .run((assignment, first, count, source) -> { });
      }
    } else {
      for (Assignment<Variable> assignment : plan.assignments()) {
        store.allocate(assignment.target().handle(), false);
      }
      new ChunkedCopy<>(plan, options).destinations((assignment, first, count) -> {
        Variable variable = assignment.target().handle();
        return Optional.of(variable.memoryOrNull().asSlice(variable.dtype().byteSize(first), variable.dtype().byteSize(count)));
      }).run((assignment, first, count, source) -> {
        Variable variable = assignment.target().handle();
        ChunkedCopy.chunkView(assignment, count, source).copyRangeTo(0, count, variable.memoryOrNull(),
            variable.dtype().byteSize(first), variable.dtype());
      });
    }
    for (Assignment<Variable> assignment : plan.assignments()) {
      assignment.target().handle().markLoaded(true);
    }
    return plan.report(true);
  }

  private static void bindAliases(LoadPlan<Variable> plan) throws LoadException {
    for (Assignment<Variable> assignment : plan.assignments()) {
      if (!assignment.tensor().segment().scope().isAlive()) {
        throw plan.failure(assignment, new IllegalStateException("the checkpoint is closed"));
      }
      assignment.target().handle().bindAlias(assignment.contiguousBytes().orElseThrow());
    }
  }

  /**
   * An ALIAS load binds each variable to one range of the mapping: a slice that is not one
   * (along dimension 1, or of a fused tensor) is refused before anything is bound.
   */
  private static void refuseStridedAliases(LoadPlan<Variable> plan) throws LoadException {
    for (Assignment<Variable> assignment : plan.assignments()) {
      if (assignment.slice().isPresent() && assignment.contiguousBytes().isEmpty()) {
        Partition.Slice slice = assignment.slice().get();
        throw new LoadException(assignment.tensor().file().orElse(plan.source().path()) + ": tensor '"
            + assignment.tensor().name() + "': ALIAS binds a variable to one contiguous range of the file, and this"
            + " rank's slice " + slice.ranges() + " of dimension " + slice.dimension() + " (rule '" + slice.rule()
            + "') is " + (slice.ranges().size() > 1 ? "one piece per fused part" : "a strided set of row pieces")
            + ": load with LoadMode.COPY, or write this rank's checkpoint once (loadstone slice) and alias that",
            plan.report(false), null);
      }
    }
  }
}
