package dev.loadstone.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** What {@code loadstone pull} takes: an id, an id with a revision, or a hub URL. (The download is tested in core.) */
class PullCommandTest {

  @Test
  void anIdWithOrWithoutARevision() throws UsageException {
    assertEquals(new PullCommand.Target("org/name", "main", Optional.empty()),
        PullCommand.target("org/name", Optional.empty()));
    assertEquals(new PullCommand.Target("org/name", "v1", Optional.empty()),
        PullCommand.target("org/name@v1", Optional.empty()));
    assertEquals(new PullCommand.Target("org/name", "refs/pr/1", Optional.empty()),
        PullCommand.target("org/name", Optional.of("refs/pr/1")));
  }

  @Test
  void aHubUrlNamesTheEndpointAndPerhapsTheRevision() throws UsageException {
    assertEquals(new PullCommand.Target("org/name", "main", Optional.of(URI.create("https://huggingface.co"))),
        PullCommand.target("https://huggingface.co/org/name", Optional.empty()));
    assertEquals(new PullCommand.Target("org/name", "v2", Optional.of(URI.create("http://127.0.0.1:8080"))),
        PullCommand.target("http://127.0.0.1:8080/org/name/tree/v2", Optional.empty()));
    assertEquals(new PullCommand.Target("org/name", "v2", Optional.of(URI.create("http://127.0.0.1:8080"))),
        PullCommand.target("http://127.0.0.1:8080/org/name/resolve/v2/", Optional.empty()));
  }

  @Test
  void badArgumentsAreUsageErrors() {
    assertTrue(assertThrows(UsageException.class, () -> PullCommand.target("name-only", Optional.empty()))
        .getMessage().contains("is not a model id"));
    assertTrue(assertThrows(UsageException.class, () -> PullCommand.target("org/name@v1", Optional.of("v2")))
        .getMessage().contains("the revision is given twice"));
    assertTrue(assertThrows(UsageException.class, () -> PullCommand.target("https://huggingface.co/", Optional.empty()))
        .getMessage().contains("is not the URL of a model"));
    Cli.Result result = Cli.run("pull");
    assertEquals(2, result.exit());
    assertEquals("loadstone pull: missing argument ID-or-URL (run 'loadstone help pull' for usage)\n", result.err());
  }
}
