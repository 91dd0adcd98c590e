package dev.loadstone.store;

import dev.loadstone.safetensors.DType;
import java.util.Objects;

/**
 * A position in a {@link VarStore}'s name hierarchy. Names join with {@code .}, as in Hugging
 * Face checkpoints.
 *
 * <pre>{@code
 * Scope layer = store.root().sub("model").sub("layers").sub(0);
 * Variable w = layer.sub("self_attn").sub("q_proj")
 *     .variable("weight", DType.BF16, new long[] {2048, 2048}, Initializer.zeros());
 * w.name();   // "model.layers.0.self_attn.q_proj.weight"
 * }</pre>
 */
public final class Scope {
  private final VarStore store;
  private final String prefix;

  Scope(VarStore store, String prefix) {
    this.store = store;
    this.prefix = prefix;
  }

  /** The scope one level down. {@code component} must be non-empty and contain no dot. */
  public Scope sub(String component) {
    return new Scope(store, join(component));
  }

  /** The scope one level down, named by an index ({@code layers.0}). */
  public Scope sub(int index) {
    if (index < 0) {
      throw new IllegalArgumentException("negative index " + index);
    }
    return new Scope(store, join(Integer.toString(index)));
  }

  /** The dotted name of this scope; empty at the root. */
  public String prefix() {
    return prefix;
  }

  /**
   * Creates a variable named {@code prefix.name}. The name may itself be dotted, a path below
   * this scope ({@code root.variable("model.norm.weight", ...)} is
   * {@code root.sub("model").sub("norm").variable("weight", ...)}), so a checkpoint's tensor
   * names can be used as they are.
   *
   * @throws IllegalArgumentException if a component of the name is empty, the store already has
   *     a variable of that name, or the initializer cannot fill this dtype
   */
  public Variable variable(String name, DType dtype, long[] shape, Initializer initializer) {
    Objects.requireNonNull(dtype, "dtype");
    Objects.requireNonNull(shape, "shape");
    Objects.requireNonNull(initializer, "initializer");
    return store.create(joinPath(name), dtype, shape, initializer);
  }

  /** Creates a zero-initialized variable named {@code prefix.name} (dotted or not, as {@link #variable}). */
  public Variable zeros(String name, DType dtype, long... shape) {
    return variable(name, dtype, shape, Initializer.zeros());
  }

  private String joinPath(String path) {
    Objects.requireNonNull(path, "name");
    String joined = prefix;
    int start = 0;
    while (true) {
      int dot = path.indexOf('.', start);
      String component = path.substring(start, dot < 0 ? path.length() : dot);
      if (component.isEmpty()) {
        throw new IllegalArgumentException("a variable name has no empty components: '" + path + "'");
      }
      joined = joined.isEmpty() ? component : joined + "." + component;
      if (dot < 0) {
        return joined;
      }
      start = dot + 1;
    }
  }

  private String join(String component) {
    Objects.requireNonNull(component, "component");
    if (component.isEmpty() || component.indexOf('.') >= 0) {
      throw new IllegalArgumentException("a name component is non-empty and has no '.': '" + component + "'");
    }
    return prefix.isEmpty() ? component : prefix + "." + component;
  }

  @Override
  public String toString() {
    return prefix.isEmpty() ? "<root>" : prefix;
  }
}
