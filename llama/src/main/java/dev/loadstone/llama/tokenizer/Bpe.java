package dev.loadstone.llama.tokenizer;

import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BPE model of {@code tokenizer.json}: a word's characters become vocabulary symbols (or
 * byte-fallback tokens, or the unknown token), then the adjacent pair with the lowest merge rank
 * is merged, leftmost first on equal ranks, until no pair has a merge.
 *
 * <p>Merging keeps the symbols in a linked list and the candidate pairs in a heap ordered by
 * (rank, position), so a word of n symbols takes O(n log n) time: whole texts can be one word
 * (as in fortune-llama, whose pre-tokenizer does not split). Results for words up to
 * {@value #MAX_CACHED_LENGTH} characters are cached. Instances are immutable and thread-safe.
 */
final class Bpe {
  static final int MAX_CACHED_LENGTH = 256;
  private static final int CACHE_CAPACITY = 10_000;

  /** The options of the {@code model} object besides vocabulary and merges. */
  record Options(String unkToken, boolean fuseUnk, boolean byteFallback,
      String continuingSubwordPrefix, String endOfWordSuffix, boolean ignoreMerges) {}

  private final Map<String, Integer> vocab;
  private final PairRanks ranks;
  /** The id that merge {@code r} produces. */
  private final int[] mergedIds;
  private final Options options;
  private final int unkId;
  /** The ids of the byte-fallback tokens {@code <0x00>}..{@code <0xFF>}; -1 where missing. */
  private final int[] byteIds = new int[256];
  private final Map<String, int[]> cache = new ConcurrentHashMap<>();

  /**
   * @param vocab token strings to ids; kept, not copied: the caller hands it over
   * @param merges the merges as vocabulary ids, in rank order: {@code merges[r] = {left, right,
   *     merged}}; a pair listed twice keeps its last rank
   */
  Bpe(Map<String, Integer> vocab, int[][] merges, Options options) {
    this.vocab = vocab;
    this.options = options;
    this.ranks = new PairRanks(merges.length);
    this.mergedIds = new int[merges.length];
    for (int r = 0; r < merges.length; r++) {
      ranks.put(merges[r][0], merges[r][1], r);
      mergedIds[r] = merges[r][2];
    }
    this.unkId = options.unkToken() == null ? -1 : vocab.get(options.unkToken());
    for (int b = 0; b < 256; b++) {
      byteIds[b] = vocab.getOrDefault(String.format("<0x%02X>", b), -1);
    }
  }

  /** Appends the ids of {@code word} to {@code out}. */
  void tokenize(String word, IntList out) {
    if (word.isEmpty()) {
      return;
    }
    if (options.ignoreMerges()) {
      Integer id = vocab.get(word);
      if (id != null) {
        out.add(id);
        return;
      }
    }
    int[] cached = cache.get(word);
    if (cached == null) {
      cached = merge(symbols(word));
      if (word.length() <= MAX_CACHED_LENGTH && cache.size() < CACHE_CAPACITY) {
        cache.put(word, cached);
      }
    }
    out.addAll(cached);
  }

  /** The word's characters as initial symbols (HF's {@code BPE::merge_word} before merging). */
  private IntList symbols(String word) {
    IntList ids = new IntList(word.length());
    int pendingUnk = 0; // unknown characters waiting to be emitted as one fused unk token
    for (int i = 0; i < word.length(); ) {
      int end = i + Character.charCount(word.codePointAt(i));
      String s = word.substring(i, end);
      if (i > 0 && options.continuingSubwordPrefix() != null) {
        s = options.continuingSubwordPrefix() + s;
      }
      if (end == word.length() && options.endOfWordSuffix() != null) {
        s = s + options.endOfWordSuffix();
      }
      i = end;
      Integer id = vocab.get(s);
      if (id != null) {
        pendingUnk = flushUnk(ids, pendingUnk);
        ids.add(id);
        continue;
      }
      if (options.byteFallback() && addBytes(s, ids)) {
        continue; // HF emits byte tokens without flushing a pending unk first
      }
      if (unkId >= 0) {
        if (!options.fuseUnk()) {
          pendingUnk = flushUnk(ids, pendingUnk);
        }
        pendingUnk++;
      }
      // Without an unk token, HF drops the character.
    }
    flushUnk(ids, pendingUnk);
    return ids;
  }

  private int flushUnk(IntList ids, int pending) {
    if (pending > 0) {
      ids.add(unkId);
    }
    return 0;
  }

  /** Adds the byte-fallback tokens of {@code s} if all exist. */
  private boolean addBytes(String s, IntList ids) {
    byte[] bytes = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    for (byte b : bytes) {
      if (byteIds[b & 0xFF] < 0) {
        return false;
      }
    }
    for (byte b : bytes) {
      ids.add(byteIds[b & 0xFF]);
    }
    return true;
  }

  /** Merges the symbols by rank and returns the final ids. */
  private int[] merge(IntList symbols) {
    int n = symbols.size();
    int[] id = symbols.toArray(); // id[i] < 0: merged into its left neighbour
    int[] prev = new int[n];
    int[] next = new int[n];
    LongHeap heap = new LongHeap(n);
    for (int i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
      if (i + 1 < n) {
        push(heap, id[i], id[i + 1], i);
      }
    }
    int remaining = n;
    while (!heap.isEmpty()) {
      long top = heap.poll();
      int rank = (int) (top >>> 32);
      int pos = (int) top;
      int right = next[pos];
      // Stale entries: the left symbol was merged away, or either side has changed since.
      if (id[pos] < 0 || right < 0 || ranks.get(id[pos], id[right]) != rank) {
        continue;
      }
      id[pos] = mergedIds[rank];
      id[right] = -1;
      remaining--;
      next[pos] = next[right];
      if (next[pos] >= 0) {
        prev[next[pos]] = pos;
        push(heap, id[pos], id[next[pos]], pos);
      }
      if (prev[pos] >= 0) {
        push(heap, id[prev[pos]], id[pos], prev[pos]);
      }
    }
    int[] out = new int[remaining];
    for (int i = 0, k = 0; i >= 0 && k < remaining; i = next[i]) {
      out[k++] = id[i];
    }
    return out;
  }

  private void push(LongHeap heap, int left, int right, int pos) {
    int rank = ranks.get(left, right);
    if (rank >= 0) {
      heap.add(((long) rank << 32) | pos);
    }
  }

  /** Merge ranks by pair of ids: open addressing over packed {@code long} keys. */
  private static final class PairRanks {
    private final long[] keys;
    private final int[] values;
    private final int mask;

    PairRanks(int expected) {
      int capacity = Integer.highestOneBit(Math.max(4, expected * 2 - 1)) << 1;
      keys = new long[capacity];
      values = new int[capacity];
      mask = capacity - 1;
      Arrays.fill(keys, -1L);
    }

    private static long key(int left, int right) {
      return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private int slot(long key) {
      long h = key * 0x9E3779B97F4A7C15L;
      return (int) (h ^ (h >>> 32)) & mask;
    }

    void put(int left, int right, int value) {
      long key = key(left, right);
      int i = slot(key);
      while (keys[i] != -1L && keys[i] != key) {
        i = (i + 1) & mask;
      }
      keys[i] = key;
      values[i] = value;
    }

    /** The rank of the pair, or -1. */
    int get(int left, int right) {
      long key = key(left, right);
      for (int i = slot(key); keys[i] != -1L; i = (i + 1) & mask) {
        if (keys[i] == key) {
          return values[i];
        }
      }
      return -1;
    }
  }

  /** A binary min-heap of {@code long}s. */
  private static final class LongHeap {
    private long[] heap;
    private int size;

    LongHeap(int capacity) {
      heap = new long[Math.max(4, capacity)];
    }

    boolean isEmpty() {
      return size == 0;
    }

    void add(long value) {
      if (size == heap.length) {
        heap = Arrays.copyOf(heap, size * 2);
      }
      int i = size++;
      while (i > 0) {
        int parent = (i - 1) >>> 1;
        if (heap[parent] <= value) {
          break;
        }
        heap[i] = heap[parent];
        i = parent;
      }
      heap[i] = value;
    }

    long poll() {
      long top = heap[0];
      long last = heap[--size];
      int i = 0;
      while (true) {
        int child = 2 * i + 1;
        if (child >= size) {
          break;
        }
        if (child + 1 < size && heap[child + 1] < heap[child]) {
          child++;
        }
        if (last <= heap[child]) {
          break;
        }
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
      return top;
    }
  }
}
