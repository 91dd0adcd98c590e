package dev.loadstone.checkpoint;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.loadstone.engine.Parallel;
import dev.loadstone.internal.AtomicFile;
import dev.loadstone.internal.HttpRanges;
import dev.loadstone.internal.HttpSettings;
import dev.loadstone.internal.RemoteReadException;
import dev.loadstone.internal.Sha256;
import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;

/**
 * Downloads a model from the Hugging Face hub into the local cache, in the layout
 * {@code huggingface_hub} writes (so that its tools, {@link HubCache} and
 * {@link Checkpoint#open(String)} find it):
 *
 * <ol>
 *   <li>{@code GET {endpoint}/api/models/{id}/revision/{revision}}: the commit ({@code sha}) and
 *       the repository's files ({@code siblings[].rfilename}), of which those matching the
 *       include patterns are pulled ({@code fnmatch} patterns, as {@code allow_patterns}:
 *       {@code *} also matches {@code /});
 *   <li>per file, {@code HEAD {endpoint}/{id}/resolve/{commit}/{file}}, redirects to other hosts
 *       not followed: {@code X-Repo-Commit}, the blob's name from {@code X-Linked-Etag} (else
 *       {@code ETag}; quotes and {@code W/} removed: the SHA-256 of an LFS file, the git blob
 *       id of another), and {@code X-Linked-Size};
 *   <li>a file whose {@code snapshots/{commit}/{file}} exists, or whose blob
 *       {@code blobs/{etag}} exists, is not downloaded again (a missing link to an existing blob
 *       is made);
 *   <li>otherwise its bytes go to {@code blobs/{etag}.incomplete} by range requests (through
 *       the hub's redirect to its CDN, the token never sent there), resuming after the bytes an
 *       interrupted pull left in it; an LFS file's SHA-256 is computed as the bytes arrive and
 *       checked against its etag: a mismatch deletes the partial blob and fails naming the
 *       file, the expected and the actual hash ({@code SHA256_MISMATCH}), and no link is made;
 *       a finished blob is renamed into place, then linked from the snapshot by a relative
 *       symbolic link;
 *   <li>{@code refs/{revision}} gets the commit (before the files are fetched), when the
 *       revision is not the commit itself.
 * </ol>
 *
 * <p>Files download in parallel, with {@link RemoteOptions#concurrency()} range requests of
 * {@link RemoteOptions#rangeBytes()} in flight in all (several per file when there are fewer
 * files than that), each file's ranges written and hashed in order. One pull at a time per
 * downloader. Two pulls of the same model at once
 * are not coordinated (unlike {@code huggingface_hub}'s lock files): do not run them.
 */
public final class HubDownloader {
  /** What is pulled when no include pattern is given: the weights, the configs, the tokenizer. */
  public static final List<String> DEFAULT_INCLUDE = List.of(
      "*.safetensors", "*.json", "tokenizer.model", "*.tiktoken", "merges.txt", "vocab.txt");
  /** The longest API answer read. */
  private static final long MAX_API_BYTES = 64L << 20;
  private static final JsonFactory JSON = new JsonFactory();
  private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

  /** Hears how a pull goes, from the threads that download (so: thread-safe). */
  public interface Listener {
    /** A file is being downloaded: {@code done} of {@code total} bytes are in (-1: unknown total). */
    default void progress(String file, long done, long total) {}

    /** A file is in the snapshot: downloaded now ({@code downloaded}), or found in the cache. */
    default void finished(String file, boolean downloaded, long bytes) {}
  }

  /**
   * What a pull did.
   *
   * @param modelId the model
   * @param revision the revision asked for
   * @param commit the commit it named
   * @param snapshot the snapshot folder, {@code snapshots/{commit}}
   * @param downloaded the files downloaded (or finished) now
   * @param cached the files that were in the cache already
   * @param bytesDownloaded the bytes received for them (a resumed file counts only the rest)
   */
  public record Result(String modelId, String revision, String commit, Path snapshot, List<String> downloaded,
      List<String> cached, long bytesDownloaded) {
    /** Copies the lists. */
    public Result {
      downloaded = List.copyOf(downloaded);
      cached = List.copyOf(cached);
    }
  }

  private final HubCache cache;
  private final RemoteOptions remote;
  /** The threads that read ranges, during a pull. */
  private ExecutorService rangeReaders;
  /** Ranges of one file in flight at once, during a pull. */
  private int rangesPerFile = 1;

  /**
   * A downloader into {@code cache} from {@link RemoteOptions#endpoint()}, with
   * {@code remote}'s token (sent to the endpoint's origin only), timeouts and retries.
   */
  public HubDownloader(HubCache cache, RemoteOptions remote) {
    this.cache = Objects.requireNonNull(cache, "cache");
    this.remote = Objects.requireNonNull(remote, "remote");
  }

