package dev.loadstone.llama;

/** The weights of one decoder layer. */
record Layer(float[] inputNorm, Matrix q, Matrix k, Matrix v, Matrix o, float[] postAttentionNorm,
    Matrix gate, Matrix up, Matrix down) {

  /** The bytes of weights one token reads. */
  long bytesPerToken() {
    long bytes = 4L * (inputNorm.length + postAttentionNorm.length);
    for (Matrix m : new Matrix[] {q, k, v, o, gate, up, down}) {
      bytes += m.data().byteSize();
    }
    return bytes;
  }
}
