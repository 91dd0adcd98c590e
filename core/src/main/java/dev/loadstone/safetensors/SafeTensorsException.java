package dev.loadstone.safetensors;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;

/**
 * A checkpoint breaks a rule: of the safetensors file format (its header, a tensor's entry, the
 * data's layout) or, as the subclass {@link dev.loadstone.checkpoint.CheckpointException}, of a
 * model directory (its index and shards). Carries the rule that failed as a {@link Reason}, the
 * file, and the tensor's name where the rule concerns one tensor; the message holds all of them
 * and what was found, on one line.
 *
 * <pre>{@code
 * try (Checkpoint model = Checkpoint.open(dir)) {
 *   ...
 * } catch (SafeTensorsException e) {       // a broken file or a broken directory
 *   System.err.println(e.getMessage());    // "FILE: REASON: tensor 'NAME': what was found (rule: ...)"
 *   e.reason(); e.file(); e.tensor();      // the same, for programs
 * }
 * }</pre>
 */
public class SafeTensorsException extends IOException {
  private static final long serialVersionUID = 1L;

  /**
   * The rules of the format and of model directories, one code each. The codes are stable: a
   * program may match on them, and the command line prints them.
   */
  public enum Reason {
    // The file format.
    /** The file is shorter than the 8-byte header length. */
    FILE_TOO_SMALL("a file starts with an 8-byte little-endian header length"),
    /** The header length exceeds the 100,000,000-byte cap. */
    HEADER_TOO_LARGE("the header is at most 100,000,000 bytes long"),
    /** The header length points past the end of the file. */
    HEADER_OUT_OF_BOUNDS("the header lies within the file"),
    /** The header bytes are not valid UTF-8. */
    HEADER_NOT_UTF8("the header is UTF-8 text"),
    /** The header is not well-formed JSON (or has content after the JSON value). */
    HEADER_INVALID_JSON("the header is one well-formed JSON value"),
    /** The header's JSON exceeds a parser limit (nesting depth, number or name length, size). */
    HEADER_LIMIT_EXCEEDED("the header's JSON stays within the parser's limits"),
    /** The header's JSON value is not an object. */
    HEADER_NOT_OBJECT("the header is a JSON object"),
    /** {@code __metadata__} is not a flat map of strings to strings. */
    INVALID_METADATA("__metadata__ is an object whose values are all strings"),
    /** A tensor name appears twice: in one header, twice in an index, or in two shards. */
    DUPLICATE_TENSOR("each tensor name appears once (in a header; in an index and across its shards)"),
    /** A tensor entry is not an object, or one of its fields has the wrong JSON type. */
    INVALID_TENSOR_ENTRY("a tensor entry is an object with a string dtype and array shape and data_offsets"),
    /** A tensor entry lacks {@code dtype}, {@code shape} or {@code data_offsets}. */
    MISSING_FIELD("a tensor entry has the fields dtype, shape and data_offsets"),
    /** A tensor entry names one of its fields twice. */
    DUPLICATE_FIELD("a tensor entry names each field once"),
    /** The dtype is not one of the format's names (case-sensitive). */
    UNKNOWN_DTYPE("dtype is one of the format's dtype names"),
    /** A dimension is negative, fractional or too large. */
    INVALID_DIMENSION("each dimension is a non-negative integer that fits in 63 bits"),
    /** {@code data_offsets} is not a pair of unsigned integers. */
    INVALID_OFFSETS("data_offsets is a pair of non-negative integers"),
    /**
     * The number of elements times the bits per element overflows 64 bits. Zero dimensions do not
     * count: the other dimensions' product must fit too, as views compute strides from it.
     */
    SIZE_OVERFLOW("the tensor's size in bits, leaving out zero dimensions, fits in 63 bits"),
    /** The tensor's bits are not a whole number of bytes. */
    MISALIGNED_BITS("the tensor's size in bits is a multiple of 8"),
    /** The byte range's length is not elements × element size. */
    SIZE_MISMATCH("end - begin equals the number of elements times the element size"),
    /** A tensor's end offset lies before its begin offset. */
    END_BEFORE_BEGIN("a tensor's end offset is not before its begin offset"),
    /** The first tensor (by offset) does not start at 0. */
    FIRST_OFFSET_NOT_ZERO("the first tensor's data starts at offset 0"),
    /** Bytes between two tensors belong to neither. */
    OFFSET_GAP("each tensor starts where the previous one ends (no gaps)"),
    /** Two tensors share bytes. */
    OFFSET_OVERLAP("each tensor starts where the previous one ends (no overlaps)"),
    /** The file ends before the last tensor's data does. */
    DATA_TRUNCATED("the file holds all of the tensors' data"),
    /** The file goes on after the last tensor's data. */
    TRAILING_BYTES("the file ends where the last tensor's data ends"),

    // Model directories (see dev.loadstone.checkpoint.Checkpoint).
    /** The directory has neither {@code model.safetensors} nor {@code model.safetensors.index.json}. */
    NO_WEIGHTS("a checkpoint directory holds model.safetensors or model.safetensors.index.json"),
    /** The index is not well-formed JSON, or not of the expected shape. */
    INVALID_INDEX("the index is a JSON object whose weight_map maps tensor names to shard file"
        + " names, and whose metadata.total_size, if present, is a non-negative integer"),
    /** A shard name is empty, absolute, contains {@code ..} or otherwise leaves the directory. */
    INVALID_SHARD_NAME("a shard name is a relative path that stays inside the index's directory"),
    /** A shard named by the index does not exist. */
    MISSING_SHARD("every shard the index names exists"),
    /** A tensor listed in the index is not in the shard the index names. */
    TENSOR_MISSING_FROM_SHARD("each tensor the index lists is in the shard it names"),
    /** A shard holds a tensor that the index does not list. */
    TENSOR_NOT_IN_INDEX("the index lists every tensor of every shard"),
    /** {@code metadata.total_size} differs from the total bytes of the tensors. */
    TOTAL_SIZE_MISMATCH("metadata.total_size equals the total bytes of the tensors' data"),

