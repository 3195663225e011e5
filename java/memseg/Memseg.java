package memseg;

import java.nio.ByteBuffer;

/**
 * memseg from the JVM through JNI: the C ABI's managers, leases and pages, with a page's bytes
 * as a direct {@link ByteBuffer} over the memory memseg lends (no call per access, and the
 * buffer's big-endian order is memseg's {@code _be} accessors' order).
 *
 * <p>Handles are the C ABI's 64-bit handle values, as {@code long}. A failing call throws
 * {@link MemsegException} with the status name and the library's message. A page's buffer is
 * valid until the page is released or its lease or manager is closed; using it after that is
 * the one misuse the library cannot catch (as with the C pointer it wraps).
 *
 * <p>Load the glue first: {@code System.loadLibrary("memseg_jni")} (it links libmemseg).
 */
public final class Memseg {
  private Memseg() {}

  /** The linked library's version, major * 1000000 + minor * 1000 + patch. */
  public static native int version();

  /** A manager of {@code totalBytes} in pages of 32 KiB, off-heap; preallocated or lazy. */
  public static native long managerNew(long totalBytes, boolean preallocate);

  /** Closes a manager and returns its leak report (JSON naming the leases left open). */
  public static native String managerClose(long manager);

  /** The manager's state as JSON. */
  public static native String managerStatsJson(long manager);

  /** Opens a lease named {@code name} with a quota of {@code quotaPages} (0: none). */
  public static native long leaseOpen(long manager, String name, long quotaPages);

  /** Allocates one page; returns its segment handle. */
  public static native long leaseAllocate(long lease);

  /** Gives a page back; its handle (and its buffer) are stale from then on. */
  public static native void leaseRelease(long lease, long page);

  /** Closes a lease, taking back every page it holds. */
  public static native void leaseClose(long lease);

  /** The page's bytes as a direct buffer over its memory. */
  public static native ByteBuffer buffer(long segment);

  /** The big-endian u64 at {@code offset}, through one ABI call (checks the handle). */
  public static native long getLongBE(long segment, long offset);
}
