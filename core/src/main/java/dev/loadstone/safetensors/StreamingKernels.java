package dev.loadstone.safetensors;

import dev.loadstone.internal.Posix;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.function.IntUnaryOperator;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * BF16 and F16 to F32, and same-dtype copies, with non-temporal ("streaming") stores, in x86-64
 * machine code.
 *
 * <p>Why: a load widens or copies gigabytes into memory that nobody reads soon. An ordinary store first
 * reads the destination's cache line from memory (write-allocate), so widening costs 2 bytes
 * read, 4 read for ownership and 4 written per element; a streaming store skips the read for
 * ownership, which cuts the memory traffic by 40% (a copy by a third). Java has no streaming
 * store (the JVM's own copy routine uses them only on some processors and sizes: not on AVX2
 * machines for 8 MiB chunks, measured), so this class puts three routines of under 100 bytes,
 * assembled from the listings below, into executable memory and calls them through the
 * foreign linker (what they gain, measured with {@code loadstone bench}, is in the README).
 *
 * <p>Used only where it is safe: x86-64 Linux with the instructions each routine needs (from
 * {@code /proc/cpuinfo}), executable memory allowed, and the routine's output equal to the Java
 * definition (all 65,536 inputs of a widening; 64 KiB of bytes for the copy) on a self-check at
 * first use; never reading a file mapping
 * directly (a fault in native code would kill the JVM, so mapped sources go through
 * {@link FaultSafeStaging}); only into native, writable memory that is not a file mapping; only for outputs
 * of at least {@link #MIN_TARGET_BYTES} (small outputs are better left in cache, where they will
 * likely be read soon). {@code -Dloadstone.streaming=false} turns it off, as does
 * {@code -Dloadstone.scalar=true}.
 */
final class StreamingKernels {
  /** Outputs smaller than this use ordinary stores. */
  static final long MIN_TARGET_BYTES = 1L << 20;
  /** Elements per iteration of the routines: 64 bytes in, two 64-byte cache lines out. */
  private static final int STEP = 32;
  /** Bounds each native call (about 0.1 ms), which holds off the JVM's safepoints meanwhile. */
  private static final long MAX_ELEMENTS_PER_CALL = 1L << 18;
  /** The same bound for the copy routine. */
  private static final long MAX_BYTES_PER_CALL = 1L << 20;

  /**
   * {@code void bf16_to_f32_stream(const uint16_t *source, float *target, int64_t count)}, in the
   * System V calling convention (rdi, rsi, rdx); {@code count} a multiple of 32, {@code target}
   * 32-byte aligned (64 for whole cache lines). Each element's 16 bits become the high half of
   * its float: zero-extend to 32 bits, shift left by 16. Needs AVX2. Assembled with GNU as 2.40.
   */
  private static final String BF16_TO_F32_CODE = String.join("",
      "31c0",                // xor       eax, eax          ; rax: byte offset into source
      "4801d2",              // add       rdx, rdx          ; rdx: source bytes
      "4885d2",              // test      rdx, rdx
      "744f",                // je        done
      "c4e27d330407",        // loop: vpmovzxwd ymm0, [rdi+rax]
      "c4e27d334c0710",      //   vpmovzxwd ymm1, [rdi+rax+0x10]
      "c4e27d33540720",      //   vpmovzxwd ymm2, [rdi+rax+0x20]
      "c4e27d335c0730",      //   vpmovzxwd ymm3, [rdi+rax+0x30]
      "c5fd72f010",          //   vpslld    ymm0, ymm0, 16
      "c5f572f110",          //   vpslld    ymm1, ymm1, 16
      "c5ed72f210",          //   vpslld    ymm2, ymm2, 16
      "c5e572f310",          //   vpslld    ymm3, ymm3, 16
      "c5fde70446",          //   vmovntdq  [rsi+rax*2], ymm0
      "c5fde74c4620",        //   vmovntdq  [rsi+rax*2+0x20], ymm1
      "c5fde7544640",        //   vmovntdq  [rsi+rax*2+0x40], ymm2
      "c5fde75c4660",        //   vmovntdq  [rsi+rax*2+0x60], ymm3
      "4883c040",            //   add       rax, 64
      "4839d0",              //   cmp       rax, rdx
      "72b1",                //   jb        loop
      "0faef8",              // done: sfence               ; order the streaming stores
      "c5f877",              // vzeroupper
      "c3");                 // ret

