//! The error type of the safe Rust API.
//!
//! Each variant is one distinct cause; the C ABI maps each to its own
//! `memseg_status` code, and its `Display` text becomes the thread's last error
//! message, so it names the values involved (offset, bound, size).

/// Why an operation failed. Nothing was changed when an operation returns an error.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An argument is outside what the operation accepts (zero size, unknown flag bits, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// `offset + len` is past the end of a region of `size` bytes (or overflows `usize`).
    #[error("out of bounds: offset {offset} + length {len} exceeds size {size}")]
    OutOfBounds {
        /// First byte the access would touch.
        offset: usize,
        /// Number of bytes the access would touch.
        len: usize,
        /// Size of the region accessed.
        size: usize,
    },

    /// The allocator or the operating system refused memory.
    #[error("allocation of {size} bytes failed: {reason}")]
    AllocationFailed {
        /// Bytes requested.
        size: usize,
        /// What the allocator or the operating system said.
        reason: String,
    },

    /// The memory manager's budget cannot serve the request; nothing was allocated.
    #[error("memory budget exhausted: {0}")]
    BudgetExhausted(String),

    /// The lease's own page quota cannot serve the request; nothing was allocated.
    #[error("quota exhausted: {0}")]
    QuotaExhausted(String),

    /// Nothing is available right now; a non-blocking request returns at once instead of waiting.
    #[error("would block: {0}")]
    WouldBlock(String),

    /// A blocking request waited for its whole timeout without being served.
    #[error("timed out: {0}")]
    Timeout(String),

    /// A read reaches past the end of the data; nothing was consumed.
    #[error("end of data: {0}")]
    EndOfData(String),

    /// A view's source of segments has no more to give; what was written stays readable.
    #[error("out of segments: {0}")]
    OutOfSegments(String),

    /// A file operation failed; the message names the file and the operating system's error.
    #[error("I/O error: {0}")]
    Io(String),

    /// The disk (or the file system's quota) is full; the data being written stays in memory.
    #[error("disk full: {0}")]
    DiskFull(String),

    /// Stored data failed a check (checksum, length, truncation) and was not read as data.
    #[error("corrupted data: {0}")]
    Corrupted(String),

    /// A write through a read-only view of memory (such as a read-only buffer slice).
    #[error("read-only: {0}")]
    ReadOnly(String),

    /// The object cannot be ended yet: things it handed out are still in use (the message lists them).
    #[error("in use: {0}")]
    InUse(String),

    /// The object has been closed or destroyed by its owner and takes no more requests.
    #[error("closed: {0}")]
    Closed(String),

    /// Input ends inside a record: give more data, then ask again.
    #[error("need more data: {0}")]
    NeedMoreData(String),
}

/// Result alias of the safe Rust API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}
