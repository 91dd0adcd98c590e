package dev.loadstone.cli;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressBarTest {
  private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
  private final PrintStream stream = new PrintStream(bytes, true, UTF_8);
  private final AtomicLong now = new AtomicLong(1_000_000_000L);

  private String printed() {
    return bytes.toString(UTF_8);
  }

  @Test
  void drawsInPlaceAtMostEveryTenthOfASecondAndErasesAtTheEnd() {
    long total = 200L << 20;
    ProgressBar bar = new ProgressBar(stream, "converting", total, true, now::get);
    bar.update(0);
    assertEquals("\rconverting [------------------------------]   0%  0 B / 200.0 MiB", printed());
    now.addAndGet(50_000_000L);
    bar.add(10L << 20);
    assertEquals(1, printed().split("\r", -1).length - 1, "no redraw within 100 ms");
    now.addAndGet(950_000_000L); // one second in all, 100 MiB done
    bar.add(90L << 20);
    String second = printed().substring(printed().lastIndexOf('\r') + 1);
    assertEquals("converting [###############---------------]  50%  100.0 MiB / 200.0 MiB  100.0 MiB/s  ETA 1 s",
        second);
    now.addAndGet(1_000_000L);
    bar.update(total); // the end is always drawn
    String last = printed().substring(printed().lastIndexOf('\r') + 1);
    assertTrue(last.startsWith("converting [##############################] 100%  200.0 MiB / 200.0 MiB  "), last);
    assertFalse(last.contains("ETA"), last);
    int length = printed().length();
    bar.finish();
    String erase = printed().substring(length);
    assertTrue(erase.matches("\r +\r"), erase);
    bar.finish();
    bar.add(1);
    assertEquals(length + erase.length(), printed().length(), "nothing after finish");
    assertEquals(total, bar.done());
  }

  @Test
  void aShorterLineIsPaddedOverTheLongerOne() {
    ProgressBar bar = new ProgressBar(stream, "x", 1000, true, now::get);
    now.addAndGet(1_000_000_000L);
    bar.update(500);
    String first = printed().substring(1);
    now.addAndGet(10_000_000_000L); // much slower now: the rate shrinks, ETA grows
    bar.update(600);
    String second = printed().substring(1 + first.length() + 1);
    assertTrue(second.length() >= first.length(), second);
  }

  @Test
  void disabledPrintsNothing() {
    ProgressBar bar = new ProgressBar(stream, "converting", 1L << 40, false, now::get);
    bar.update(5);
    bar.add(1L << 39);
    bar.finish();
    assertEquals("", printed());
    assertEquals(5 + (1L << 39), bar.done());
  }

  @Test
  void smallJobsGetNoBar() {
    assertFalse(ProgressBar.forTerminal(stream, "x", ProgressBar.THRESHOLD).enabled());
    assertEquals(ProgressBar.isTerminal(), ProgressBar.forTerminal(stream, "x", ProgressBar.THRESHOLD + 1).enabled());
  }

  @Test
  void durations() {
    assertEquals("0 s", ProgressBar.duration(0));
    assertEquals("59 s", ProgressBar.duration(59));
    assertEquals("1 min 05 s", ProgressBar.duration(65));
    assertEquals("2 h 03 min", ProgressBar.duration(2 * 3600 + 3 * 60 + 7));
  }
}
