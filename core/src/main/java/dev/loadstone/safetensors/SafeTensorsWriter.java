package dev.loadstone.safetensors;

import dev.loadstone.internal.AtomicFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Writes a {@code .safetensors} file: byte for byte the file the reference implementation
 * ({@code safetensors.torch.save_file}, Rust {@code serialize_to_file}) writes for the same
 * tensors and metadata, and never a damaged one.
 *
 * <p><b>The bytes.</b> Tensors are laid out in {@link TensorSpec#canonicalOrder()} (by dtype,
 * widest first, then by name) with no padding between them; the header is compact JSON with
 * {@code __metadata__} first and each entry's fields as {@code dtype}, {@code shape},
 * {@code data_offsets}, strings escaped as {@code serde_json} escapes them, padded with spaces
 * to a multiple of 8 bytes. The reference stores {@code __metadata__} in a hash map and so
 * writes its keys in no fixed order; this writer sorts them by code point, which is the
 * reference's output whenever there is one key. (With no tensors and an empty metadata map the
 * reference writes <code>{},"__metadata__":{}}</code>, which no reader accepts, its own included;
 * this writer writes <code>{"__metadata__":{}}</code>.)
 *
 * <p><b>Atomic.</b> The file is written to a hidden temporary file in the target's directory
 * ({@code .NAME.tmp-RANDOM}), forced to disk, and renamed over the target in one atomic step:
 * until {@link #commit()} the target is untouched, afterwards it is the whole new file. If the
 * process dies before the rename, the old target stays intact and the temporary file remains;
 * it may be deleted.
 *
 * <p><b>Cached in 2 MiB pages.</b> The file receives whole 2 MiB blocks aligned in the file
 * (bytes short of a boundary wait in one 2 MiB buffer; a mapped source is paged in first), so
 * that Linux keeps a freshly written file in the page cache in 2 MiB folios, which later loads
 * map as 2 MiB pages.
 *
 * <p><b>Streaming.</b> Declare every tensor first, then stream each one's bytes in file order,
 * in chunks of any size, so a file larger than memory can be written:
 *
 * <pre>{@code
 * List<TensorSpec> specs = List.of(
 *     new TensorSpec("embed", DType.BF16, new long[] {32000, 4096}),
 *     new TensorSpec("norm", DType.F32, new long[] {4096}));
 * try (SafeTensorsWriter out = SafeTensorsWriter.create(path, Map.of("format", "pt"), specs)) {
 *   for (TensorSpec spec : out.tensors()) {            // file order: norm (F32), then embed (BF16)
 *     for (MemorySegment chunk : chunksOf(spec)) {      // any chunk sizes that add up
 *       out.write(spec.name(), chunk);
 *     }
 *   }
 *   out.commit();                                       // fsync, then rename into place
 * }                                                      // without commit: temp file deleted
 * }</pre>
 *
 * <p>When the tensors are already in memory (or mapped from another file), one call does it:
 *
 * <pre>{@code
 * SafeTensorsWriter.write(path, null, List.of(TensorView.of("w", DType.F32, new long[] {2, 2}, segment)));
 * }</pre>
 *
 * <p>Instances are not thread-safe.
 */
public final class SafeTensorsWriter implements TensorWriter {
  private enum State { OPEN, COMPLETE, COMMITTED, FAILED, CLOSED }

  private final AtomicFile file;
  private final BlockAlignedOutput output;
  private final List<TensorSpec> tensors;
  private final long[] begins;
  private final Map<String, Integer> indexOf;
  /** Bytes of tensor data accepted so far. */
  private long written;
  private State state = State.OPEN;

  private SafeTensorsWriter(AtomicFile file, HeaderEncoder.Layout layout) {
    this.file = file;
    this.output = new BlockAlignedOutput(file::append);
    this.tensors = layout.tensors();
    this.begins = layout.begins();
    this.indexOf = HashMap.newHashMap(tensors.size());
    for (int i = 0; i < tensors.size(); i++) {
      indexOf.put(tensors.get(i).name(), i);
    }
  }

  /**
   * Writes a file of these tensors in one call, atomically: the target is replaced only once
   * every byte is on disk. The tensors may come in any order; their segments may live anywhere
   * (heap, off-heap, another file's mapping).
   *
   * @param target the file to create or replace
   * @param metadata the {@code __metadata__} map (written with its keys in code point order), or
   *     {@code null} to write no {@code __metadata__} at all; an empty map writes {@code {}}
   * @param tensors the tensors, each with a distinct name
   * @throws IllegalArgumentException if the tensors or metadata cannot form a valid file (see
   *     {@link #create})
   * @throws IOException if writing fails; the target is then unchanged
   */
  public static void write(Path target, Map<String, String> metadata,
      Collection<TensorView> tensors) throws IOException {
    try (TensorWriter out = create(target, metadata, tensors.stream().map(TensorSpec::of).toList())) {
      out.writeAllAndCommit(tensors);
    }
  }

  /**
   * Starts writing a file: validates the specs, creates the temporary file next to the target
   * and writes the header. Then {@link #write(String, MemorySegment)} each tensor's bytes in the
   * order of {@link #tensors()} and {@link #commit()}.
   *
   * @param target the file to create or replace at {@link #commit()}
   * @param metadata the {@code __metadata__} map, or {@code null} for none (see {@link #write})
   * @param tensors every tensor of the file, in any order
   * @throws IllegalArgumentException if two tensors share a name, a tensor is named
   *     {@code __metadata__}, a name, key or value holds an unpaired surrogate (which UTF-8
   *     cannot encode), the data exceeds 2^63 - 1 bytes or the header 100,000,000 bytes
   * @throws IOException if the temporary file cannot be created or written
   */
  public static SafeTensorsWriter create(Path target, Map<String, String> metadata,
      Collection<TensorSpec> tensors) throws IOException {
    Objects.requireNonNull(target, "target");
    HeaderEncoder.Layout layout = HeaderEncoder.layout(metadata, tensors);
    SafeTensorsWriter writer = new SafeTensorsWriter(AtomicFile.create(target), layout);
    try {
      writer.output.append(MemorySegment.ofArray(layout.header()));
      writer.finishIfComplete();
    } catch (Throwable t) {
      writer.close();
      throw t;
    }
    return writer;
  }

  /**
   * The bytes a writer puts before the tensors' data: the 8-byte little-endian header length,
   * then the JSON header padded with spaces to a multiple of 8 bytes. The data that follows
   * holds the tensors in {@link TensorSpec#canonicalOrder()}, back to back, so a file is
   * {@code header(...).length} plus the sum of the tensors' byte sizes long.
   *
   * @throws IllegalArgumentException as {@link #create}
   */
  public static byte[] header(Map<String, String> metadata, Collection<TensorSpec> tensors) {
    return HeaderEncoder.layout(metadata, tensors).header();
  }

  /** The tensors in file order: the order in which their bytes must be written. */
  @Override
  public List<TensorSpec> tensors() {
    return tensors;
  }

  /** The file this writer creates or replaces at {@link #commit()}. */
  public Path target() {
    return file.target();
  }

  /** The target's file name, the one data file this writes. */
  @Override
  public List<String> files() {
    return List.of(target().getFileName().toString());
  }

  /**
   * Appends {@code chunk} to the bytes of tensor {@code name}. A tensor's chunks must add up to
   * exactly its {@link TensorSpec#byteSize()}, and the tensors must be written in the order of
   * {@link #tensors()}: {@code name} must be the tensor whose bytes come next (an empty chunk is
   * accepted for any tensor that is complete or next).
   *
   * @throws IllegalArgumentException if no tensor has this name, or the chunk holds more bytes
   *     than remain of the tensor
   * @throws IllegalStateException if {@code name} is not the tensor whose bytes come next, an
   *     earlier write failed, or the writer is committed or closed
   * @throws IOException if writing fails; the writer is then unusable and {@link #close()}
   *     deletes the temporary file, leaving the target unchanged
   */
  @Override
  public void write(String name, MemorySegment chunk) throws IOException {
    Objects.requireNonNull(chunk, "chunk");
    int index = indexOf(name);
    if (chunk.byteSize() == 0 && state == State.COMPLETE) {
      return;
    }
    requireState(State.OPEN, "write");
    long begin = begins[index];
    long end = begins[index + 1];
    if (written < begin) {
      int next = nextIncomplete();
      throw new IllegalStateException(target() + ": tensor '" + name + "' comes after '"
          + tensors.get(next).name() + "', which still needs " + (begins[next + 1] - written)
          + " of its " + tensors.get(next).byteSize() + " bytes; write in the order of tensors()");
    }
    if (chunk.byteSize() == 0) {
      return;
    }
    if (written >= end) {
      throw new IllegalStateException(target() + ": tensor '" + name
          + "' is already complete (" + (end - begin) + " bytes)");
    }
    if (chunk.byteSize() > end - written) {
      throw new IllegalArgumentException(target() + ": a chunk of " + chunk.byteSize()
          + " bytes overflows tensor '" + name + "': " + (end - written) + " of its "
          + (end - begin) + " bytes remain");
    }
    try {
      output.append(chunk);
      written += chunk.byteSize();
      finishIfComplete();
    } catch (Throwable t) {
      state = State.FAILED;
      throw t;
    }
  }

  /**
   * Writes a whole tensor: its name, dtype and shape must match the declared spec, and none of
   * its bytes may have been written yet.
   *
   * @throws IllegalArgumentException if no tensor has this name, or its dtype or shape differ
   *     from the spec
   * @throws IllegalStateException as {@link #write(String, MemorySegment)}
   * @throws IOException as {@link #write(String, MemorySegment)}
   */
  @Override
  public void write(TensorView tensor) throws IOException {
    int index = indexOf(tensor.name());
    TensorSpec spec = tensors.get(index);
    if (spec.dtype() != tensor.dtype() || !Arrays.equals(spec.shape(), tensor.shape())) {
      throw new IllegalArgumentException(target() + ": tensor '" + tensor.name() + "' is "
          + tensor.dtype() + Arrays.toString(tensor.shape()) + ", declared as " + spec.dtype()
          + Arrays.toString(spec.shape()));
    }
    if (state == State.OPEN && written > begins[index] && written < begins[index + 1]) {
      throw new IllegalStateException(target() + ": tensor '" + tensor.name()
          + "' is partly written; write(TensorView) writes a whole tensor");
    }
    write(tensor.name(), tensor.segment());
  }

  /** Whether every byte of every tensor has been written, so that {@link #commit()} may run. */
  public boolean isComplete() {
    return state == State.COMPLETE || state == State.COMMITTED;
  }

  /**
   * Puts the file in place: the bytes are already forced to disk; renames the temporary file
   * over the target atomically, then forces the directory entry to disk where the platform
   * allows it.
   *
   * @throws IllegalStateException if a tensor is not completely written (the message names the
   *     first one), an earlier write failed, or the writer is closed
   * @throws IOException if the rename fails (the target is then unchanged) or the file system
   *     cannot rename atomically
   */
  @Override
  public void commit() throws IOException {
    if (state == State.OPEN) {
      int next = nextIncomplete();
      TensorSpec spec = tensors.get(next);
      throw new IllegalStateException(target() + ": cannot commit: tensor '" + spec.name()
          + "' has " + (written - begins[next]) + " of its " + spec.byteSize() + " bytes");
    }
    requireState(State.COMPLETE, "commit");
    try {
      file.commit();
    } catch (Throwable t) {
      state = State.FAILED;
      throw t;
    }
    state = State.COMMITTED;
  }

  /**
   * Ends the writer. Without a successful {@link #commit()} it deletes the temporary file, and
   * the target stays as it was. Idempotent.
   */
  @Override
  public void close() {
    state = State.CLOSED;
    file.close();
  }

  @Override
  public String toString() {
    return "SafeTensorsWriter[" + target() + ", " + state.name().toLowerCase(Locale.ROOT)
        + ", " + written + " of " + begins[tensors.size()] + " data bytes]";
  }

  private int indexOf(String name) {
    Integer index = indexOf.get(Objects.requireNonNull(name, "name"));
    if (index == null) {
      throw new IllegalArgumentException(target() + ": no tensor named '" + name
          + "' was declared");
    }
    return index;
  }

  private void requireState(State expected, String action) {
    if (state != expected) {
      String why = switch (state) {
        case FAILED -> "an earlier write or commit failed";
        case COMMITTED -> "the file is committed";
        case CLOSED -> "the writer is closed";
        case COMPLETE -> "every tensor is complete";
        case OPEN -> "tensors are incomplete";
      };
      throw new IllegalStateException(target() + ": cannot " + action + ": " + why);
    }
  }

  /** The first tensor with bytes still to write; only called while some remain. */
  private int nextIncomplete() {
    int i = 0;
    while (begins[i + 1] <= written) {
      i++;
    }
    return i;
  }

  /** Once the last byte is in: hands the file its tail, forces it to disk and closes it. */
  private void finishIfComplete() throws IOException {
    if (written == begins[tensors.size()]) {
      output.finish();
      file.seal();
      state = State.COMPLETE;
    }
  }
}
