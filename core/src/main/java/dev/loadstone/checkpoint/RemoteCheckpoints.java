package dev.loadstone.checkpoint;

import dev.loadstone.internal.RemoteStores;
import dev.loadstone.internal.UrlPath;
import dev.loadstone.remote.RemoteStore;
import dev.loadstone.safetensors.RemoteOptions;
import dev.loadstone.safetensors.SafeTensors;
import dev.loadstone.safetensors.SafeTensorsException.Reason;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalLong;

/**
 * Opens checkpoints at remote URLs ({@code http://}, {@code https://}, and the schemes of the
 * {@link dev.loadstone.remote.RemoteStoreProvider}s found): a file, an index and its
 * shards, or a directory (looked for as {@code model.safetensors}, then the index). Every file
 * is opened by its header alone ({@link SafeTensors#open(URI, RemoteOptions)}); the index is
 * read whole, up to {@link ShardIndex#MAX_INDEX_LENGTH} bytes.
 */
final class RemoteCheckpoints {
  private RemoteCheckpoints() {}

  static Checkpoint open(URI url, RemoteOptions options) throws IOException {
    String path = url.getRawPath() == null ? "" : url.getRawPath();
    if (path.endsWith(".safetensors")) {
      return new Checkpoint(null, List.of(SafeTensors.open(url, options)), OptionalLong.empty());
    }
    if (path.endsWith(".index.json")) {
      return sharded(url, options, readIndex(url, options));
    }
    URI directory = path.endsWith("/") ? url : withPath(url, path + "/");
    URI single = directory.resolve(Checkpoint.SINGLE_FILE_NAME);
    try {
      return new Checkpoint(null, List.of(SafeTensors.open(single, options)), OptionalLong.empty());
    } catch (NoSuchFileException e) {
      // no single file: the index, then
    }
    URI index = directory.resolve(Checkpoint.INDEX_FILE_NAME);
    byte[] bytes;
    try {
      bytes = readIndex(index, options);
    } catch (NoSuchFileException e) {
      throw new CheckpointException(Reason.NO_WEIGHTS, UrlPath.of(directory), null,
          "the " + (Checkpoint.isHttp(directory.toString()) ? "server" : "store") + " has neither "
              + Checkpoint.SINGLE_FILE_NAME + " nor " + Checkpoint.INDEX_FILE_NAME + " there ("
              + e.getReason() + " for both)");
    }
    return sharded(index, options, bytes);
  }

  private static byte[] readIndex(URI index, RemoteOptions options) throws IOException {
    try (RemoteStore store = RemoteStores.acquire(index, options)) {
      return store.readAll(index, ShardIndex.MAX_INDEX_LENGTH);
    }
  }

  private static Checkpoint sharded(URI index, RemoteOptions options, byte[] bytes) throws IOException {
    Path indexPath = UrlPath.of(index);
    ShardIndex.Parsed parsed = ShardIndex.parse(bytes, indexPath);
    return Checkpoint.sharded(indexPath, parsed, new Checkpoint.ShardOpener() {
      @Override
      public Path resolve(String tensor, String shardName) throws CheckpointException {
        String why = Checkpoint.unsafeShardName(shardName);
        if (why != null) {
          throw new CheckpointException(Reason.INVALID_SHARD_NAME, indexPath, tensor,
              "its shard name \"" + shardName + "\" " + why);
        }
        return UrlPath.of(index.resolve(encodePath(shardName)));
      }

      @Override
      public SafeTensors open(Path shard, String shardName, List<String> tensors) throws IOException {
        try {
          return SafeTensors.open(shard.toUri(), options);
        } catch (NoSuchFileException e) {
          throw Checkpoint.missingShard(indexPath, shard, shardName, tensors, e);
        }
      }
    });
  }

  /** A relative path's segments percent-encoded for a URL ({@code /} kept, a backslash encoded). */
  static String encodePath(String relative) {
    StringBuilder out = new StringBuilder();
    for (String segment : relative.split("/", -1)) {
      if (!out.isEmpty()) {
        out.append('/');
      }
      out.append(URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20"));
    }
    return out.toString();
  }

  private static URI withPath(URI url, String rawPath) {
    return URI.create(url.getScheme() + "://" + url.getRawAuthority() + rawPath
        + (url.getRawQuery() == null ? "" : "?" + url.getRawQuery()));
  }
}
