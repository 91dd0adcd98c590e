package dev.loadstone.llama;

import dev.loadstone.safetensors.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The hot loops: weight matrix times activations, over F32, F16 or BF16 weights, with float32
 * accumulation (Vector API). Weights in the model's own memory are read where they are; weights
 * in a file mapping (an ALIAS load) through a {@link WeightStage}, unless the model was told to
 * read the mapping directly.
 *
 * <p><b>16-bit weights without a widening shuffle.</b> A vector of {@code LANES} ints holds
 * {@link #BLOCK} = 2 × {@code LANES} 16-bit weights; {@code bits << 16} gives the even ones as
 * BF16-widened floats, {@code bits & 0xFFFF0000} the odd ones. The activations are laid out to
 * match once per matrix product ({@link #interleave}): in each block of {@code BLOCK} columns,
 * first the even columns, then the odd ones; columns past the last whole block stay in place.
 * So one load, a shift, an AND and two FMAs consume {@code BLOCK} weights.
 *
 * <p>Rows are read front to back, each exactly once per product however many tokens are
 * multiplied: a row is multiplied with up to four tokens at a time while it sits in L1.
 */
final class Kernels {
  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
  static final int LANES = F.length();
  /** 16-bit elements per int vector. */
  static final int BLOCK = 2 * LANES;

  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
  private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
  private static final int HIGH_HALF = 0xFFFF0000;

  static {
    if (I.vectorBitSize() != F.vectorBitSize()) {
      throw new ExceptionInInitializerError("int and float vectors of different sizes");
    }
  }

  private Kernels() {}

  /** Where column {@code c} of a row of {@code cols} lands in the interleaved layout. */
  static int interleavedIndex(int c, int cols) {
    int full = cols - cols % BLOCK;
    if (c >= full) {
      return c;
    }
    int j = c % BLOCK;
    return c - j + ((j & 1) == 0 ? j >> 1 : LANES + (j >> 1));
  }

  /** Copies {@code cols} activations from {@code x[from..]} to {@code xi[to..]} interleaved. */
  static void interleave(float[] x, int from, float[] xi, int to, int cols) {
    int full = cols - cols % BLOCK;
    for (int b = 0; b < full; b += BLOCK) {
      for (int i = 0; i < LANES; i++) {
        xi[to + b + i] = x[from + b + 2 * i];
        xi[to + b + LANES + i] = x[from + b + 2 * i + 1];
      }
    }
    System.arraycopy(x, from + full, xi, to + full, cols - full);
  }

  /**
   * {@code out[t * outStride + r] (+)= W[r, :] · x_t} for rows {@code [r0, r1)} and tokens
   * {@code t < n}. {@code x} holds the activations as they are (read for F32 weights), {@code xi}
   * interleaved (read for 16-bit weights); token {@code t} starts at {@code t * inStride} in both.
   * A {@link Matrix#staged() staged} matrix is read through {@code stage}, a few rows at a time;
   * others where they are.
   */
  static void multiply(Matrix w, int r0, int r1, float[] x, float[] xi, int inStride, int n,
      float[] out, int outStride, boolean accumulate, WeightStage stage) {
    if (!w.staged()) {
      multiply(w, w.data(), 0, r0, r1, x, xi, inStride, n, out, outStride, accumulate);
      return;
    }
    int step = stage.rowsPerCopy(w);
    for (int first = r0; first < r1; first += step) {
      int end = Math.min(r1, first + step);
      multiply(w, stage.copy(w, first, end), first, first, end, x, xi, inStride, n, out, outStride, accumulate);
    }
  }

  /** {@link #multiply} over rows {@code [r0, r1)} of {@code w}, read from {@code data}, which holds row {@code base} at 0. */
  private static void multiply(Matrix w, MemorySegment data, int base, int r0, int r1, float[] x,
      float[] xi, int inStride, int n, float[] out, int outStride, boolean accumulate) {
    int cols = w.cols();
    long rowBytes = w.rowBytes();
    DType dtype = w.dtype();
    float[] in = dtype == DType.F32 ? x : xi;
    // Groups of four tokens: one row at a time, multiplied with the four while it is in L1.
    int grouped = n - n % 4;
    if (grouped > 0) {
      for (int r = r0; r < r1; r++) {
        long offset = (r - base) * rowBytes;
        for (int t = 0; t < grouped; t += 4) {
          int o = r + t * outStride;
          switch (dtype) {
            case BF16 -> dot4Bf16(data, offset, in, t * inStride, inStride, cols, out, o, outStride, accumulate);
            case F16 -> dot4F16(data, offset, in, t * inStride, inStride, cols, out, o, outStride, accumulate);
            default -> dot4F32(data, offset, in, t * inStride, inStride, cols, out, o, outStride, accumulate);
          }
        }
      }
    }
    // The other tokens (a decode step's one token): BF16 rows four at a time, sharing the loads
    // of the activations, so that the loop issues few instructions per byte of weights.
    for (int t = grouped; t < n; t++) {
      int xo = t * inStride;
      int o = t * outStride;
      int r = r0;
      if (dtype == DType.BF16) {
        for (; r + 4 <= r1; r += 4) {
          rows4Bf16(data, (r - base) * rowBytes, rowBytes, in, xo, cols, out, o + r, accumulate);
        }
      }
      for (; r < r1; r++) {
        long offset = (r - base) * rowBytes;
        float dot = switch (dtype) {
          case BF16 -> dotBf16(data, offset, in, xo, cols);
          case F16 -> dotF16(data, offset, in, xo, cols);
          default -> dotF32(data, offset, in, xo, cols);
        };
        out[o + r] = accumulate ? out[o + r] + dot : dot;
      }
    }
  }

  // ---- BF16 ------------------------------------------------------------------------------

  private static FloatVector even(IntVector bits) {
    return bits.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
  }

  private static FloatVector odd(IntVector bits) {
    return bits.and(HIGH_HALF).reinterpretAsFloats();
  }

  private static float bf16(MemorySegment data, long offset) {
    return Float.intBitsToFloat((data.get(SHORT, offset) & 0xFFFF) << 16);
  }

  static float dotBf16(MemorySegment w, long offset, float[] x, int xo, int cols) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    int full = cols - cols % BLOCK;
    int c = 0;
    for (; c + 2 * BLOCK <= full; c += 2 * BLOCK) {
      IntVector v0 = IntVector.fromMemorySegment(I, w, offset + 2L * c, LE);
      IntVector v1 = IntVector.fromMemorySegment(I, w, offset + 2L * (c + BLOCK), LE);
      a0 = even(v0).fma(FloatVector.fromArray(F, x, xo + c), a0);
      a1 = odd(v0).fma(FloatVector.fromArray(F, x, xo + c + LANES), a1);
      a2 = even(v1).fma(FloatVector.fromArray(F, x, xo + c + BLOCK), a2);
      a3 = odd(v1).fma(FloatVector.fromArray(F, x, xo + c + BLOCK + LANES), a3);
    }
    if (c < full) {
      IntVector v0 = IntVector.fromMemorySegment(I, w, offset + 2L * c, LE);
      a0 = even(v0).fma(FloatVector.fromArray(F, x, xo + c), a0);
      a1 = odd(v0).fma(FloatVector.fromArray(F, x, xo + c + LANES), a1);
      c += BLOCK;
    }
    float sum = a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      sum += bf16(w, offset + 2L * c) * x[xo + c];
    }
    return sum;
  }

  /** Rows {@code r..r+3} (starting at byte {@code offset}) times one token, into {@code out[o..o+3]}. */
  static void rows4Bf16(MemorySegment w, long offset, long rowBytes, float[] x, int xo, int cols,
      float[] out, int o, boolean accumulate) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    FloatVector b0 = FloatVector.zero(F);
    FloatVector b1 = FloatVector.zero(F);
    FloatVector b2 = FloatVector.zero(F);
    FloatVector b3 = FloatVector.zero(F);
    long o0 = offset;
    long o1 = offset + rowBytes;
    long o2 = offset + 2 * rowBytes;
    long o3 = offset + 3 * rowBytes;
    int full = cols - cols % BLOCK;
    int c = 0;
    for (; c < full; c += BLOCK) {
      FloatVector xe = FloatVector.fromArray(F, x, xo + c);
      FloatVector xd = FloatVector.fromArray(F, x, xo + c + LANES);
      IntVector v0 = IntVector.fromMemorySegment(I, w, o0 + 2L * c, LE);
      IntVector v1 = IntVector.fromMemorySegment(I, w, o1 + 2L * c, LE);
      IntVector v2 = IntVector.fromMemorySegment(I, w, o2 + 2L * c, LE);
      IntVector v3 = IntVector.fromMemorySegment(I, w, o3 + 2L * c, LE);
      a0 = even(v0).fma(xe, a0);
      b0 = odd(v0).fma(xd, b0);
      a1 = even(v1).fma(xe, a1);
      b1 = odd(v1).fma(xd, b1);
      a2 = even(v2).fma(xe, a2);
      b2 = odd(v2).fma(xd, b2);
      a3 = even(v3).fma(xe, a3);
      b3 = odd(v3).fma(xd, b3);
    }
    float s0 = a0.add(b0).reduceLanes(VectorOperators.ADD);
    float s1 = a1.add(b1).reduceLanes(VectorOperators.ADD);
    float s2 = a2.add(b2).reduceLanes(VectorOperators.ADD);
    float s3 = a3.add(b3).reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      float xc = x[xo + c];
      s0 += bf16(w, o0 + 2L * c) * xc;
      s1 += bf16(w, o1 + 2L * c) * xc;
      s2 += bf16(w, o2 + 2L * c) * xc;
      s3 += bf16(w, o3 + 2L * c) * xc;
    }
    store4(out, o, 1, accumulate, s0, s1, s2, s3);
  }

  static void dot4Bf16(MemorySegment w, long offset, float[] x, int xo, int xs, int cols,
      float[] out, int o, int os, boolean accumulate) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    FloatVector b0 = FloatVector.zero(F);
    FloatVector b1 = FloatVector.zero(F);
    FloatVector b2 = FloatVector.zero(F);
    FloatVector b3 = FloatVector.zero(F);
    int full = cols - cols % BLOCK;
    int x0 = xo;
    int x1 = xo + xs;
    int x2 = xo + 2 * xs;
    int x3 = xo + 3 * xs;
    int c = 0;
    for (; c < full; c += BLOCK) {
      IntVector v = IntVector.fromMemorySegment(I, w, offset + 2L * c, LE);
      FloatVector e = even(v);
      FloatVector d = odd(v);
      a0 = e.fma(FloatVector.fromArray(F, x, x0 + c), a0);
      b0 = d.fma(FloatVector.fromArray(F, x, x0 + c + LANES), b0);
      a1 = e.fma(FloatVector.fromArray(F, x, x1 + c), a1);
      b1 = d.fma(FloatVector.fromArray(F, x, x1 + c + LANES), b1);
      a2 = e.fma(FloatVector.fromArray(F, x, x2 + c), a2);
      b2 = d.fma(FloatVector.fromArray(F, x, x2 + c + LANES), b2);
      a3 = e.fma(FloatVector.fromArray(F, x, x3 + c), a3);
      b3 = d.fma(FloatVector.fromArray(F, x, x3 + c + LANES), b3);
    }
    float s0 = a0.add(b0).reduceLanes(VectorOperators.ADD);
    float s1 = a1.add(b1).reduceLanes(VectorOperators.ADD);
    float s2 = a2.add(b2).reduceLanes(VectorOperators.ADD);
    float s3 = a3.add(b3).reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      float wc = bf16(w, offset + 2L * c);
      s0 += wc * x[x0 + c];
      s1 += wc * x[x1 + c];
      s2 += wc * x[x2 + c];
      s3 += wc * x[x3 + c];
    }
    store4(out, o, os, accumulate, s0, s1, s2, s3);
  }

  private static void store4(float[] out, int o, int os, boolean accumulate, float s0, float s1, float s2, float s3) {
    if (accumulate) {
      out[o] += s0;
      out[o + os] += s1;
      out[o + 2 * os] += s2;
      out[o + 3 * os] += s3;
    } else {
      out[o] = s0;
      out[o + os] = s1;
      out[o + 2 * os] = s2;
      out[o + 3 * os] = s3;
    }
  }

  // ---- F16 -------------------------------------------------------------------------------

  /** Half-precision bits in the low 16 bits of each lane (upper bits zero) to float32, exactly. */
  private static FloatVector halfToFloat(IntVector h) {
    IntVector magnitude = h.and(0x7FFF);
    IntVector exponent = h.and(0x7C00);
    // Normal numbers: rebias the exponent (15 -> 127); infinities and NaNs: rebias twice, which
    // sets all eight exponent bits.
    IntVector bits = magnitude.lanewise(VectorOperators.LSHL, 13).add(0x3800_0000);
    bits = bits.add(0x3800_0000, exponent.compare(VectorOperators.EQ, 0x7C00));
    FloatVector value = bits.reinterpretAsFloats();
    // Zeros and subnormals: magnitude × 2^-24, exact, and never a subnormal float operand.
    VectorMask<Integer> small = exponent.compare(VectorOperators.EQ, 0);
    FloatVector tiny = ((FloatVector) magnitude.convert(VectorOperators.I2F, 0)).mul(0x1p-24f);
    value = value.blend(tiny, small.cast(F));
    IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
    return value.reinterpretAsInts().or(sign).reinterpretAsFloats();
  }

  private static FloatVector evenHalf(IntVector bits) {
    return halfToFloat(bits.and(0xFFFF));
  }

  private static FloatVector oddHalf(IntVector bits) {
    return halfToFloat(bits.lanewise(VectorOperators.LSHR, 16));
  }

  private static float f16(MemorySegment data, long offset) {
    return Float.float16ToFloat(data.get(SHORT, offset));
  }

  static float dotF16(MemorySegment w, long offset, float[] x, int xo, int cols) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    int full = cols - cols % BLOCK;
    int c = 0;
    for (; c < full; c += BLOCK) {
      IntVector v = IntVector.fromMemorySegment(I, w, offset + 2L * c, LE);
      a0 = evenHalf(v).fma(FloatVector.fromArray(F, x, xo + c), a0);
      a1 = oddHalf(v).fma(FloatVector.fromArray(F, x, xo + c + LANES), a1);
    }
    float sum = a0.add(a1).reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      sum += f16(w, offset + 2L * c) * x[xo + c];
    }
    return sum;
  }

  static void dot4F16(MemorySegment w, long offset, float[] x, int xo, int xs, int cols,
      float[] out, int o, int os, boolean accumulate) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    int full = cols - cols % BLOCK;
    int c = 0;
    for (; c < full; c += BLOCK) {
      IntVector v = IntVector.fromMemorySegment(I, w, offset + 2L * c, LE);
      FloatVector e = evenHalf(v);
      FloatVector d = oddHalf(v);
      a0 = e.fma(FloatVector.fromArray(F, x, xo + c), a0);
      a0 = d.fma(FloatVector.fromArray(F, x, xo + c + LANES), a0);
      a1 = e.fma(FloatVector.fromArray(F, x, xo + xs + c), a1);
      a1 = d.fma(FloatVector.fromArray(F, x, xo + xs + c + LANES), a1);
      a2 = e.fma(FloatVector.fromArray(F, x, xo + 2 * xs + c), a2);
      a2 = d.fma(FloatVector.fromArray(F, x, xo + 2 * xs + c + LANES), a2);
      a3 = e.fma(FloatVector.fromArray(F, x, xo + 3 * xs + c), a3);
      a3 = d.fma(FloatVector.fromArray(F, x, xo + 3 * xs + c + LANES), a3);
    }
    float s0 = a0.reduceLanes(VectorOperators.ADD);
    float s1 = a1.reduceLanes(VectorOperators.ADD);
    float s2 = a2.reduceLanes(VectorOperators.ADD);
    float s3 = a3.reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      float wc = f16(w, offset + 2L * c);
      s0 += wc * x[xo + c];
      s1 += wc * x[xo + xs + c];
      s2 += wc * x[xo + 2 * xs + c];
      s3 += wc * x[xo + 3 * xs + c];
    }
    store4(out, o, os, accumulate, s0, s1, s2, s3);
  }

  // ---- F32 -------------------------------------------------------------------------------

  static float dotF32(MemorySegment w, long offset, float[] x, int xo, int cols) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    int full = cols - cols % BLOCK;
    int c = 0;
    for (; c < full; c += BLOCK) {
      a0 = FloatVector.fromMemorySegment(F, w, offset + 4L * c, LE).fma(FloatVector.fromArray(F, x, xo + c), a0);
      a1 = FloatVector.fromMemorySegment(F, w, offset + 4L * (c + LANES), LE)
          .fma(FloatVector.fromArray(F, x, xo + c + LANES), a1);
    }
    float sum = a0.add(a1).reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      sum += w.get(FLOAT, offset + 4L * c) * x[xo + c];
    }
    return sum;
  }

  static void dot4F32(MemorySegment w, long offset, float[] x, int xo, int xs, int cols,
      float[] out, int o, int os, boolean accumulate) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    int full = cols - cols % LANES;
    int c = 0;
    for (; c < full; c += LANES) {
      FloatVector v = FloatVector.fromMemorySegment(F, w, offset + 4L * c, LE);
      a0 = v.fma(FloatVector.fromArray(F, x, xo + c), a0);
      a1 = v.fma(FloatVector.fromArray(F, x, xo + xs + c), a1);
      a2 = v.fma(FloatVector.fromArray(F, x, xo + 2 * xs + c), a2);
      a3 = v.fma(FloatVector.fromArray(F, x, xo + 3 * xs + c), a3);
    }
    float s0 = a0.reduceLanes(VectorOperators.ADD);
    float s1 = a1.reduceLanes(VectorOperators.ADD);
    float s2 = a2.reduceLanes(VectorOperators.ADD);
    float s3 = a3.reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      float wc = w.get(FLOAT, offset + 4L * c);
      s0 += wc * x[xo + c];
      s1 += wc * x[xo + xs + c];
      s2 += wc * x[xo + 2 * xs + c];
      s3 += wc * x[xo + 3 * xs + c];
    }
    store4(out, o, os, accumulate, s0, s1, s2, s3);
  }

  // ---- small vectors ---------------------------------------------------------------------

  /** {@code a[ao..ao+n) · b[bo..bo+n)}. */
  static float dot(float[] a, int ao, float[] b, int bo, int n) {
    FloatVector acc = FloatVector.zero(F);
    int full = n - n % LANES;
    int i = 0;
    for (; i < full; i += LANES) {
      acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
    }
    float sum = acc.reduceLanes(VectorOperators.ADD);
    for (; i < n; i++) {
      sum += a[ao + i] * b[bo + i];
    }
    return sum;
  }

  /** {@code y[yo..yo+n) += alpha * x[xo..xo+n)}. */
  static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
    int full = n - n % LANES;
    int i = 0;
    FloatVector a = FloatVector.broadcast(F, alpha);
    for (; i < full; i += LANES) {
      FloatVector.fromArray(F, x, xo + i).fma(a, FloatVector.fromArray(F, y, yo + i)).intoArray(y, yo + i);
    }
    for (; i < n; i++) {
      y[yo + i] += alpha * x[xo + i];
    }
  }

  /**
   * RMSNorm as transformers computes it: {@code weight * (x / sqrt(mean(x²) + eps))}, from
   * {@code x[from..]} into {@code out[to..]}.
   */
  static void rmsNorm(float[] x, int from, float[] weight, float eps, float[] out, int to, int n) {
    double squares = 0;
    for (int i = 0; i < n; i++) {
      float v = x[from + i];
      squares += v * v;
    }
    float scale = (float) (1.0 / Math.sqrt((float) (squares / n) + eps));
    for (int i = 0; i < n; i++) {
      out[to + i] = weight[i] * (x[from + i] * scale);
    }
  }
}
