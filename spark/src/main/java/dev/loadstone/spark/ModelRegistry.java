package dev.loadstone.spark;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The models of one JVM, each loaded once and shared by every thread that asks for it: on a
 * Spark executor, one load per executor JVM for all its tasks, whatever the number of
 * partitions.
 *
 * <p><b>Keys.</b> A model is identified by its {@link ModelManifest} (location, revision,
 * hashes, load options, rank) and its {@link ModelLoader#name()}. Equal keys share one model.
 *
 * <p><b>Acquire and release.</b> {@link #acquire} returns a {@link Handle}; the model stays
 * open while any handle to it is open. The first caller of a key loads it on its own thread;
 * callers that arrive while it loads wait for that load instead of starting another. A failed
 * load is thrown to its caller and to every waiter (each gets an {@link IOException} whose cause
 * is the failure) and is not remembered: the next {@link #acquire} tries again.
 *
 * <p><b>Idle models stay loaded.</b> When the last handle of a model is released it stays open,
 * idle, for the next task (a Spark executor runs a stage's tasks one after another on its
 * threads, so models would otherwise be loaded again for every partition). Idle models are
 * closed by {@link #closeIdle()}, and every model by {@link #closeAll()}: the idle ones at once,
 * those in use when their last handle is released. {@link #shared()} calls {@link #closeAll()}
 * from a shutdown hook when the JVM exits, and {@link LoadstonePlugin} when the executor stops.
 * The registry stays usable after either: a later {@link #acquire} loads afresh.
 *
 * <p>Thread-safe. Loading happens outside the registry's lock, so loads of different keys
 * run in parallel.
 */
public final class ModelRegistry {
  private static final ModelRegistry SHARED = new ModelRegistry();
  private static final AtomicBoolean HOOKED = new AtomicBoolean();

  /** A model's identity: its manifest and what its loader makes of it. */
  private record Key(ModelManifest manifest, String loader) {}

  /** One model: loading, loaded, or closing. Fields guarded by the registry's lock. */
  private static final class Entry {
    final Key key;
    final CompletableFuture<AutoCloseable> model = new CompletableFuture<>();
    int users;
    /** Close when the last user releases it (set by closeAll while in use). */
    boolean closeWhenReleased;
    boolean closed;

    Entry(Key key) {
      this.key = key;
    }
  }

  private final Object lock = new Object();
  private final Map<Key, Entry> entries = new HashMap<>();
  /** Loads started per key, including failed ones and ones of models closed since. */
  private final Map<Key, Integer> loadCounts = new HashMap<>();
  private long loads;
  private long failures;
  private long closes;

  /** A registry of its own (tests, or a program that manages several); most code uses {@link #shared()}. */
  public ModelRegistry() {}

  /**
   * This JVM's registry, the one every task of an executor shares. The first call adds a
   * shutdown hook that closes its models ({@link #closeAll()}) when the JVM exits.
   */
  public static ModelRegistry shared() {
    if (HOOKED.compareAndSet(false, true)) {
      Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("loadstone-models-shutdown")
          .unstarted(SHARED::closeAll));
    }
    return SHARED;
  }

  /**
   * The model of {@code manifest} made by {@code loader}: the one already loaded in this JVM,
   * the one being loaded (waiting for it), or a new load on this thread.
   *
   * @throws IOException if the load fails (on this thread, or on the thread that was loading
   *     it, whose failure is the cause), naming the checkpoint
   * @throws InterruptedIOException if this thread is interrupted while it waits for another's
   *     load (a killed task); the load goes on for the others
   */
  public <M extends AutoCloseable> Handle<M> acquire(ModelManifest manifest, ModelLoader<M> loader)
      throws IOException {
    Objects.requireNonNull(manifest, "manifest");
    Objects.requireNonNull(loader, "loader");
    Key key = new Key(manifest, loader.name());
    Entry entry;
    boolean loadHere = false;
    synchronized (lock) {
      entry = entries.get(key);
      if (entry == null) {
        entry = new Entry(key);
        entries.put(key, entry);
        loadCounts.merge(key, 1, Integer::sum);
        loads++;
        loadHere = true;
      }
      entry.users++;
    }
    if (loadHere) {
      load(entry, manifest, loader);
    }
    AutoCloseable model;
    try {
      model = entry.model.get();
    } catch (InterruptedException e) {
      release(entry);
      Thread.currentThread().interrupt();
      InterruptedIOException interrupted = new InterruptedIOException(
          "interrupted while waiting for another thread's load of " + manifest);
      interrupted.initCause(e);
      throw interrupted;
    } catch (ExecutionException e) {
      release(entry);
      Throwable cause = e.getCause();
      if (loadHere) {
        if (cause instanceof IOException io) {
          throw io;
        }
        if (cause instanceof RuntimeException runtime) {
          throw runtime;
        }
        if (cause instanceof Error error) {
          throw error;
        }
      }
      throw new IOException("the load of " + manifest + " (by " + loader.name() + ") failed on another thread: "
          + cause, cause);
    }
    @SuppressWarnings("unchecked")
    M typed = (M) model;
    return new Handle<>(this, entry, typed);
  }

  private <M extends AutoCloseable> void load(Entry entry, ModelManifest manifest, ModelLoader<M> loader) {
    try {
      M model = Objects.requireNonNull(loader.load(manifest), () -> loader.name() + " loaded null for " + manifest);
      entry.model.complete(model);
    } catch (Throwable t) {
      synchronized (lock) {
        failures++;
        // Not cached: the next acquire loads again. Waiters hold the entry and see the failure.
        entries.remove(entry.key, entry);
        entry.closed = true;
      }
      entry.model.completeExceptionally(t);
    }
  }

  /** Gives up one use of {@code entry}; closes it if it was the last use and closing is due. */
  private void release(Entry entry) {
    boolean close;
    synchronized (lock) {
      entry.users--;
      close = entry.users == 0 && entry.closeWhenReleased && !entry.closed;
      if (close) {
        entry.closed = true;
        entries.remove(entry.key, entry);
      }
    }
    if (close) {
      closeModel(entry);
    }
  }

  /** Closes every model that no handle holds now. */
  public void closeIdle() {
    close(false);
  }

  /**
   * Closes every model: those no handle holds now, the others when their last handle is
   * released. New acquires after this load afresh.
   */
  public void closeAll() {
    close(true);
  }

  private void close(boolean all) {
    List<Entry> now = new ArrayList<>();
    synchronized (lock) {
      for (Entry entry : List.copyOf(entries.values())) {
        if (!entry.model.isDone() || entry.model.isCompletedExceptionally()) {
          if (all) {
            entry.closeWhenReleased = true;   // still loading: closed when its users are done
            entries.remove(entry.key);
          }
          continue;
        }
        if (entry.users == 0) {
          entry.closed = true;
          entries.remove(entry.key);
          now.add(entry);
        } else if (all) {
          entry.closeWhenReleased = true;
          entries.remove(entry.key);
        }
      }
    }
    for (Entry entry : now) {
      closeModel(entry);
    }
  }

  private void closeModel(Entry entry) {
    AutoCloseable model = entry.model.getNow(null);
    if (model == null) {
      return;
    }
    try {
      model.close();
    } catch (Exception e) {
      System.getLogger("dev.loadstone").log(System.Logger.Level.WARNING,
          "closing " + entry.key.manifest() + " (" + entry.key.loader() + ") failed", e);
    } finally {
      synchronized (lock) {
        closes++;
      }
    }
  }

  /**
   * The loads this registry has started for {@code manifest} and {@code loader}, failed ones
   * included: 1 after any number of acquires of a model that loaded and stayed open.
   */
  public int loadCount(ModelManifest manifest, ModelLoader<?> loader) {
    synchronized (lock) {
      return loadCounts.getOrDefault(new Key(manifest, loader.name()), 0);
    }
  }

  /** Counts since the registry was made: loads started, loads failed, models closed, models open now. */
  public Stats stats() {
    synchronized (lock) {
      return new Stats(loads, failures, closes, entries.size());
    }
  }

  /**
   * A registry's counts.
   *
   * @param loads loads started (one per key, again after a failure or a close)
   * @param failures loads that failed
   * @param closes models closed
   * @param open models loaded or loading and not being closed
   */
  public record Stats(long loads, long failures, long closes, int open) {}

  /**
   * One use of a model: {@link #get()} it while the handle is open, {@link #close()} it when done
   * (idempotent). The model stays open while any handle to it is.
   *
   * @param <M> the model's type
   */
  public static final class Handle<M extends AutoCloseable> implements AutoCloseable {
    private final ModelRegistry registry;
    private final Entry entry;
    private final M model;
    private final AtomicBoolean released = new AtomicBoolean();

    private Handle(ModelRegistry registry, Entry entry, M model) {
      this.registry = registry;
      this.entry = entry;
      this.model = model;
    }

    /**
     * The model.
     *
     * @throws IllegalStateException if this handle was closed
     */
    public M get() {
      if (released.get()) {
        throw new IllegalStateException("the handle of " + entry.key.manifest() + " was closed");
      }
      return model;
    }

    /** The manifest the model was loaded from. */
    public ModelManifest manifest() {
      return entry.key.manifest();
    }

    /** Releases this use of the model. */
    @Override
    public void close() {
      if (released.compareAndSet(false, true)) {
        registry.release(entry);
      }
    }

    @Override
    public String toString() {
      return "Handle[" + entry.key.manifest() + ", " + entry.key.loader() + (released.get() ? ", closed" : "") + "]";
    }
  }
}
