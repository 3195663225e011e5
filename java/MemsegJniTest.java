import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import memseg.Memseg;
import memseg.MemsegException;

/**
 * memseg from the JVM through JNI, as a host uses it: pages as direct ByteBuffers over the
 * lent memory, the same bytes through the ABI, statuses and messages of bad input, stale
 * handles after release and close, and the leak report. tests/jni.rs builds the glue and runs
 * this with the library it built; it prints one line per check group and exits non-zero on
 * the first failure.
 */
public final class MemsegJniTest {
  private static final int PAGE = 32768;

  private static void check(boolean condition, String what) {
    if (!condition) {
      throw new AssertionError("check failed: " + what);
    }
  }

  private static void expect(String status, String needle, Runnable call) {
    try {
      call.run();
    } catch (MemsegException e) {
      check(e.status().equals(status), "status " + e.status() + ", wanted " + status);
      check(e.getMessage().contains(needle), "message '" + e.getMessage() + "' has '" + needle + "'");
      return;
    }
    throw new AssertionError("no MemsegException, wanted " + status);
  }

  public static void main(String[] args) {
    System.loadLibrary("memseg_jni");
    String expected = args.length > 0 ? args[0] : null;
    if (expected != null) {
      String[] parts = expected.split("\\.");
      int number = Integer.parseInt(parts[0]) * 1000000 + Integer.parseInt(parts[1]) * 1000
          + Integer.parseInt(parts[2]);
      check(Memseg.version() == number, "version " + Memseg.version() + " is " + expected);
    }

    long manager = Memseg.managerNew(4L * PAGE, true);
    long lease = Memseg.leaseOpen(manager, "jvm", 2);
    long page = Memseg.leaseAllocate(lease);
    ByteBuffer bytes = Memseg.buffer(page);
    check(bytes.isDirect() && bytes.capacity() == PAGE, "a direct buffer of one page");
    check(bytes.order() == ByteOrder.BIG_ENDIAN, "big-endian, as Java's default");
    bytes.putLong(PAGE - 8, 0x0102030405060708L);
    check(Memseg.getLongBE(page, PAGE - 8) == 0x0102030405060708L, "the same bytes via the ABI");
    bytes.order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L);
    check(Memseg.getLongBE(page, 0) == 0x0100000000000000L, "little-endian from Java");
    System.out.println("ok pages are direct buffers over the lent memory");

    expect("MEMSEG_STATUS_OUT_OF_BOUNDS", "exceeds", () -> Memseg.getLongBE(page, PAGE - 7));
    expect("MEMSEG_STATUS_OUT_OF_BOUNDS", "exceeds", () -> Memseg.getLongBE(page, -1));
    long other = Memseg.leaseAllocate(lease);
    expect("MEMSEG_STATUS_QUOTA_EXHAUSTED", "quota", () -> Memseg.leaseAllocate(lease));
    check(Memseg.managerStatsJson(manager).contains("\"name\":\"jvm\",\"pages\":2"), "stats");
    Memseg.leaseRelease(lease, page);
    expect("MEMSEG_STATUS_STALE_HANDLE", "stale", () -> Memseg.leaseRelease(lease, page));
    expect("MEMSEG_STATUS_STALE_HANDLE", "stale", () -> Memseg.getLongBE(page, 0));
    expect("MEMSEG_STATUS_INVALID_HANDLE", "", () -> Memseg.leaseAllocate(0));
    expect("MEMSEG_STATUS_WRONG_HANDLE_KIND", "not a lease", () -> Memseg.leaseAllocate(other));
    expect("MEMSEG_STATUS_NULL_ARGUMENT", "name", () -> Memseg.leaseOpen(manager, null, 0));
    expect("MEMSEG_STATUS_INVALID_ARGUMENT", "", () -> Memseg.managerNew(100, false));
    System.out.println("ok bad input throws MemsegException with the status and the message");

    Memseg.leaseRelease(lease, other);
    Memseg.leaseClose(lease);
    expect("MEMSEG_STATUS_STALE_HANDLE", "already freed", () -> Memseg.leaseAllocate(lease));
    long leaky = Memseg.leaseOpen(manager, "left open", 0);
    long held = Memseg.leaseAllocate(leaky);
    String report = Memseg.managerClose(manager);
    check(report.contains("\"name\":\"left open\",\"pages\":1"), "the leak report: " + report);
    expect("MEMSEG_STATUS_STALE_HANDLE", "stale", () -> Memseg.getLongBE(held, 0));
    expect("MEMSEG_STATUS_STALE_HANDLE", "", () -> Memseg.managerClose(manager));
    System.out.println("ok closing reports the leases left open and stales their pages");
  }
}
