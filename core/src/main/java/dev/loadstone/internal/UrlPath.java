package dev.loadstone.internal;

import java.io.IOException;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.Objects;
import java.util.Optional;

/**
 * The {@link Path} of a remote file: what a checkpoint, its views, its errors and load reports
 * name a file by, so that a remote file is named everywhere a local one is, by its URL
 * ({@link #toString()}, {@link #toUri()}). It is no file of any file system: the
 * {@code java.nio.file.Files} methods refuse it ({@code ProviderMismatchException}), and path
 * arithmetic beyond naming (parent, file name, {@code startsWith}, {@code relativize}) is not
 * offered.
 *
 * <p>The path of an opened remote file also carries how to read it ({@link #remote()}).
 */
public final class UrlPath implements Path {
  private final URI uri;
  private final String text;
  private final RemoteFile remote;

  private UrlPath(URI uri, RemoteFile remote) {
    this.uri = uri;
    this.text = RemoteReads.describe(uri);
    this.remote = remote;
  }

  /** The path naming {@code uri}, for messages before the file is opened. */
  public static UrlPath of(URI uri) {
    return new UrlPath(Objects.requireNonNull(uri, "uri"), null);
  }

  /** The path of an opened remote file. */
  public static UrlPath of(RemoteFile remote) {
    return new UrlPath(remote.object().url(), remote);
  }

  /** How to read the file, once it is opened. */
  public Optional<RemoteFile> remote() {
    return Optional.ofNullable(remote);
  }

  /** The remote file behind {@code path}, if it is the path of an opened remote file. */
  public static Optional<RemoteFile> remoteOf(Path path) {
    return path instanceof UrlPath url ? url.remote() : Optional.empty();
  }

  @Override
  public FileSystem getFileSystem() {
    // None fits; this one refuses the path in every operation, which is what a remote file needs.
    return FileSystems.getDefault();
  }

  @Override
  public boolean isAbsolute() {
    return true;
  }

  @Override
  public Path getRoot() {
    return null;
  }

  /** The last segment of the URL's path, decoded, as a relative local path (a shard's name). */
  @Override
  public Path getFileName() {
    String path = uri.getRawPath() == null ? "" : uri.getRawPath();
    String last = path.substring(path.lastIndexOf('/') + 1);
    return last.isEmpty() ? null : Path.of(URLDecoder.decode(last, StandardCharsets.UTF_8));
  }

  @Override
  public Path getParent() {
    return null;
  }

  @Override
  public int getNameCount() {
    throw unsupported();
  }

  @Override
  public Path getName(int index) {
    throw unsupported();
  }

  @Override
  public Path subpath(int beginIndex, int endIndex) {
    throw unsupported();
  }

  @Override
  public boolean startsWith(Path other) {
    return other instanceof UrlPath url && url.equals(this);
  }

  @Override
  public boolean endsWith(Path other) {
    return other instanceof UrlPath url && url.equals(this);
  }

  @Override
  public Path normalize() {
    return this;
  }

  @Override
  public Path resolve(Path other) {
    throw unsupported();
  }

  @Override
  public Path relativize(Path other) {
    throw unsupported();
  }

  @Override
  public URI toUri() {
    return uri;
  }

  @Override
  public Path toAbsolutePath() {
    return this;
  }

  @Override
  public Path toRealPath(LinkOption... options) throws IOException {
    return this;
  }

  @Override
  public WatchKey register(WatchService watcher, WatchEvent.Kind<?>[] events, WatchEvent.Modifier... modifiers) {
    throw unsupported();
  }

  @Override
  public int compareTo(Path other) {
    return text.compareTo(other.toString());
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof UrlPath url && url.uri.equals(uri);
  }

  @Override
  public int hashCode() {
    return uri.hashCode();
  }

  /** The URL, without a query (which may hold a signature) or user information. */
  @Override
  public String toString() {
    return text;
  }

  private UnsupportedOperationException unsupported() {
    return new UnsupportedOperationException(text + " is a URL, not a file of this file system");
  }
}
