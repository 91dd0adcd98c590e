package dev.loadstone.store;

/**
 * How a COPY load reads the checkpoint's bytes ({@link LoadOptions#withReadMode}). An ALIAS
 * load always uses the mapping: its variables are the mapped bytes.
 *
 * <pre>{@code
 * store.load(checkpoint, LoadOptions.defaults().withReadMode(ReadMode.DIRECT));   // a cold start
 * }</pre>
 */
public enum ReadMode {
  /**
   * Asks the page cache ({@code mincore}) about each file when the load starts: a file mostly
   * in it is copied out of the mapping ({@link #MAPPED}), the others are read {@link #DIRECT}.
   * The default.
   */
  AUTO,
  /**
   * Copies out of the file's mapping: fastest when the file is in the page cache; for a file
   * that is not, the kernel reads it in page fault by page fault, with its read-ahead.
   */
  MAPPED,
  /**
   * Reads the file with large positional reads, many in flight, into the variables (through a
   * small staging buffer per reader): no page faults, and with {@code O_DIRECT}, where the file
   * system supports it, without filling the page cache, so a load does not evict the rest of
   * the machine's cache. Where {@code O_DIRECT} is refused, buffered reads (said once, see
   * {@code loadstone bench}'s fallbacks). A file truncated or replaced under the load is a
   * {@link LoadException} naming the file and the tensor.
   */
  DIRECT
}
