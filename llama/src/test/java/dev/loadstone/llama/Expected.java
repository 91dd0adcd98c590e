package dev.loadstone.llama;

import dev.loadstone.llama.internal.JsonDocument;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Reads the expected values of a reference case (JSON). */
final class Expected {
  private final Map<?, ?> map;

  private Expected(Map<?, ?> map) {
    this.map = map;
  }

  static Expected read(Path file) throws IOException {
    return new Expected(JsonDocument.read(file).map());
  }

  /** A list of these as its own items. */
  List<Expected> list(String key) {
    return ((List<?>) map.get(key)).stream().map(o -> new Expected((Map<?, ?>) o)).toList();
  }

  int[] ints(String key) {
    return ((List<?>) map.get(key)).stream().mapToInt(o -> ((Number) o).intValue()).toArray();
  }

  double number(String key) {
    return ((Number) map.get(key)).doubleValue();
  }

  String string(String key) {
    return (String) map.get(key);
  }

  boolean has(String key) {
    return map.containsKey(key);
  }

  /** [[id, logit], ...] as ids and logits. */
  TopK topK(String key) {
    List<?> pairs = (List<?>) map.get(key);
    int[] ids = new int[pairs.size()];
    float[] logits = new float[pairs.size()];
    for (int i = 0; i < ids.length; i++) {
      List<?> pair = (List<?>) pairs.get(i);
      ids[i] = ((Number) pair.get(0)).intValue();
      logits[i] = ((Number) pair.get(1)).floatValue();
    }
    return new TopK(ids, logits);
  }

  record TopK(int[] ids, float[] logits) {}
}
