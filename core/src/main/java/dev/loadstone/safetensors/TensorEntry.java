package dev.loadstone.safetensors;

/**
 * One validated tensor entry of a header: its name, dtype, shape and byte range within the data
 * section ({@code [begin, end)}).
 */
record TensorEntry(String name, DType dtype, long[] shape, long begin, long end) {

  long byteLength() {
    return end - begin;
  }

  /** The product of the dimensions; callers have checked that it does not overflow. */
  static long elementCount(long[] shape) {
    long count = 1;
    for (long dim : shape) {
      count = Math.multiplyExact(count, dim);
    }
    return count;
  }
}
