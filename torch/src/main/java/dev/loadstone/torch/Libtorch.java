package dev.loadstone.torch;

import java.util.Locale;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

/**
 * The native libtorch of the JavaCPP presets: loading it safely, and the devices it sees.
 *
 * <pre>{@code
 * Libtorch.load();                                  // first, before any org.bytedeco.pytorch class
 * Device gpu = Libtorch.device("cuda:0");           // or an exception that says why not
 * }</pre>
 *
 * <p>Every entry point of this package calls {@link #load()} itself. Call it explicitly only
 * when your own code touches {@code org.bytedeco.pytorch} classes first.
 */
public final class Libtorch {
  private Libtorch() {}

  private static volatile String platform;

  /**
   * Loads libtorch (once) and returns the JavaCPP platform it was loaded for, e.g.
   * {@code linux-x86_64}. A failed load may be retried.
   *
   * @throws UnsatisfiedLinkError if the native jar of this platform cannot be found, with what
   *     to put on the class or module path
   */
  public static String load() {
    String loaded = platform;
    return loaded != null ? loaded : loadOnce();
  }

  private static synchronized String loadOnce() {
    if (platform != null) {
      return platform;
    }
    String name = Loader.getPlatform();
    String resources = "/org/bytedeco/pytorch/" + name + "/";
    try {
      // Extracts the presets' own libraries to JavaCPP's cache before anything loads, so that
      // a libtorch installed on the system cannot be mixed in (which crashes the JVM).
      Loader.cacheResources(torch.class, resources);
      Loader.load(torch.class);
    } catch (java.io.IOException | UnsatisfiedLinkError e) {
      UnsatisfiedLinkError error = new UnsatisfiedLinkError("cannot load libtorch for " + name + " ("
          + e.getMessage() + "): it comes from org.bytedeco:pytorch with classifier " + name
          + "; on the module path, also --add-modules org.bytedeco.pytorch." + name.replace('-', '.')
          + ",org.bytedeco.openblas." + name.replace('-', '.') + ",org.bytedeco.javacpp." + name.replace('-', '.'));
      error.initCause(e);
      throw error;
    }
    platform = name;
    return name;
  }

  /** The number of CUDA devices libtorch sees: 0 for a CPU-only build or a machine without one. */
  public static int cudaDevices() {
    load();
    return torch.cuda_device_count();
  }

  /**
   * The device of this name: {@code cpu}, {@code cuda} (device 0) or {@code cuda:N}.
   *
   * @throws IllegalArgumentException for another name, or a CUDA device libtorch does not see
   *     (no GPU, or the CPU-only native jar: the GPU build is the {@code linux-x86_64-gpu}
   *     classifier plus the CUDA presets)
   */
  public static Device device(String name) {
    load();
    String lower = name.strip().toLowerCase(Locale.ROOT);
    if (lower.equals("cpu")) {
      return new Device(torch.DeviceType.CPU);
    }
    if (lower.equals("cuda") || lower.matches("cuda:\\d{1,3}")) {
      int index = lower.equals("cuda") ? 0 : Integer.parseInt(lower.substring(5));
      int devices = cudaDevices();
      if (index >= devices) {
        throw new IllegalArgumentException("device " + lower + " requested, but libtorch sees "
            + (devices == 0 ? "no CUDA device" : devices + " CUDA device(s)")
            + (torch.cuda_is_available() ? "" : " (no GPU here, or a CPU-only libtorch: the GPU build is"
                + " org.bytedeco:pytorch with classifier " + Loader.getPlatform() + "-gpu plus the CUDA presets)"));
      }
      return new Device(torch.DeviceType.CUDA, (byte) index);
    }
    throw new IllegalArgumentException("unknown device '" + name + "': use cpu, cuda or cuda:N");
  }
}
