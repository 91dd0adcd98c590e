package dev.loadstone.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.HexFormat;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A file that appears at its target whole or not at all. Its bytes go to a hidden temporary file
 * in the target's directory ({@code .NAME.tmp-RANDOM}, on the same file system, so a rename can
 * replace the target): {@link #seal()} forces them to disk and closes the file, and
 * {@link #commit()} renames it over the target in one atomic step, then forces the directory
 * entry to disk where the platform allows it.
 *
 * <p>Until the rename the target is untouched; afterwards it is the whole new file. After a
 * failed write, seal or rename the file refuses to commit, and closing it without a commit,
 * after any failure included, deletes the temporary file. A process that
 * dies before the rename leaves the target intact and the temporary file behind; it may be
 * deleted.
 *
 * <p>One file, written by one thread. Used by both writers of the safetensors format, for the
 * data files and the shard index.
 */
public final class AtomicFile implements AutoCloseable {
  /** How many random temporary names to try before giving up on one that exists. */
  private static final int NAME_ATTEMPTS = 11;

  private enum State { WRITING, SEALED, FAILED, COMMITTED, CLOSED }

  private final Path target;
  private final Path temporary;
  private FileChannel channel;
  private State state = State.WRITING;

  private AtomicFile(Path target, Path temporary, FileChannel channel) {
    this.target = target;
    this.temporary = temporary;
    this.channel = channel;
  }

  /**
   * Creates the temporary file for {@code target}, empty and open for writing.
   *
   * @throws IllegalArgumentException if {@code target} names no file (a root)
   * @throws IOException if the temporary file cannot be created
   */
  public static AtomicFile create(Path target) throws IOException {
    Path absolute = target.toAbsolutePath();
    Path fileName = absolute.getFileName();
    if (fileName == null) {
      throw new IllegalArgumentException(target + " is not a file path");
    }
    HexFormat hex = HexFormat.of();
    for (int attempt = 1; ; attempt++) {
      Path temporary = absolute.resolveSibling("." + fileName + ".tmp-"
          + hex.toHexDigits(ThreadLocalRandom.current().nextLong()));
      try {
        FileChannel channel = FileChannel.open(temporary, StandardOpenOption.CREATE_NEW,
            StandardOpenOption.WRITE);
        return new AtomicFile(absolute, temporary, channel);
      } catch (FileAlreadyExistsException e) {
        if (attempt == NAME_ATTEMPTS) {
          throw e;
        }
      }
    }
  }

  /** Writes a whole file in one call: {@code bytes} appear at {@code target}, or nothing does. */
  public static void write(Path target, byte[] bytes) throws IOException {
    try (AtomicFile file = create(target)) {
      file.append(ByteBuffer.wrap(bytes));
      file.commit();
    }
  }

  /** The file this creates or replaces at {@link #commit()}, as an absolute path. */
  public Path target() {
    return target;
  }

  /** The temporary file, which holds the bytes until {@link #commit()}. */
  public Path temporary() {
    return temporary;
  }

  /**
   * Appends all of the buffer's remaining bytes to the temporary file.
   *
   * @throws IllegalStateException if the file is sealed, committed or closed, or an earlier
   *     write failed
   * @throws IOException if writing fails; then only {@link #close()} is left to call
   */
  public void append(ByteBuffer bytes) throws IOException {
    requireState(State.WRITING, "write");
    try {
      while (bytes.hasRemaining()) {
        channel.write(bytes);
      }
    } catch (Throwable t) {
      state = State.FAILED;
      throw t;
    }
  }

  /**
   * Forces the bytes to disk and closes the temporary file, so that {@link #commit()} has only
   * the rename left to do.
   *
   * @throws IllegalStateException if the file is already sealed, committed or closed, or an
   *     earlier write failed
   * @throws IOException if the bytes cannot be forced to disk; then only {@link #close()} is
   *     left to call
   */
  public void seal() throws IOException {
    requireState(State.WRITING, "seal");
    try {
      channel.force(true);
      channel.close();
    } catch (Throwable t) {
      state = State.FAILED;
      throw t;
    }
    channel = null;
    state = State.SEALED;
  }

  /**
   * Puts the file in place: seals it if that is not done yet, renames the temporary file over
   * the target atomically, then forces the directory entry to disk where the platform allows.
   *
   * @throws IllegalStateException if an earlier write, seal or commit failed, or the file is
   *     already committed or closed
   * @throws IOException if the bytes cannot be forced or the rename fails (the target is then
   *     unchanged; {@link #close()} deletes the temporary file), or the file system cannot
   *     rename atomically
   */
  public void commit() throws IOException {
    if (state == State.WRITING) {
      seal();
    }
    requireState(State.SEALED, "commit");
    try {
      Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      state = State.FAILED;
      throw new IOException(target + ": the file system cannot rename "
          + temporary.getFileName() + " over it atomically", e);
    } catch (Throwable t) {
      state = State.FAILED;
      throw t;
    }
    state = State.COMMITTED;
    forceDirectory(target.getParent());
  }

  /**
   * Ends the file. Without a successful {@link #commit()} it closes and deletes the temporary
   * file, and the target stays as it was. Idempotent.
   */
  @Override
  public void close() {
    State was = state;
    state = State.CLOSED;
    if (was == State.COMMITTED || was == State.CLOSED) {
      return;
    }
    if (channel != null) {
      try {
        channel.close();
      } catch (IOException ignored) {
        // the file is deleted next; nothing was promised about its contents
      }
      channel = null;
    }
    try {
      Files.deleteIfExists(temporary);
    } catch (IOException ignored) {
      // a hidden temporary file is left behind; the target is intact either way
    }
  }

  @Override
  public String toString() {
    return "AtomicFile[" + target + " via " + temporary.getFileName() + ", "
        + state.name().toLowerCase(Locale.ROOT) + "]";
  }

  /**
   * Forces a directory's entries to disk, so that a rename survives a crash. Best effort: some
   * platforms (Windows) cannot open a directory for this and need not.
   */
  private static void forceDirectory(Path directory) {
    if (directory == null) {
      return;
    }
    try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ)) {
      dir.force(true);
    } catch (IOException | UnsupportedOperationException ignored) {
      // not supported here; the rename itself is still atomic
    }
  }

  private void requireState(State expected, String action) {
    if (state != expected) {
      String why = state == State.FAILED ? "an earlier write, seal or commit failed"
          : "the file is " + state.name().toLowerCase(Locale.ROOT);
      throw new IllegalStateException(target + ": cannot " + action + ": " + why);
    }
  }
}
