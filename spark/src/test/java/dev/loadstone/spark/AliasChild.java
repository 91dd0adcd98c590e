package dev.loadstone.spark;

import dev.loadstone.store.Variable;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A second JVM for {@link SharedPagesTest}: aliases the checkpoint named by its argument
 * through the registry, reads every page of every tensor, says "touched", and holds the model
 * until its stdin closes.
 */
public final class AliasChild {
  private AliasChild() {}

  /** Runs the child; the argument is the checkpoint's path. */
  public static void main(String[] args) throws Exception {
    ModelManifest manifest = ModelManifest.of(args[0]);
    try (ModelRegistry.Handle<LoadedCheckpoint> handle = ModelRegistry.shared().acquire(manifest, ModelLoader.checkpoint())) {
      long sum = 0;
      long bytes = 0;
      for (Variable variable : handle.get().store().variables()) {
        if (!variable.isAlias()) {
          throw new AssertionError(variable.name() + " is not aliased");
        }
        MemorySegment segment = variable.segment();
        for (long offset = 0; offset < segment.byteSize(); offset += 4096) {
          sum += segment.get(ValueLayout.JAVA_BYTE, offset);
        }
        if (segment.byteSize() > 0) {
          sum += segment.get(ValueLayout.JAVA_BYTE, segment.byteSize() - 1);
        }
        bytes += segment.byteSize();
      }
      System.out.println("touched " + bytes + " " + sum);
      System.out.flush();
      while (System.in.read() >= 0) {
        // held until the parent closes our stdin
      }
    }
  }
}
