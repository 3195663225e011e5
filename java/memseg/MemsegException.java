package memseg;

/** A failed memseg call: the status name (as memseg_status_name() gives it) and the message. */
public final class MemsegException extends RuntimeException {
  private final String status;

  public MemsegException(String status, String message) {
    super(status + ": " + message);
    this.status = status;
  }

  /** The status name, for example "MEMSEG_STATUS_QUOTA_EXHAUSTED". */
  public String status() {
    return status;
  }
}
