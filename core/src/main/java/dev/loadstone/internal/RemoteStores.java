package dev.loadstone.internal;

import dev.loadstone.remote.RemoteObject;
import dev.loadstone.remote.RemoteStore;
import dev.loadstone.remote.RemoteStoreProvider;
import dev.loadstone.safetensors.RemoteOptions;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.URI;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * The store that reads a URL: the built-in HTTP client for {@code http} and {@code https}, else
 * the {@link RemoteStoreProvider} that claims the scheme (found once with {@link ServiceLoader}).
 * One store per provider and options, shared by the files that use it and closed when the last
 * of them closes what {@link #acquire} gave it.
 */
public final class RemoteStores {
  private static final Map<Key, Shared> SHARED = new HashMap<>();
  private static volatile List<RemoteStoreProvider> providers;

  private RemoteStores() {}

  private record Key(Class<?> provider, RemoteOptions options) {}

  /** Whether {@code scheme} is read by the built-in client or by a provider found on the path. */
  public static boolean supports(String scheme) {
    String lower = scheme.toLowerCase(Locale.ROOT);
    return lower.equals("http") || lower.equals("https") || provider(lower).isPresent();
  }

  /**
   * The store for {@code url}, shared; close it once when done.
   *
   * @throws IllegalArgumentException if no store reads the URL's scheme (saying which module adds it)
   * @throws IOException if the provider cannot set the store up
   */
  public static RemoteStore acquire(URI url, RemoteOptions options) throws IOException {
    String scheme = url.getScheme() == null ? "" : url.getScheme().toLowerCase(Locale.ROOT);
    if (scheme.equals("http") || scheme.equals("https")) {
      if (url.getHost() == null) {
        throw new IllegalArgumentException("not an http(s) URL with a host: " + url);
      }
      return HttpRanges.acquire(HttpSettings.of(options));
    }
    RemoteStoreProvider provider = provider(scheme).orElseThrow(() -> new IllegalArgumentException(
        "no store reads " + scheme + ":// URLs (" + RemoteReads.describe(url) + ")"
            + (scheme.equals("s3") ? ": put the loadstone-s3 module (dev.loadstone.s3) on the module or class path" : "")));
    Key key = new Key(provider.getClass(), options);
    synchronized (SHARED) {
      Shared shared = SHARED.get(key);
      if (shared == null) {
        shared = new Shared(key, provider.open(options));
        SHARED.put(key, shared);
      }
      shared.users++;
      return shared;
    }
  }

  private static Optional<RemoteStoreProvider> provider(String scheme) {
    List<RemoteStoreProvider> found = providers;
    if (found == null) {
      found = ServiceLoader.load(RemoteStoreProvider.class, RemoteStores.class.getClassLoader()).stream()
          .map(ServiceLoader.Provider::get).toList();
      providers = found;
    }
    return found.stream().filter(p -> p.supports(scheme)).findFirst();
  }

  /** A provider's store and its users; closing it releases one use, the last closes the store. */
  private static final class Shared implements RemoteStore {
    private final Key key;
    private final RemoteStore store;
    private int users;

    Shared(Key key, RemoteStore store) {
      this.key = key;
      this.store = store;
    }

    @Override
    public RemoteOptions options() {
      return store.options();
    }

    @Override
    public Start readStart(URI url, MemorySegment target) throws IOException {
      return store.readStart(url, target);
    }

    @Override
    public long readRange(RemoteObject object, long from, MemorySegment target) throws IOException {
      return store.readRange(object, from, target);
    }

    @Override
    public byte[] readAll(URI url, long maxBytes) throws IOException {
      return store.readAll(url, maxBytes);
    }

    @Override
    public void close() throws IOException {
      synchronized (SHARED) {
        if (users == 0 || --users > 0) {
          return;
        }
        SHARED.remove(key);
      }
      store.close();
    }

    @Override
    public String toString() {
      return store.toString();
    }
  }
}