  /**
   * {@code void f16_to_f32_stream(const uint16_t *source, float *target, int64_t count)}, the
   * same contract: {@code vcvtph2ps} widens eight halves at a time, exactly (every F16 value is a
   * float; NaN payloads as {@link Float#float16ToFloat}, which the self-check confirms). Needs
   * AVX and F16C.
   */
  private static final String F16_TO_F32_CODE = String.join("",
      "31c0",                // xor       eax, eax
      "4801d2",              // add       rdx, rdx
      "4885d2",              // test      rdx, rdx
      "743b",                // je        done
      "c4e27d130407",        // loop: vcvtph2ps ymm0, [rdi+rax]
      "c4e27d134c0710",      //   vcvtph2ps ymm1, [rdi+rax+0x10]
      "c4e27d13540720",      //   vcvtph2ps ymm2, [rdi+rax+0x20]
      "c4e27d135c0730",      //   vcvtph2ps ymm3, [rdi+rax+0x30]
      "c5fc2b0446",          //   vmovntps  [rsi+rax*2], ymm0
      "c5fc2b4c4620",        //   vmovntps  [rsi+rax*2+0x20], ymm1
      "c5fc2b544640",        //   vmovntps  [rsi+rax*2+0x40], ymm2
      "c5fc2b5c4660",        //   vmovntps  [rsi+rax*2+0x60], ymm3
      "4883c040",            //   add       rax, 64
      "4839d0",              //   cmp       rax, rdx
      "72c5",                //   jb        loop
      "0faef8",              // done: sfence
      "c5f877",              // vzeroupper
      "c3");                 // ret

  /**
   * {@code void copy_stream(const void *source, void *target, int64_t bytes)}: {@code bytes} a
   * multiple of 128, {@code target} 32-byte aligned (64 for whole cache lines). Unaligned loads,
   * streaming stores. Needs AVX.
   */
  private static final String COPY_CODE = String.join("",
      "31c0",                // xor       eax, eax          ; rax: byte offset
      "4885d2",              // test      rdx, rdx
      "7439",                // je        done
      "c5fe6f0407",          // loop: vmovdqu ymm0, [rdi+rax]
      "c5fe6f4c0720",        //   vmovdqu   ymm1, [rdi+rax+0x20]
      "c5fe6f540740",        //   vmovdqu   ymm2, [rdi+rax+0x40]
      "c5fe6f5c0760",        //   vmovdqu   ymm3, [rdi+rax+0x60]
      "c5fde70406",          //   vmovntdq  [rsi+rax], ymm0
      "c5fde74c0620",        //   vmovntdq  [rsi+rax+0x20], ymm1
      "c5fde7540640",        //   vmovntdq  [rsi+rax+0x40], ymm2
      "c5fde75c0660",        //   vmovntdq  [rsi+rax+0x60], ymm3
      "480580000000",        //   add       rax, 128
      "4839d0",              //   cmp       rax, rdx
      "72c7",                //   jb        loop
      "0faef8",              // done: sfence
      "c5f877",              // vzeroupper
      "c3");                 // ret

  /** Bytes per iteration of the copy routine. */
  private static final int COPY_STEP = 128;

  /** The same-dtype copy routine, loaded and self-checked on first use. */
  private static final class Copy {
    static final MethodHandle ROUTINE = load("streaming-store copy", COPY_CODE, List.of("avx"));
    static final boolean AVAILABLE = ROUTINE != null && selfCheck();