  /**
   * Pulls the files of {@code modelId} at {@code revision} that match one of {@code include}.
   *
   * @throws CheckpointException ({@code SHA256_MISMATCH}) if a downloaded LFS file's SHA-256 is
   *     not its etag
   * @throws NoSuchFileException naming the URL if the hub does not know the model or revision
   * @throws IOException naming the URL if a download fails (what arrived stays in the
   *     {@code .incomplete} blob, for the next pull to resume)
   * @throws IllegalArgumentException if {@code modelId} is not of the form {@code ORG/NAME}
   */
  public synchronized Result pull(String modelId, String revision, List<String> include, Listener listener)
      throws IOException {
    if (!HubCache.isModelId(modelId) || modelId.contains("@")) {
      throw new IllegalArgumentException("not a model id (ORG/NAME): '" + modelId + "'");
    }
    List<Pattern> patterns = include.stream().map(HubDownloader::fnmatch).toList();
    HttpRanges client = HttpRanges.acquire(new HttpSettings(remote.concurrency(), remote.rangeBytes(),
        remote.connectTimeout(), remote.stallTimeout(), remote.retries(), remote.endpoint(), remote.token()));
    try {
      String endpoint = remote.endpoint().toString().replaceAll("/+$", "");
      URI api = URI.create(endpoint + "/api/models/" + modelId + "/revision/" + encode(revision));
      byte[] answer;
      try {
        answer = client.readAll(api, MAX_API_BYTES);
      } catch (NoSuchFileException e) {
        NoSuchFileException missing = new NoSuchFileException(api.toString(), null,
            "the hub knows no model " + modelId + " at revision " + revision
                + " (" + e.getReason() + "; a private or gated model needs HF_TOKEN)");
        missing.initCause(e);
        throw missing;
      }
      RepoInfo info = parse(answer, api);
      List<String> files = info.files().stream()
          .filter(name -> patterns.stream().anyMatch(p -> p.matcher(name).matches())).toList();
      Path repository = cache.root().resolve("models--" + modelId.replace("/", "--"));
      Path snapshot = repository.resolve("snapshots").resolve(info.commit());
      Files.createDirectories(repository.resolve("blobs"));
      Files.createDirectories(snapshot);
      // The ref first, as huggingface_hub writes it: a pull cut short leaves a revision whose
      // snapshot HubCache reports as an incomplete download.
      if (!revision.equals(info.commit())) {
        Path ref = repository.resolve("refs").resolve(revision).normalize();
        if (!ref.startsWith(repository.resolve("refs"))) {
          throw new IllegalArgumentException("'" + revision + "' is not a valid revision name");
        }
        Files.createDirectories(ref.getParent());
        AtomicFile.write(ref, info.commit().getBytes(StandardCharsets.US_ASCII));
      }
      List<String> downloaded = java.util.Collections.synchronizedList(new ArrayList<>());
      List<String> cached = java.util.Collections.synchronizedList(new ArrayList<>());
      AtomicLong bytes = new AtomicLong();
      ConcurrentHashMap<String, Object> blobLocks = new ConcurrentHashMap<>();
      // concurrency() ranges in flight in all: spread over the files, several per file when
      // there are fewer files than that.
      rangesPerFile = Math.max(1, remote.concurrency() / Math.max(1, Math.min(remote.concurrency(), files.size())));
      rangeReaders = Executors.newFixedThreadPool(remote.concurrency(), runnable -> {
        Thread thread = new Thread(runnable, "loadstone-pull");
        thread.setDaemon(true);
        return thread;
      });
      try {
        Parallel.forEach(files, remote.concurrency(), UnaryOperator.identity(), file -> {
          try {
            URI url = URI.create(endpoint + "/" + modelId + "/resolve/" + info.commit() + "/"
                + RemoteCheckpoints.encodePath(file));
            long received = pullFile(client, url, repository, snapshot, file, blobLocks, listener);
            (received < 0 ? cached : downloaded).add(file);
            bytes.addAndGet(Math.max(0, received));
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        });
      } catch (UncheckedIOException e) {
        throw e.getCause();
      } finally {
        rangeReaders.shutdownNow();
      }
      List<String> sortedDownloaded = new ArrayList<>(downloaded);
      List<String> sortedCached = new ArrayList<>(cached);
      sortedDownloaded.sort(null);
      sortedCached.sort(null);
      return new Result(modelId, revision, info.commit(), snapshot, sortedDownloaded, sortedCached, bytes.get());
    } finally {
      client.release();
    }
  }

  /** The commit and files of the API's answer. */
  private record RepoInfo(String commit, List<String> files) {}

  private static RepoInfo parse(byte[] answer, URI api) throws IOException {
    String commit = null;
    List<String> files = new ArrayList<>();
    try (JsonParser json = JSON.createParser(answer)) {
      if (json.nextToken() != JsonToken.START_OBJECT) {
        throw new IOException(api + ": the answer is not a JSON object");
      }
      while (json.nextToken() == JsonToken.FIELD_NAME) {
        String field = json.currentName();
        JsonToken value = json.nextToken();
        if (field.equals("sha") && value == JsonToken.VALUE_STRING) {
          commit = json.getText();
        } else if (field.equals("siblings") && value == JsonToken.START_ARRAY) {
          while (json.nextToken() == JsonToken.START_OBJECT) {
            while (json.nextToken() == JsonToken.FIELD_NAME) {
              String name = json.currentName();
              JsonToken v = json.nextToken();
              if (name.equals("rfilename") && v == JsonToken.VALUE_STRING) {
                files.add(json.getText());
              } else {
                json.skipChildren();
              }
            }
          }
        } else {
          json.skipChildren();
        }
      }
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException(api + ": the answer is not valid JSON: " + e.getOriginalMessage(), e);
    }
    if (commit == null || !COMMIT.matcher(commit).matches()) {
      throw new IOException(api + ": the answer names no 40-hex commit (\"sha\")");
    }
    for (String file : files) {
      String why = Checkpoint.unsafeShardName(file);
      if (why != null) {
        throw new IOException(api + ": the file name \"" + file + "\" " + why);
      }
    }
    return new RepoInfo(commit, files);
  }

  /**
   * Puts one file in the snapshot; returns the bytes downloaded for it, or -1 if it was cached.
   */
  private long pullFile(HttpRanges client, URI url, Path repository, Path snapshot, String file,
      ConcurrentHashMap<String, Object> blobLocks, Listener listener) throws IOException {
    Path pointer = snapshot.resolve(file);
    if (Files.exists(pointer)) {
      listener.finished(file, false, Files.size(pointer));
      return -1;
    }
    HttpRanges.Head head = client.head(url);
    String etag = head.header("X-Linked-Etag").or(() -> head.header("ETag")).map(HubDownloader::normalizeEtag)
        .orElseThrow(() -> new IOException(url + ": the hub sent no ETag for " + file));
    if (etag.isEmpty() || etag.contains("/") || etag.contains("\\") || etag.startsWith(".")) {
      throw new IOException(url + ": the ETag '" + etag + "' cannot name a blob");
    }
    long size = head.header("X-Linked-Size").or(() -> head.header("Content-Length")).map(HubDownloader::parseSize)
        .orElse(-1L);
    Path blob = repository.resolve("blobs").resolve(etag);
    long received;
    synchronized (blobLocks.computeIfAbsent(etag, e -> new Object())) {
      if (Files.exists(blob)) {
        received = -1;
      } else {
        received = download(client, url, blob, file, etag, size, listener);
      }
    }
    Files.createDirectories(pointer.getParent());
    Files.deleteIfExists(pointer);   // a dangling link of an earlier pull
    Files.createSymbolicLink(pointer, pointer.getParent().relativize(blob));
    listener.finished(file, received >= 0, Files.size(blob));
    return received;
  }

  /** Downloads a blob by ranges, resuming its {@code .incomplete} file; returns the bytes received. */
  private long download(HttpRanges client, URI url, Path blob, String file, String etag, long size, Listener listener)
      throws IOException {
    Path partial = blob.resolveSibling(etag + ".incomplete");
    Sha256 sha = new Sha256();
    byte[] buffer = new byte[(int) remote.rangeBytes()];
    long have = 0;
    if (Files.exists(partial, LinkOption.NOFOLLOW_LINKS)) {
      have = Files.size(partial);
      if (size >= 0 && have > size) {
        Files.delete(partial);
        have = 0;
      }
    }
    long received = 0;
    try (FileChannel out = FileChannel.open(partial, StandardOpenOption.CREATE, StandardOpenOption.READ,
        StandardOpenOption.WRITE)) {
      out.truncate(have);
      // The bytes an earlier pull left: hashed again, not downloaded again.
      for (long done = 0; done < have; ) {
        int n = out.read(ByteBuffer.wrap(buffer, 0, (int) Math.min(buffer.length, have - done)), done);
        sha.update(buffer, 0, n);
        done += n;
      }
      long total = size;
      if (size < 0 || have < size) {
        HttpRanges.Start start;
        try {
          start = client.readStart(url, have, MemorySegment.ofArray(buffer));
        } catch (RemoteReadException e) {
          if (!e.emptyObject()) {
            throw e;
          }
          start = null;   // nothing after byte `have`: the partial blob is whole
        }
        if (start != null) {
          dev.loadstone.remote.RemoteObject object = start.object();
          total = object.size();
          if (size >= 0 && total != size) {
            throw new IOException(url + ": " + file + " has " + total + " bytes, but the hub announced " + size);
          }
          received += write(out, have, buffer, start.received(), sha);
          have += start.received();
          listener.progress(file, have, total);
          // The next ranges are read in parallel and written (and hashed) in order, so that the
          // partial blob only ever holds a whole prefix of the file.
          java.util.ArrayDeque<CompletableFuture<byte[]>> pending = new java.util.ArrayDeque<>();
          long next = have;
          try {
            while (have < total) {
              while (pending.size() < rangesPerFile && next < total) {
                long from = next;
                int n = (int) Math.min(buffer.length, total - from);
                pending.add(CompletableFuture.supplyAsync(() -> {
                  byte[] bytes = new byte[n];
                  try {
                    client.read(object, from, MemorySegment.ofArray(bytes), file);
                  } catch (IOException e) {
                    throw new UncheckedIOException(e);
                  }
                  return bytes;
                }, rangeReaders));
                next += n;
              }
              byte[] range = await(pending.poll());
              received += write(out, have, range, range.length, sha);
              have += range.length;
              listener.progress(file, have, total);
            }
          } finally {
            pending.forEach(f -> f.cancel(false));
          }
        } else {
          total = have;
        }
      }
      out.force(true);
    }
    java.util.Optional<String> expected = Sha256.parseHex(etag);
    String actual = sha.finish();
    if (expected.isPresent() && !expected.get().equals(actual)) {
      Files.deleteIfExists(partial);
      throw new CheckpointException(Reason.SHA256_MISMATCH, blob, null, file + " downloaded from " + url
          + " has SHA-256 " + actual + ", expected " + expected.get() + " (the hub's X-Linked-Etag); the partial"
          + " blob was deleted");
    }
    Files.move(partial, blob, StandardCopyOption.ATOMIC_MOVE);
    return received;
  }

  /** The bytes of a range read, or its failure as it was thrown. */
  private static byte[] await(CompletableFuture<byte[]> range) throws IOException {
    try {
      return range.join();
    } catch (java.util.concurrent.CompletionException e) {
      if (e.getCause() instanceof UncheckedIOException io) {
        throw io.getCause();
      }
      if (e.getCause() instanceof RuntimeException runtime) {
        throw runtime;
      }
      throw e;
    }
  }

  private static int write(FileChannel out, long position, byte[] buffer, int length, Sha256 sha) throws IOException {
    ByteBuffer bytes = ByteBuffer.wrap(buffer, 0, length);
    while (bytes.hasRemaining()) {
      out.write(bytes, position + bytes.position());
    }
    sha.update(buffer, 0, length);
    return length;
  }

  private static long parseSize(String value) {
    try {
      return Long.parseLong(value.strip());
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /** An ETag as {@code huggingface_hub} names blobs by it: without {@code W/} and quotes. */
  static String normalizeEtag(String etag) {
    String value = etag.strip();
    if (value.startsWith("W/")) {
      value = value.substring(2);
    }
    if (value.length() >= 2 && value.startsWith("\"") && value.endsWith("\"")) {
      value = value.substring(1, value.length() - 1);
    }
    return value;
  }

  /** A revision as one URL path segment ({@code refs/pr/1} included). */
  private static String encode(String revision) {
    return URLEncoder.encode(revision, StandardCharsets.UTF_8).replace("+", "%20");
  }

  /**
   * An {@code fnmatch} pattern as a regular expression: {@code *} any characters ({@code /}
   * included), {@code ?} one, {@code [...]} a class ({@code [!...]} its complement); a pattern
   * ending in {@code /} matches everything under it.
   */
  static Pattern fnmatch(String glob) {
    String pattern = glob.endsWith("/") ? glob + "*" : glob;
    StringBuilder regex = new StringBuilder();
    for (int i = 0; i < pattern.length(); i++) {
      char c = pattern.charAt(i);
      if (c == '*') {
        regex.append(".*");
      } else if (c == '?') {
        regex.append('.');
      } else if (c == '[' && pattern.indexOf(']', i + 2) > 0) {
        int end = pattern.indexOf(']', i + 2);
        String body = pattern.substring(i + 1, end).replace("\\", "\\\\").replace("[", "\\[");
        regex.append('[').append(body.startsWith("!") ? "^" + body.substring(1) : body).append(']');
        i = end;
      } else {
        regex.append(Pattern.quote(String.valueOf(c)));
      }
    }
    return Pattern.compile(regex.toString(), Pattern.DOTALL);
  }
}
