package dev.loadstone.store;

import dev.loadstone.checkpoint.Checkpoint;
import dev.loadstone.store.LoadPlan.Assignment;
import dev.loadstone.store.LoadPlan.Target;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * One {@link VarStore#load}: a {@link LoadPlan} over the store's variables, then a parallel
 * copy into them (converting on the way) or aliases of the mapped bytes.
 */
final class Loader {
  /** Work is split into chunks of about this many bytes, so all threads stay busy. */
  private static final long CHUNK_BYTES = 8L << 20;

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
            : tensor.canCopyTo(dtype) ? Optional.empty() : Optional.of("no conversion"));
    plan.requireAcceptable();
    for (Assignment<Variable> assignment : plan.assignments()) {
      assignment.target().handle().markLoaded(false);
    }
    if (options.mode() == LoadMode.ALIAS) {
      bindAliases(plan);
    } else {
      for (Assignment<Variable> assignment : plan.assignments()) {
        store.allocate(assignment.target().handle(), false);
      }
      plan.copyInChunks(CHUNK_BYTES, UnaryOperator.identity(), assignment -> false,
          (assignment, first, count, source) -> {
            Variable variable = assignment.target().handle();
            assignment.tensor().copyRangeTo(first, count, variable.memoryOrNull(),
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
      assignment.target().handle().bindAlias(assignment.tensor().segment());
    }
  }
}