    private static boolean selfCheck() {
      int bytes = 1 << 16;
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment source = arena.allocate(bytes, 64);
        MemorySegment target = arena.allocate(bytes, 64);
        for (int i = 0; i < bytes; i++) {
          source.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + (i >> 8)));
        }
        boolean same = copyNative(source, 0, target, 0, bytes) == bytes && source.mismatch(target) == -1;
        if (!same) {
          Posix.reportFallback("streaming-store copy", "its output differs from its input on this processor");
        }
        return same;
      } catch (RuntimeException e) {
        Posix.reportFallback("streaming-store copy", e.toString());
        return false;
      }
    }
  }

  /** A 16-bit float type widened to F32 by one routine. */
  enum Widening {
    BF16(BF16_TO_F32_CODE, List.of("avx2"), bits -> bits << 16),
    F16(F16_TO_F32_CODE, List.of("avx", "f16c"), bits -> Float.floatToRawIntBits(Float.float16ToFloat((short) bits)));

    private final MethodHandle routine;
    private final boolean available;

    Widening(String code, List<String> neededFlags, IntUnaryOperator definition) {
      this.routine = load(name() + " -> F32 streaming-store routine", code, neededFlags);
      this.available = routine != null && selfCheck(definition);
      if (routine != null && !available) {
        Posix.reportFallback(name() + " -> F32 streaming-store routine", "its output differs from the Java"
            + " definition on this processor; the Vector API or scalar kernel runs instead");
      }
    }

    /** Whether the routine is in place and passed its self-check. */
    boolean available() {
      return available;
    }

    private boolean selfCheck(IntUnaryOperator definition) {
      int count = 1 << 16;
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment source = arena.allocate(2L * count, 64);
        MemorySegment target = arena.allocate(4L * count, 64);
        for (int i = 0; i < count; i++) {
          source.setAtIndex(SHORT, i, (short) i);
        }
        if (widenNative(source, 0, target, 0, count) != count) {
          return false;
        }
        for (int i = 0; i < count; i++) {
          if (target.getAtIndex(INT, i) != definition.applyAsInt(i)) {
            return false;
          }
        }
        return true;
      } catch (RuntimeException e) {
        return false;
      }
    }

    private long widenNative(MemorySegment source, long sourceOffset, MemorySegment target, long targetOffset, long count) {
      long bulk = count - count % STEP;
      try {
        // A fault in the staging copy just before this must not surface inside the linker's
        // acquisition of the segments below.
        Posix.deliverPendingFaults();
        for (long done = 0; done < bulk; done += MAX_ELEMENTS_PER_CALL) {
          long n = Math.min(MAX_ELEMENTS_PER_CALL, bulk - done);
          // The slices check the bounds the native code cannot.
          MemorySegment from = source.asSlice(sourceOffset + 2 * done, 2 * n);
          MemorySegment to = target.asSlice(targetOffset + 4 * done, 4 * n);
          routine.invokeExact(from, to, n);
        }
      } catch (RuntimeException | Error e) {
        throw e;
      } catch (Throwable e) {
        throw new IllegalStateException("the " + this + " -> F32 routine failed", e);
      }
      return bulk;
    }
  }

  /** Converts elements of a 16-bit type to F32 one by one (for the ends the routine leaves). */
  @FunctionalInterface
  interface ScalarWidening {
    void widen(MemorySegment source, long sourceOffset, MemorySegment target, long targetOffset, long count);
  }

  /** Read once, when the first routine loads. */
  private static final class CpuFlags {
    static final Set<String> PRESENT = cpuFlags();
  }

  private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);

  private StreamingKernels() {}

  /**
   * Widens {@code count} elements with {@code widening}'s routine if it applies here: the
   * routine is available, the output is large enough and is native, writable memory that is not
   * a file mapping. The first elements, up to where the target is 64-byte aligned, go through
   * {@code scalar}.
   *
   * @return how many elements were widened, from the first on (a routine's multiple of 32 plus
   *     the aligning head), or 0 if the routine does not apply; the caller widens the rest
   */
  static long widen(Widening widening, MemorySegment source, long sourceOffset, MemorySegment target,
      long targetOffset, long count, ScalarWidening scalar) {
    if (!applies(widening, source, target, targetOffset, count)) {
      return 0;
    }
    long head = (-(target.address() + targetOffset) & 63) / 4;
    scalar.widen(source, sourceOffset, target, targetOffset, head);
    return head + FaultSafeStaging.convert(source, sourceOffset + 2 * head, 2, target, targetOffset + 4 * head, 4,
        count - head, widening::widenNative);
  }

  /**
   * Copies {@code bytes} bytes with streaming stores if the copy routine applies here: it is
   * available, the copy is large enough and goes into native, writable memory that is not a
   * file mapping. A file mapping is read through {@link FaultSafeStaging}. The first bytes, up
   * to where the target is 64-byte aligned, are copied by the JVM.
   *
   * @return how many bytes were copied, from the first on, or 0 if the routine does not apply;
   *     the caller copies the rest
   */
  static long copy(MemorySegment source, long sourceOffset, MemorySegment target, long targetOffset, long bytes) {
    if (!copyApplies(source, target, bytes)) {
      return 0;
    }
    long head = -(target.address() + targetOffset) & 63;
    MemorySegment.copy(source, sourceOffset, target, targetOffset, head);
    return head + FaultSafeStaging.convert(source, sourceOffset + head, 1, target, targetOffset + head, 1,
        bytes - head, StreamingKernels::copyNative);
  }

  /** Whether {@link #copy} would use the routine for these arguments. */
  static boolean copyApplies(MemorySegment source, MemorySegment target, long bytes) {
    return bytes >= MIN_TARGET_BYTES && source.isNative() && target.isNative() && !target.isMapped()
        && !target.isReadOnly() && Copy.AVAILABLE;
  }

  private static long copyNative(MemorySegment source, long sourceOffset, MemorySegment target, long targetOffset, long bytes) {
    long bulk = bytes - bytes % COPY_STEP;
    try {
      Posix.deliverPendingFaults();   // as in Widening.widenNative
      for (long done = 0; done < bulk; done += MAX_BYTES_PER_CALL) {
        long n = Math.min(MAX_BYTES_PER_CALL, bulk - done);
        Copy.ROUTINE.invokeExact(source.asSlice(sourceOffset + done, n), target.asSlice(targetOffset + done, n), n);
      }
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Throwable e) {
      throw new IllegalStateException("the streaming-store copy failed", e);
    }
    return bulk;
  }

  /** Whether {@link #widen} would use the routine for these arguments. */
  static boolean applies(Widening widening, MemorySegment source, MemorySegment target, long targetOffset, long count) {
    return widening.available() && count >= MIN_TARGET_BYTES / 4 && source.isNative() && target.isNative()
        && !target.isMapped() && !target.isReadOnly() && (target.address() + targetOffset) % 4 == 0;
  }

  /** The routine, or {@code null} where it cannot run here (said once, see {@link Posix#reportFallback}). */
  private static MethodHandle load(String what, String code, List<String> neededFlags) {
    String refusal = Boolean.getBoolean("loadstone.scalar") ? "turned off by -Dloadstone.scalar=true"
        : !Boolean.parseBoolean(System.getProperty("loadstone.streaming", "true")) ? "turned off by -Dloadstone.streaming=false"
        : !Posix.isLinux() || !isX8664() ? "needs x86-64 Linux"
        : !CpuFlags.PRESENT.containsAll(neededFlags) ? "the processor lacks " + neededFlags.stream()
            .filter(flag -> !CpuFlags.PRESENT.contains(flag)).toList() + " (in /proc/cpuinfo)"
        : null;
    if (refusal != null) {
      Posix.reportFallback(what, refusal);
      return null;
    }
    try {
      Optional<MemorySegment> address = Posix.mapExecutable(HexFormat.of().parseHex(code));
      if (address.isEmpty()) {
        Posix.reportFallback(what, "no executable memory");
        return null;
      }
      return Linker.nativeLinker().downcallHandle(address.get(),
          FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG),
          Linker.Option.critical(false));
    } catch (RuntimeException e) {
      Posix.reportFallback(what, e + " (native access denied? --enable-native-access=dev.loadstone.core)");
      return null;
    }
  }

  private static boolean isX8664() {
    String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
    return arch.equals("amd64") || arch.equals("x86_64");
  }

  /** The first processor's flags in /proc/cpuinfo (empty where it cannot be read). */
  private static Set<String> cpuFlags() {
    try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
      return lines.filter(line -> line.startsWith("flags")).findFirst()
          .map(line -> Stream.of(line.substring(line.indexOf(':') + 1).trim().split("\\s+"))
              .collect(Collectors.toUnmodifiableSet()))
          .orElse(Set.of());
    } catch (IOException | UncheckedIOException | SecurityException e) {
      return Set.of();
    }
  }
}
