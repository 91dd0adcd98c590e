package dev.loadstone.llama;

import java.io.UncheckedIOException;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One sequence being run through a {@link LlamaModel}: the KV cache (float32) and the working
 * buffers, sized once, so that running the model allocates nothing.
 *
 * <pre>{@code
 * Session session = model.newSession(prompt.length + 64);
 * float[] logits = session.forward(prompt, 0);          // prefill: one batched pass
 * int next = Sampler.greedy().sample(logits);
 * logits = session.forward(new int[] {next}, prompt.length);   // one decode step
 * }</pre>
 *
 * <p>A session runs on its model's threads. On a model of several threads one session runs at
 * a time (calls are serialized); on a model of one thread ({@code Options.withThreads(1)}),
 * sessions on different threads run at once, each on its own thread (a server's or a Spark
 * executor's tasks sharing one model). One session is used by one thread at a time. Not for
 * use after the model is closed.
 */
public final class Session {
  /** The most tokens one batched pass takes; longer inputs run in several passes. */
  static final int MAX_BATCH = 64;
  /** Attention with fewer multiply-adds than this runs on the calling thread alone. */
  static final long INLINE_ATTENTION = 1L << 19;

  private final LlamaModel model;
  private final LlamaConfig config;
  private final ThreadTeam team;
  private final int capacity;
  private final int batch;
  private int length;

  // Working buffers, [batch, width] row-major.
  private final float[] x;
  private final float[] xn;
  private final float[] xni;
  private final float[] q;
  private final float[] k;
  private final float[] v;
  private final float[] att;
  private final float[] atti;
  private final float[] gate;
  private final float[] up;
  private final float[] h;
  private final float[] hi;
  private final float[] cos;
  private final float[] sin;
  private final float[] logits;
  private final float[][] keys;
  private final float[][] values;

  /** Each member's buffer for reading weights that lie in a file mapping. */
  private final WeightStage[] stages;
  private final Projection[] qkv;
  private final Projection[] output;
  private final FeedForward[] feedForward;
  private final Projection[] down;
  private final Projection head;
  private final Attention attention;

  Session(LlamaModel model, int capacity) {
    this.model = model;
    this.config = model.config();
    this.team = model.team();
    if (capacity < 1) {
      throw new IllegalArgumentException("capacity must be at least 1, not " + capacity);
    }
    if ((long) capacity * config.kvDim() > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("capacity " + capacity + " is too large for one KV cache array");
    }
    this.capacity = capacity;
    this.batch = Math.min(capacity, MAX_BATCH);
    int hidden = config.hiddenSize();
    int qDim = config.queryDim();
    int kvDim = config.kvDim();
    int inter = config.intermediateSize();
    x = new float[batch * hidden];
    xn = new float[batch * hidden];
    xni = new float[batch * hidden];
    q = new float[batch * qDim];
    k = new float[batch * kvDim];
    v = new float[batch * kvDim];
    att = new float[batch * qDim];
    atti = new float[batch * qDim];
    gate = new float[batch * inter];
    up = new float[batch * inter];
    h = new float[batch * inter];
    hi = new float[batch * inter];
    cos = new float[batch * config.headDim() / 2];
    sin = new float[batch * config.headDim() / 2];
    logits = new float[config.vocabSize()];
    keys = new float[config.layers()][capacity * kvDim];
    values = new float[config.layers()][capacity * kvDim];

    int threads = team.size();
    stages = new WeightStage[threads];
    long stageBytes = WeightStage.bytesFor(model.matrices());
    for (int i = 0; i < threads; i++) {
      stages[i] = new WeightStage(stageBytes);
    }
    List<Layer> layers = model.layers();
    qkv = new Projection[layers.size()];
    output = new Projection[layers.size()];
    feedForward = new FeedForward[layers.size()];
    down = new Projection[layers.size()];
    for (int i = 0; i < layers.size(); i++) {
      Layer layer = layers.get(i);
      qkv[i] = new Projection(List.of(
          new Projection.Part(layer.q(), q, qDim, false),
          new Projection.Part(layer.k(), k, kvDim, false),
          new Projection.Part(layer.v(), v, kvDim, false)), xn, xni, hidden, stages);
      output[i] = new Projection(List.of(new Projection.Part(layer.o(), x, hidden, true)), att, atti, qDim, stages);
      feedForward[i] = new FeedForward(layer.gate(), layer.up(), threads);
      down[i] = new Projection(List.of(new Projection.Part(layer.down(), x, hidden, true)), h, hi, inter, stages);
    }
    head = new Projection(List.of(new Projection.Part(model.lmHead(), logits, 0, false)), xn, xni, hidden, stages);
    attention = new Attention(threads);
  }

  /** The most tokens the KV cache holds. */
  public int capacity() {
    return capacity;
  }

  /** The number of tokens in the KV cache: the position the next token takes. */
  public int length() {
    return length;
  }

  /**
   * Runs {@code tokens} at positions {@code position, position + 1, ...}, keeping their keys and
   * values, and returns the logits that follow the last of them. Several tokens run as one
   * batched pass (matrix-matrix products: each weight is read once per pass, not per token).
   *
   * <p>{@code position} may be below {@link #length()} to go back (the cache after it is
   * overwritten), never above it.
   *
   * @return the logits, {@code vocab_size} floats; the array is the session's own and is
   *     overwritten by the next call
   * @throws IllegalArgumentException if a token is out of the vocabulary, {@code position} is
   *     beyond {@link #length()}, or the tokens would not fit in {@link #capacity()}
   * @throws UncheckedIOException if the model reads its weights in place (an ALIAS load) and a
   *     weights file was truncated, or its storage failed, while the model was open; the message
   *     names the file. The model cannot run on: close it
   */
  public float[] forward(int[] tokens, int position) {
    Objects.requireNonNull(tokens, "tokens");
    if (tokens.length == 0) {
      throw new IllegalArgumentException("no tokens");
    }
    if (position < 0 || position > length) {
      throw new IllegalArgumentException("position " + position + " is outside [0, " + length + "]");
    }
    if ((long) position + tokens.length > capacity) {
      throw new IllegalArgumentException(tokens.length + " tokens at position " + position
          + " do not fit in the session's capacity of " + capacity);
    }
    for (int token : tokens) {
      if (token < 0 || token >= config.vocabSize()) {
        throw new IllegalArgumentException("token " + token + " is outside the vocabulary [0, " + config.vocabSize() + ")");
      }
    }
    java.util.concurrent.locks.Lock lock = model.passLock();
    lock.lock();
    try {
      model.requireOpen();
      try {
        for (int start = 0; start < tokens.length; start += batch) {
          int n = Math.min(batch, tokens.length - start);
          pass(tokens, start, n, position + start, start + n == tokens.length);
        }
      } catch (InternalError e) {
        throw model.unreadableWeights(e);
      }
      length = position + tokens.length;
      return logits;
    } finally {
      lock.unlock();
    }
  }

  /** One batched pass over {@code n} tokens at {@code position}. */
  private void pass(int[] tokens, int from, int n, int position, boolean last) {
    int hidden = config.hiddenSize();
    int qDim = config.queryDim();
    int kvDim = config.kvDim();
    float eps = (float) config.rmsNormEps();
    Matrix embed = model.embedding();
    for (int t = 0; t < n; t++) {
      embed.row(tokens[from + t], x, t * hidden, stages[0]);   // the caller is member 0
    }
    rotaryTables(n, position);
    List<Layer> layers = model.layers();
    for (int l = 0; l < layers.size(); l++) {
      Layer layer = layers.get(l);
      normalize(layer.inputNorm(), eps, n);
      qkv[l].prepare(n);
      team.run(qkv[l]);
      for (int t = 0; t < n; t++) {
        rotate(q, t * qDim, config.heads(), t);
        rotate(k, t * kvDim, config.kvHeads(), t);
      }
      System.arraycopy(k, 0, keys[l], position * kvDim, n * kvDim);
      System.arraycopy(v, 0, values[l], position * kvDim, n * kvDim);
      attention.prepare(l, n, position);
      if ((long) n * (position + n) * config.queryDim() < INLINE_ATTENTION) {
        attention.run(0);   // a decode step's attention: less work than handing it out
      } else {
        team.run(attention);
      }
      output[l].prepare(n);
      team.run(output[l]);
      normalize(layer.postAttentionNorm(), eps, n);
      feedForward[l].prepare(n);
      team.run(feedForward[l]);
      down[l].prepare(n);
      team.run(down[l]);
    }
    if (last) {
      // Only the last position's logits are wanted: normalize it into row 0 and project.
      Kernels.rmsNorm(x, (n - 1) * hidden, model.finalNorm(), eps, xn, 0, hidden);
      Kernels.interleave(xn, 0, xni, 0, hidden);
      head.prepare(1);
      team.run(head);
    }
  }

  /** RMSNorm of the residual stream into {@code xn}, and its interleaved copy. */
  private void normalize(float[] weight, float eps, int n) {
    int hidden = config.hiddenSize();
    for (int t = 0; t < n; t++) {
      Kernels.rmsNorm(x, t * hidden, weight, eps, xn, t * hidden, hidden);
      Kernels.interleave(xn, t * hidden, xni, t * hidden, hidden);
    }
  }

  /** cos and sin of every frequency at every position of the pass, as transformers rounds them. */
  private void rotaryTables(int n, int position) {
    float[] inv = model.inverseFrequencies();
    int half = inv.length;
    for (int t = 0; t < n; t++) {
      float p = position + t;
      for (int i = 0; i < half; i++) {
        float angle = p * inv[i];
        cos[t * half + i] = (float) Math.cos(angle);
        sin[t * half + i] = (float) Math.sin(angle);
      }
    }
  }

  /** Rotate-half RoPE, in place, on {@code heads} heads of token {@code t} starting at {@code offset}. */
  private void rotate(float[] data, int offset, int heads, int t) {
    int headDim = config.headDim();
    int half = headDim / 2;
    int table = t * half;
    for (int hd = 0; hd < heads; hd++) {
      int base = offset + hd * headDim;
      for (int i = 0; i < half; i++) {
        float c = cos[table + i];
        float s = sin[table + i];
        float a = data[base + i];
        float b = data[base + half + i];
        data[base + i] = a * c - b * s;
        data[base + half + i] = b * c + a * s;
      }
    }
  }

  /** SwiGLU: {@code h = silu(x Wgate) * (x Wup)}, both matrices in the same chunks of rows. */
  private final class FeedForward implements ThreadTeam.Task {
    private final Matrix gateMatrix;
    private final Matrix upMatrix;
    private final int[] chunkStart;
    private final int[] chunkEnd;
    private final AtomicInteger next = new AtomicInteger();
    private int tokens;

    FeedForward(Matrix gateMatrix, Matrix upMatrix, int threads) {
      this.gateMatrix = gateMatrix;
      this.upMatrix = upMatrix;
      List<int[]> chunks = Projection.chunks(List.of(gateMatrix), threads);
      chunkStart = chunks.stream().mapToInt(c -> c[1]).toArray();
      chunkEnd = chunks.stream().mapToInt(c -> c[2]).toArray();
    }

    void prepare(int n) {
      tokens = n;
      next.set(0);
    }

    @Override
    public void run(int member) {
      int n = tokens;
      int inter = config.intermediateSize();
      int hidden = config.hiddenSize();
      int c;
      while ((c = next.getAndIncrement()) < chunkStart.length) {
        int r0 = chunkStart[c];
        int r1 = chunkEnd[c];
        Kernels.multiply(gateMatrix, r0, r1, xn, xni, hidden, n, gate, inter, false, stages[member]);
        Kernels.multiply(upMatrix, r0, r1, xn, xni, hidden, n, up, inter, false, stages[member]);
        for (int t = 0; t < n; t++) {
          int row = t * inter;
          for (int r = r0; r < r1; r++) {
            float g = gate[row + r];
            float value = g / (1f + (float) Math.exp(-g)) * up[row + r];
            h[row + r] = value;
            hi[row + Kernels.interleavedIndex(r, inter)] = value;
          }
        }
      }
    }
  }

  /** Causal grouped-query attention over the KV cache, one (token, head) pair at a time. */
  private final class Attention implements ThreadTeam.Task {
    private final float[][] scores;
    private final AtomicInteger next = new AtomicInteger();
    private int layer;
    private int tokens;
    private int position;

    Attention(int threads) {
      scores = new float[threads][capacity];
    }

    void prepare(int layerIndex, int n, int start) {
      layer = layerIndex;
      tokens = n;
      position = start;
      next.set(0);
    }

    @Override
    public void run(int member) {
      int heads = config.heads();
      int headDim = config.headDim();
      int kvDim = config.kvDim();
      int qDim = config.queryDim();
      int group = heads / config.kvHeads();
      float scale = (float) (1.0 / Math.sqrt(headDim));
      float[] keyCache = keys[layer];
      float[] valueCache = values[layer];
      float[] score = scores[member];
      int items = tokens * heads;
      int item;
      while ((item = next.getAndIncrement()) < items) {
        int t = item / heads;
        int head = item % heads;
        int end = position + t + 1;
        int qOffset = t * qDim + head * headDim;
        int kvOffset = (head / group) * headDim;
        float max = Float.NEGATIVE_INFINITY;
        for (int s = 0; s < end; s++) {
          float value = Kernels.dot(q, qOffset, keyCache, s * kvDim + kvOffset, headDim) * scale;
          score[s] = value;
          max = Math.max(max, value);
        }
        float sum = 0;
        for (int s = 0; s < end; s++) {
          float e = (float) Math.exp(score[s] - max);
          score[s] = e;
          sum += e;
        }
        java.util.Arrays.fill(att, qOffset, qOffset + headDim, 0f);
        float norm = 1f / sum;
        for (int s = 0; s < end; s++) {
          Kernels.axpy(score[s] * norm, valueCache, s * kvDim + kvOffset, att, qOffset, headDim);
        }
        for (int d = 0; d < headDim; d++) {
          int column = head * headDim + d;
          atti[t * qDim + Kernels.interleavedIndex(column, qDim)] = att[qOffset + d];
        }
      }
    }
  }
}
