package dev.loadstone.remote;

import dev.loadstone.safetensors.RemoteOptions;
import java.io.IOException;

/**
 * Opens {@link RemoteStore}s for URL schemes besides {@code http} and {@code https}, found with
 * {@link java.util.ServiceLoader} ({@code provides dev.loadstone.remote.RemoteStoreProvider with
 * ...} in a module, or a {@code META-INF/services} entry on the class path). The
 * {@code loadstone-s3} module provides {@code s3}.
 */
public interface RemoteStoreProvider {
  /** Whether URLs of {@code scheme} (lower case, without {@code ://}) are this provider's. */
  boolean supports(String scheme);

  /**
   * Opens a store for this provider's URLs, read with {@code options}: one store serves every
   * URL of its schemes, and is shared by the files opened with equal options.
   *
   * @throws IOException if the store cannot be set up (no credentials or region, say), with a
   *     message that says what is missing
   */
  RemoteStore open(RemoteOptions options) throws IOException;
}
