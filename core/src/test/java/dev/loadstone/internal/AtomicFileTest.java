package dev.loadstone.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The atomic-file protocol both writers rely on: the target is its old self or the whole new
 * file, and nothing but the target is left in its directory afterwards, whatever failed.
 */
class AtomicFileTest {
  private static final byte[] OLD = "old contents".getBytes(StandardCharsets.UTF_8);
  private static final byte[] NEW = "the whole new file".getBytes(StandardCharsets.UTF_8);

  @TempDir
  Path dir;

  private List<Path> listing() throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.sorted().toList();
    }
  }

  /** The directory holds the target alone, and the target holds {@code expected}. */
  private void assertOnly(Path target, byte[] expected) throws IOException {
    assertArrayEquals(expected, Files.readAllBytes(target));
    assertEquals(List.of(target), listing());
  }

  private Path oldTarget() throws IOException {
    Path target = dir.resolve("model.safetensors");
    Files.write(target, OLD);
    return target;
  }

  /** Appends {@code bytes} with the thread's interrupt flag set: the channel closes, a real I/O error. */
  private static void failAppend(AtomicFile file, byte[] bytes) {
    Thread.currentThread().interrupt();
    try {
      assertThrows(ClosedByInterruptException.class, () -> file.append(ByteBuffer.wrap(bytes)));
    } finally {
      Thread.interrupted();
    }
  }

  @Test
  void theBytesWaitInAHiddenTemporaryFileBesideTheTargetUntilCommit() throws IOException {
    Path target = dir.resolve("model.safetensors");
    try (AtomicFile file = AtomicFile.create(target)) {
      file.append(ByteBuffer.wrap(NEW));
      assertFalse(Files.exists(target));
      assertEquals(List.of(file.temporary()), listing());
      assertTrue(file.temporary().getFileName().toString().startsWith(".model.safetensors.tmp-"),
          file.temporary().toString());

      file.commit();
    }
    assertOnly(target, NEW);
  }

  @Test
  void commitReplacesAnExistingTargetWhole() throws IOException {
    Path target = oldTarget();
    try (AtomicFile file = AtomicFile.create(target)) {
      file.append(ByteBuffer.wrap(NEW));
      assertArrayEquals(OLD, Files.readAllBytes(target), "untouched before the commit");
      file.commit();
    }
    assertOnly(target, NEW);
  }

  @Test
  void aFailureMidWriteLeavesNoTemporaryFileAndNoTarget() throws IOException {
    Path target = dir.resolve("model.safetensors");
    try (AtomicFile file = AtomicFile.create(target)) {
      file.append(ByteBuffer.wrap(NEW));
      failAppend(file, NEW);
      IllegalStateException e = assertThrows(IllegalStateException.class, file::commit);
      assertTrue(e.getMessage().contains(target.toString())
          && e.getMessage().contains("an earlier write, seal or commit failed"), e.getMessage());
    }
    assertEquals(List.of(), listing());
  }

  @Test
  void aFailureMidWriteLeavesAnExistingTargetIntact() throws IOException {
    Path target = oldTarget();
    try (AtomicFile file = AtomicFile.create(target)) {
      file.append(ByteBuffer.wrap(NEW));
      failAppend(file, NEW);
    }
    assertOnly(target, OLD);
  }

  @Test
  void closeWithoutCommitDeletesTheTemporaryFileAndKeepsTheTarget() throws IOException {
    Path target = oldTarget();
    AtomicFile file = AtomicFile.create(target);
    file.append(ByteBuffer.wrap(NEW));
    file.seal();
    file.close();
    file.close();

    assertOnly(target, OLD);
    assertThrows(IllegalStateException.class, () -> file.append(ByteBuffer.wrap(NEW)));
    assertThrows(IllegalStateException.class, file::commit);
  }

  @Test
  void aFailedRenameLeavesTheTargetAsItWasAndNoTemporaryFile() throws IOException {
    Path target = dir.resolve("taken");
    Files.createDirectory(target);
    Files.write(target.resolve("keep.txt"), OLD);
    try (AtomicFile file = AtomicFile.create(target)) {
      file.append(ByteBuffer.wrap(NEW));
      assertThrows(IOException.class, file::commit);
    }
    assertArrayEquals(OLD, Files.readAllBytes(target.resolve("keep.txt")));
    assertEquals(List.of(target), listing());
  }

  @Test
  void aSealedFileTakesNoMoreBytesAndCommitsWhatItHas() throws IOException {
    Path target = dir.resolve("sealed.bin");
    try (AtomicFile file = AtomicFile.create(target)) {
      file.append(ByteBuffer.wrap(NEW));
      file.seal();
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> file.append(ByteBuffer.wrap(OLD)));
      assertTrue(e.getMessage().contains(target.toString()), e.getMessage());
      file.commit();
      assertThrows(IllegalStateException.class, file::commit);
    }
    assertArrayEquals(NEW, Files.readAllBytes(target));
  }

  @Test
  void twoFilesInFlightForOneTargetUseDistinctTemporaryFiles() throws IOException {
    Path target = dir.resolve("model.safetensors");
    try (AtomicFile first = AtomicFile.create(target);
        AtomicFile second = AtomicFile.create(target)) {
      assertNotEquals(first.temporary(), second.temporary());
      second.append(ByteBuffer.wrap(NEW));
      second.commit();
    }
    assertOnly(target, NEW);
  }

  @Test
  void writeInOneCallReplacesTheTargetOrLeavesItAsItWas() throws IOException {
    Path target = oldTarget();
    AtomicFile.write(target, NEW);
    assertOnly(target, NEW);

    Path taken = dir.resolve("taken");
    Files.createDirectory(taken);
    Files.write(taken.resolve("keep.txt"), OLD);
    assertThrows(IOException.class, () -> AtomicFile.write(taken, NEW));
    assertArrayEquals(OLD, Files.readAllBytes(taken.resolve("keep.txt")));
    assertEquals(List.of(target, taken), listing());
  }

  @Test
  void aPathThatNamesNoFileIsRefused() {
    Path root = dir.getRoot();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> AtomicFile.create(root));
    assertTrue(e.getMessage().contains("not a file path"), e.getMessage());
  }
}
