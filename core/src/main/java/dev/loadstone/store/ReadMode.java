package dev.loadstone.store;

/**
 * How a COPY load reads the checkpoint's bytes ({@link LoadOptions#withReadMode}). An ALIAS
 * load always uses the mapping: its variables are the mapped bytes.
 *
 * <pre>{@code
 * store.load(checkpoint, LoadOptions.defaults().withReadMode(ReadMode.POSITIONAL));   // a cold start
 * }</pre>
 *
 * <p>Reads other than {@link #MAPPED} keep many large reads in flight (a device reaches its
 * throughput only with several outstanding requests) and never fault; a file truncated or
 * replaced under them is a {@link LoadException} naming the file and the tensor.
 */
public enum ReadMode {
  /**
   * Asks the page cache ({@code mincore}) about each file when the load starts. A file mostly
   * in it is read from the cache by positional reads (the kernel copies out of the cache; no
   * mapping is faulted in, and the file stays cached): straight into the variables where no
   * conversion is needed, through a small staging buffer per thread where one is; a quantized
   * weight is dequantized out of the mapping. The other files are read {@link #POSITIONAL}.
   * The default.
   */
  AUTO,
  /**
   * Copies out of the file's mapping: fastest when the file is in the page cache; for a file
   * that is not, the kernel reads it in page fault by page fault, with its read-ahead.
   */
  MAPPED,
  /**
   * Positional reads through the page cache, each range dropped from the cache once read
   * ({@code POSIX_FADV_DONTNEED}), so that the cache holds what it held before: straight into
   * the variable where no conversion is needed, through a small staging buffer per reader
   * where one is.
   */
  POSITIONAL,
  /**
   * Positional reads around the page cache ({@code O_DIRECT}), where the file system takes it
   * (else {@link #POSITIONAL}, said once), through a staging buffer per reader (aligned reads,
   * the tensor's bytes cut out of them). Leaves the page cache alone; on some storage slower
   * than {@link #POSITIONAL} (see the README's figures).
   */
  DIRECT
}
