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
}

/// Result alias of the safe Rust API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}