    // Quantized checkpoints (see dev.loadstone.quantization.Quantization).
    /** {@code config.json} is not JSON, or its {@code quantization_config} is not of the expected shape. */
    INVALID_QUANTIZATION_CONFIG("config.json is a JSON object; its quantization_config, if present, is an"
        + " object whose fields have the types and values its quant_method defines"),
    /** The quantization scheme is one Loadstone does not dequantize. */
    UNSUPPORTED_QUANTIZATION("the quantization scheme is fp8 (blocks), compressed-tensors (float-, int-,"
        + " naive- or pack-quantized), gptq (gptq or gptq_v2 format, 2, 4 or 8 bits) or awq (gemm, 4 bits)"),
    /** A quantized weight lacks a tensor its scheme needs (a scale, zero points, a shape). */
    MISSING_QUANTIZATION_COMPANION("a quantized weight comes with every companion tensor its scheme needs"),
    /** A quantized weight's tensors have dtypes or shapes that do not fit each other or the scheme. */
    INCONSISTENT_QUANTIZED_TENSORS("a quantized weight's tensors have the dtypes and shapes its scheme"
        + " implies for its logical shape"),
    /** A quantized weight's data holds a value its scheme rules out (a group index, a zero point). */
    INVALID_QUANTIZED_VALUE("group indices name existing groups, and a gptq (v1) zero point is stored"
        + " as at most 2^bits - 2"),
    // Model ids in the Hugging Face cache (see dev.loadstone.checkpoint.HubCache).
    /** No folder {@code models--ORG--NAME} for the model id in the cache. */
    MODEL_NOT_CACHED("a model id names a folder models--ORG--NAME in the Hugging Face cache"),
    /** The revision is neither a ref of the cached repository nor a 40-hex commit, or its ref is not one. */
    REVISION_NOT_CACHED("a revision is a ref in the repository's refs/ folder holding a 40-hex commit, or a"
        + " 40-hex commit"),
    /** The revision's commit has no {@code snapshots/COMMIT} folder. */
    SNAPSHOT_MISSING("the revision's commit has a folder snapshots/COMMIT"),
    /** A snapshot file is a symbolic link to nothing. */
    DANGLING_LINK("every snapshot file that is a symbolic link leads to an existing blob"),
    /** A file the checkpoint needs is a partial download ({@code .incomplete}). */
    INCOMPLETE_DOWNLOAD("every file the checkpoint needs is a finished download, not a .incomplete blob"),

    // Object stores (see dev.loadstone.remote; the loadstone-s3 module).
    /** The bucket an {@code s3://} location names does not exist (or cannot be seen with these credentials). */
    MISSING_BUCKET("a remote location names a bucket that exists"),

    // Integrity (see dev.loadstone.checkpoint.FileHashes).
    /** A file's SHA-256 differs from the one expected of it (given, the cache's blob name, the hub's). */
    SHA256_MISMATCH("a file's SHA-256 equals the one expected of it");

    private final String rule;

    Reason(String rule) {
      this.rule = rule;
    }

    /** The rule, as a sentence fragment: what a valid file or directory does. */
    public String rule() {
      return rule;
    }
  }

  private final Reason reason;
  private final transient Path file;
  private final String tensor;
  private final String detail;

  /**
   * Creates an exception for a broken rule.
   *
   * @param reason the rule that failed
   * @param file the file, or {@code null} when reading from memory
   * @param tensor the tensor concerned, or {@code null}
   * @param detail what was found, for the message
   */
  public SafeTensorsException(Reason reason, Path file, String tensor, String detail) {
    super(message(reason, file, tensor, detail));
    this.reason = Objects.requireNonNull(reason, "reason");
    this.file = file;
    this.tensor = tensor;
    this.detail = Objects.requireNonNull(detail, "detail");
  }

  /**
   * Creates an exception for a broken rule, caused by another failure (a read error, say).
   *
   * @see #SafeTensorsException(Reason, Path, String, String)
   */
  public SafeTensorsException(Reason reason, Path file, String tensor, String detail, Throwable cause) {
    super(message(reason, file, tensor, detail), cause);
    this.reason = Objects.requireNonNull(reason, "reason");
    this.file = file;
    this.tensor = tensor;
    this.detail = Objects.requireNonNull(detail, "detail");
  }

  /** The rule that failed. */
  public Reason reason() {
    return reason;
  }

  /**
   * The file that broke it, when the data came from a file; for a remote file, a path whose
   * {@code toString()} and {@code toUri()} give its URL.
   */
  public Optional<Path> file() {
    return Optional.ofNullable(file);
  }

  /** The tensor that broke it, when the rule concerns one tensor. */
  public Optional<String> tensor() {
    return Optional.ofNullable(tensor);
  }

  /** What was found, as the message gives it (without file, reason, tensor and rule). */
  public String detail() {
    return detail;
  }

  private static String message(Reason reason, Path file, String tensor, String detail) {
    StringBuilder message = new StringBuilder();
    message.append(file == null ? "<memory>" : file.toString()).append(": ").append(reason);
    if (tensor != null) {
      message.append(": tensor '").append(tensor).append('\'');
    }
    message.append(": ").append(detail).append(" (rule: ").append(reason.rule).append(')');
    return message.toString();
  }
}
