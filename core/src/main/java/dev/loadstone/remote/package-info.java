/**
 * The plug-in point for remote checkpoint stores: a {@link dev.loadstone.remote.RemoteStoreProvider},
 * found with {@link java.util.ServiceLoader}, claims URL schemes (the {@code loadstone-s3} module
 * claims {@code s3}) and opens {@link dev.loadstone.remote.RemoteStore}s that read byte ranges of
 * {@link dev.loadstone.remote.RemoteObject}s. HTTP and HTTPS are built in and read through the
 * same interface, so that opening, validation, the parallel range reads of a COPY load, retries
 * and the checks against an object that changed are the same whatever the store.
 *
 * <p>A store makes one request per call; Loadstone decides what to retry
 * ({@link dev.loadstone.remote.RetryableReadException}), how long to wait, and what a short or
 * foreign response means.
 */
package dev.loadstone.remote;
