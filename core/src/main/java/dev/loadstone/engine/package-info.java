/**
 * The load engine that every backend shares: {@link dev.loadstone.engine.LoadPlan} pairs a
 * checkpoint's tensors with a backend's targets, checks them and reports;
 * {@link dev.loadstone.engine.ChunkedCopy} copies the pairs in chunks on several threads with
 * page advice, progress and failures that name the file and tensor;
 * {@link dev.loadstone.engine.Parallel} runs work on several threads. {@code VarStore} loads
 * through it, and so does the libtorch module, to which alone this package is exported: it is
 * not a public API.
 */
package dev.loadstone.engine;
