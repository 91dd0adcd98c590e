package dev.loadstone.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** The KV cache and batching: every way of running the same tokens gives the same logits. */
class SessionTest {
  static final Path MODEL = Path.of("src/test/resources/reference/gqa4-tied-llama3-bf16");

  @Test
  void oneBatchEqualsOneTokenAtATime() throws Exception {
    int[] tokens = {1, 5, 9, 14, 3, 77, 2, 40, 41, 8};
    try (LlamaModel model = LlamaModel.load(MODEL, LlamaModel.Options.defaults().withThreads(2))) {
      float[] batched = model.newSession(tokens.length).forward(tokens, 0).clone();
      Session stepwise = model.newSession(tokens.length);
      float[] logits = null;
      for (int i = 0; i < tokens.length; i++) {
        logits = stepwise.forward(new int[] {tokens[i]}, i);
      }
      assertClose(batched, logits);
      Session split = model.newSession(tokens.length);
      split.forward(Arrays.copyOf(tokens, 3), 0);
      assertClose(batched, split.forward(Arrays.copyOfRange(tokens, 3, tokens.length), 3));
      assertEquals(tokens.length, split.length());
    }
  }

  /** On a model of one thread, sessions on several threads run at once, each as it would alone. */
  @Test
  void sessionsOfASingleThreadModelRunAtOnceOnTheirOwnThreads() throws Exception {
    int[][] prompts = {{1, 5, 9, 14}, {3, 77, 2}, {40, 41, 8, 8, 2}, {7}};
    int steps = 24;
    try (LlamaModel model = LlamaModel.load(MODEL, LlamaModel.Options.defaults().withThreads(1))) {
      int[][] alone = new int[prompts.length][];
      for (int p = 0; p < prompts.length; p++) {
        alone[p] = greedy(model, prompts[p], steps);
      }
      int[][] together = new int[prompts.length][];
      java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(prompts.length);
      Thread[] threads = new Thread[prompts.length];
      Throwable[] failures = new Throwable[prompts.length];
      for (int p = 0; p < prompts.length; p++) {
        int index = p;
        threads[p] = new Thread(() -> {
          try {
            start.await();
            together[index] = greedy(model, prompts[index], steps);
          } catch (Throwable t) {
            failures[index] = t;
          }
        });
        threads[p].start();
      }
      for (Thread thread : threads) {
        thread.join();
      }
      for (int p = 0; p < prompts.length; p++) {
        if (failures[p] != null) {
          throw new AssertionError("session " + p, failures[p]);
        }
        assertEquals(Arrays.toString(alone[p]), Arrays.toString(together[p]), "session " + p);
      }
      // The passes do not wait for each other: another thread takes the pass lock while one holds it.
      java.util.concurrent.locks.Lock held = model.passLock();
      held.lock();
      try {
        java.util.concurrent.FutureTask<Boolean> other = new java.util.concurrent.FutureTask<>(() -> {
          java.util.concurrent.locks.Lock lock = model.passLock();
          boolean taken = lock.tryLock();
          if (taken) {
            lock.unlock();
          }
          return taken;
        });
        new Thread(other).start();
        org.junit.jupiter.api.Assertions.assertTrue(other.get(), "a second pass runs beside the first");
      } finally {
        held.unlock();
      }
    }
    try (LlamaModel model = LlamaModel.load(MODEL, LlamaModel.Options.defaults().withThreads(2))) {
      java.util.concurrent.locks.Lock held = model.passLock();
      held.lock();
      try {
        java.util.concurrent.FutureTask<Boolean> other = new java.util.concurrent.FutureTask<>(() -> model.passLock().tryLock());
        new Thread(other).start();
        org.junit.jupiter.api.Assertions.assertFalse(other.get(), "a team of threads runs one pass at a time");
      } finally {
        held.unlock();
      }
    }
  }

  /** Greedy tokens after {@code prompt}. */
  private static int[] greedy(LlamaModel model, int[] prompt, int steps) {
    Session session = model.newSession(prompt.length + steps);
    int[] out = new int[steps];
    float[] logits = session.forward(prompt, 0);
    for (int i = 0; i < steps; i++) {
      out[i] = Sampler.argmax(logits);
      logits = session.forward(new int[] {out[i]}, prompt.length + i);
    }
    return out;
  }

  @Test
  void goingBackOverwritesTheCache() throws Exception {
    try (LlamaModel model = LlamaModel.load(MODEL, LlamaModel.Options.defaults())) {
      Session session = model.newSession(8);
      float[] first = session.forward(new int[] {1, 2, 3, 4}, 0).clone();
      session.forward(new int[] {9, 9}, 4);
      session.forward(new int[] {50, 60}, 2);
      assertClose(first, session.forward(new int[] {3, 4}, 2));
      assertEquals(4, session.length());
    }
  }

  @Test
  void rejectsWhatDoesNotFit() throws Exception {
    try (LlamaModel model = LlamaModel.load(MODEL, LlamaModel.Options.defaults())) {
      Session session = model.newSession(4);
      assertThrows(IllegalArgumentException.class, () -> session.forward(new int[] {1, 2, 3, 4, 5}, 0));
      assertThrows(IllegalArgumentException.class, () -> session.forward(new int[] {1}, 1));
      assertThrows(IllegalArgumentException.class, () -> session.forward(new int[] {96}, 0));
      assertThrows(IllegalArgumentException.class, () -> session.forward(new int[] {-1}, 0));
      assertThrows(IllegalArgumentException.class, () -> session.forward(new int[0], 0));
      model.close();
      assertThrows(IllegalStateException.class, () -> session.forward(new int[] {1}, 0));
      assertThrows(IllegalStateException.class, () -> model.newSession(4));
    }
  }

  @Test
  void weightsPerTokenCountEveryMatrixOnce() throws Exception {
    try (LlamaModel model = LlamaModel.load(MODEL, LlamaModel.Options.defaults())) {
      LlamaConfig c = model.config();
      long perLayer = 2L * (2L * c.queryDim() * c.hiddenSize() + 2L * c.kvDim() * c.hiddenSize()
          + 3L * c.intermediateSize() * c.hiddenSize()) + 4L * 2 * c.hiddenSize();
      long expected = c.layers() * perLayer + 2L * c.vocabSize() * c.hiddenSize()   // tied head
          + 2L * c.hiddenSize() + 4L * c.hiddenSize();                              // one embedding row, final norm
      assertEquals(expected, model.weightBytesPerToken());
    }
  }

  static void assertClose(float[] expected, float[] actual) {
    assertEquals(expected.length, actual.length);
    for (int i = 0; i < expected.length; i++) {
      assertEquals(expected[i], actual[i], 1e-4 * Math.max(1, Math.abs(expected[i])), "logit " + i);
    }
  }
}
