package dev.loadstone.llama;

/**
 * How a model stretches its rotary position embedding beyond the context it was trained on:
 * {@code rope_scaling} (or {@code rope_parameters}) in {@code config.json}.
 */
public sealed interface RopeScaling {

  /** No scaling ({@code null}, or {@code rope_type} {@code "default"}). */
  record None() implements RopeScaling {}

  /** {@code "linear"}: every inverse frequency divided by {@code factor}. */
  record Linear(double factor) implements RopeScaling {}

  /**
   * {@code "llama3"} (Llama 3.1 and 3.2): low frequencies divided by {@code factor}, high ones
   * kept, and a smooth blend between, as in transformers' {@code _compute_llama3_parameters}.
   */
  record Llama3(double factor, double lowFreqFactor, double highFreqFactor,
      int originalMaxPositionEmbeddings) implements RopeScaling {}

  /**
   * The inverse frequencies of the rotary embedding, {@code headDim / 2} of them, computed in
   * float32 as transformers does.
   */
  default float[] inverseFrequencies(int headDim, double theta) {
    float[] inv = new float[headDim / 2];
    for (int i = 0; i < inv.length; i++) {
      float exponent = (float) (2 * i) / headDim;
      inv[i] = (float) (1.0 / (float) Math.pow(theta, exponent));
    }
    switch (this) {
      case None none -> { }
      case Linear linear -> {
        for (int i = 0; i < inv.length; i++) {
          inv[i] = (float) (inv[i] / linear.factor());
        }
      }
      case Llama3 l -> {
        double lowFreqWavelen = l.originalMaxPositionEmbeddings() / l.lowFreqFactor();
        double highFreqWavelen = l.originalMaxPositionEmbeddings() / l.highFreqFactor();
        for (int i = 0; i < inv.length; i++) {
          float f = inv[i];
          float wavelen = (float) (2 * Math.PI / f);
          float scaled = wavelen > lowFreqWavelen ? (float) (f / l.factor()) : f;
          if (!(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen)) {
            float smooth = ((float) l.originalMaxPositionEmbeddings() / wavelen - (float) l.lowFreqFactor())
                / (float) (l.highFreqFactor() - l.lowFreqFactor());
            scaled = (1 - smooth) * scaled / (float) l.factor() + smooth * scaled;
          }
          inv[i] = scaled;
        }
      }
    }
    return inv;
  }
}
