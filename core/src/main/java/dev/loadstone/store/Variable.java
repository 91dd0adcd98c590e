package dev.loadstone.store;

import dev.loadstone.safetensors.DType;
import dev.loadstone.safetensors.TensorSpec;
import dev.loadstone.safetensors.TensorView;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A named tensor of a {@link VarStore}: dtype, shape and memory. The memory is either owned by
 * the store (off-heap, 64-byte aligned, freed when the store closes), or, after an
 * {@link LoadMode#ALIAS} load, the read-only mapped bytes of a checkpoint, readable only while
 * that checkpoint is open.
 *
 * <p>Owned memory is allocated on first use (or by {@link VarStore#allocate(int)}) and filled by the
 * variable's {@link Initializer}, so a variable that will be aliased never costs memory.
 */
public final class Variable {
  private final VarStore store;
  private final String name;
  private final DType dtype;
  private final long[] shape;
  private final long elementCount;
  private final long byteSize;
  private final Initializer initializer;
  private volatile MemorySegment memory;
  private volatile boolean alias;
  private volatile boolean loaded;

  Variable(VarStore store, String name, DType dtype, long[] shape, Initializer initializer) {
    this.store = store;
    this.name = name;
    this.dtype = dtype;
    TensorSpec spec = new TensorSpec(name, dtype, shape);
    this.shape = spec.shape();
    this.elementCount = spec.elementCount();
    this.byteSize = spec.byteSize();
    if (!initializer.supports(dtype)) {
      throw new IllegalArgumentException(name + ": " + initializer + " cannot fill a " + dtype + " variable");
    }
    this.initializer = initializer;
  }

  /** The full, dot-separated name, as in a checkpoint ({@code model.layers.0.mlp.up_proj.weight}). */
  public String name() {
    return name;
  }

  /** The element type. */
  public DType dtype() {
    return dtype;
  }

  /** The dimensions (a copy). */
  public long[] shape() {
    return shape.clone();
  }

  /** The number of elements. */
  public long elementCount() {
    return elementCount;
  }

  /** The size of the data in bytes. */
  public long byteSize() {
    return byteSize;
  }

  /**
   * The variable's memory: writable when owned, read-only when an alias. Allocates and
   * initializes owned memory on first use.
   *
   * @throws IllegalStateException if the store is closed (or, for an alias, its checkpoint)
   */
  public MemorySegment segment() {
    MemorySegment current = memory;
    return current != null ? current : store.allocate(this, true);
  }

  /** A read-only view of the variable, e.g. to compare, slice or save it. */
  public TensorView view() {
    return TensorView.of(name, dtype, shape, segment());
  }

  /** Whether memory is bound: allocated, or aliased. */
  public boolean isBound() {
    return memory != null;
  }

  /** Whether the memory is a checkpoint's mapped bytes ({@link LoadMode#ALIAS}). */
  public boolean isAlias() {
    return alias;
  }

  /**
   * Whether the last load that touched this variable completed it. False for a variable still
   * holding its initial values, and after a load failed midway.
   */
  public boolean isLoaded() {
    return loaded;
  }

  Initializer initializer() {
    return initializer;
  }

  MemorySegment memoryOrNull() {
    return memory;
  }

  void bindOwned(MemorySegment owned) {
    this.memory = owned;
    this.alias = false;
  }

  void bindAlias(MemorySegment mapped) {
    this.memory = mapped;
    this.alias = true;
  }

  void markLoaded(boolean value) {
    this.loaded = value;
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape) + (alias ? " (alias)" : "");
  }
}
