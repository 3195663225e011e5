//! Status codes returned by every fallible function, and the errors behind them.

use std::ffi::{CStr, c_char};

use super::handle::HandleError;
use crate::error::Error;

/// The result of a memseg call: `MEMSEG_STATUS_OK` (0) on success, otherwise the cause.
///
/// Codes are stable: a code is never renumbered or reused. `memseg_status_name()` names a
/// code; `memseg_last_error_message()` tells what exactly went wrong on this thread.
#[allow(non_camel_case_types)]
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum memseg_status {
    /// The call succeeded.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument is outside what the call accepts (zero size, unknown flags, overlapping ranges…).
    InvalidArgument = 2,
    /// An offset and length reach past the end of a segment or buffer (or overflow `size_t`).
    OutOfBounds = 3,
    /// A handle that was never issued (including a zeroed handle).
    InvalidHandle = 4,
    /// A handle whose object was already freed or released.
    StaleHandle = 5,
    /// A handle of another kind of object than the call takes.
    WrongHandleKind = 6,
    /// The allocator or the operating system refused memory.
    AllocationFailed = 7,
    /// A bug inside memseg was caught at the boundary; the call had no effect that can be relied on.
    Panic = 8,
    /// The memory manager's budget cannot serve the request; nothing was allocated.
    BudgetExhausted = 9,
    /// The lease's own page quota cannot serve the request; nothing was allocated.
    QuotaExhausted = 10,
    /// Nothing is available right now; a non-blocking request returns at once instead of waiting.
    WouldBlock = 11,
    /// A blocking request waited for its whole timeout without being served.
    Timeout = 12,
    /// A read reaches past the end of the data; nothing was consumed.
    EndOfData = 13,
    /// A view's source of segments has no more to give; what was written stays readable.
    OutOfSegments = 14,
    /// A file operation failed; the message names the file and the operating system's error.
    Io = 15,
    /// The disk (or the file system's quota) is full; the data being written stays in memory.
    DiskFull = 16,
    /// Stored data failed a check (checksum, length, truncation) and was not read as data.
    Corrupted = 17,
    /// A write through a read-only view of memory (such as a read-only buffer slice).
    ReadOnly = 18,
    /// The object cannot be ended yet: things it handed out are still in use (the message lists them).
    InUse = 19,
    /// The object has been closed or destroyed by its owner and takes no more requests.
    Closed = 20,
    /// Input ends inside a record: give more data, then ask again.
    NeedMoreData = 21,
}

/// Every status, in code order.
pub const ALL_STATUSES: [memseg_status; 22] = [
    memseg_status::Ok,
    memseg_status::NullArgument,
    memseg_status::InvalidArgument,
    memseg_status::OutOfBounds,
    memseg_status::InvalidHandle,
    memseg_status::StaleHandle,
    memseg_status::WrongHandleKind,
    memseg_status::AllocationFailed,
    memseg_status::Panic,
    memseg_status::BudgetExhausted,
    memseg_status::QuotaExhausted,
    memseg_status::WouldBlock,
    memseg_status::Timeout,
    memseg_status::EndOfData,
    memseg_status::OutOfSegments,
    memseg_status::Io,
    memseg_status::DiskFull,
    memseg_status::Corrupted,
    memseg_status::ReadOnly,
    memseg_status::InUse,
    memseg_status::Closed,
    memseg_status::NeedMoreData,
];

impl memseg_status {
    /// The code's constant name as it appears in the C header.
    pub fn name(self) -> &'static CStr {
        match self {
            memseg_status::Ok => c"MEMSEG_STATUS_OK",
            memseg_status::NullArgument => c"MEMSEG_STATUS_NULL_ARGUMENT",
            memseg_status::InvalidArgument => c"MEMSEG_STATUS_INVALID_ARGUMENT",
            memseg_status::OutOfBounds => c"MEMSEG_STATUS_OUT_OF_BOUNDS",
            memseg_status::InvalidHandle => c"MEMSEG_STATUS_INVALID_HANDLE",
            memseg_status::StaleHandle => c"MEMSEG_STATUS_STALE_HANDLE",
            memseg_status::WrongHandleKind => c"MEMSEG_STATUS_WRONG_HANDLE_KIND",
            memseg_status::AllocationFailed => c"MEMSEG_STATUS_ALLOCATION_FAILED",
            memseg_status::Panic => c"MEMSEG_STATUS_PANIC",
            memseg_status::BudgetExhausted => c"MEMSEG_STATUS_BUDGET_EXHAUSTED",
            memseg_status::QuotaExhausted => c"MEMSEG_STATUS_QUOTA_EXHAUSTED",
            memseg_status::WouldBlock => c"MEMSEG_STATUS_WOULD_BLOCK",
            memseg_status::Timeout => c"MEMSEG_STATUS_TIMEOUT",
            memseg_status::EndOfData => c"MEMSEG_STATUS_END_OF_DATA",
            memseg_status::OutOfSegments => c"MEMSEG_STATUS_OUT_OF_SEGMENTS",
            memseg_status::Io => c"MEMSEG_STATUS_IO",
            memseg_status::DiskFull => c"MEMSEG_STATUS_DISK_FULL",
            memseg_status::Corrupted => c"MEMSEG_STATUS_CORRUPTED",
            memseg_status::ReadOnly => c"MEMSEG_STATUS_READ_ONLY",
            memseg_status::InUse => c"MEMSEG_STATUS_IN_USE",
            memseg_status::Closed => c"MEMSEG_STATUS_CLOSED",
            memseg_status::NeedMoreData => c"MEMSEG_STATUS_NEED_MORE_DATA",
        }
    }

    /// The status with code `code`, if there is one.
    pub fn from_code(code: i32) -> Option<memseg_status> {
        ALL_STATUSES.get(usize::try_from(code).ok()?).copied()
    }
}

/// Names a status code, for logs: `"MEMSEG_STATUS_OUT_OF_BOUNDS"` for 3, and
/// `"MEMSEG_STATUS_UNKNOWN"` for a number that is not a status.
///
/// Takes an `int32_t` so that any number is safe to pass. The string is static: never free it.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_status_name(code: i32) -> *const c_char {
    crate::ffi_boundary_value!(c"MEMSEG_STATUS_PANIC".as_ptr(), {
        memseg_status::from_code(code)
            .map_or(c"MEMSEG_STATUS_UNKNOWN", memseg_status::name)
            .as_ptr()
    })
}

/// Everything a C call can fail with; each maps to one status.
#[derive(Debug)]
pub(crate) enum FfiError {
    Core(Error),
    Handle(HandleError),
    NullArgument(&'static str),
    Panic(String),
}

impl From<Error> for FfiError {
    #[cold]
    fn from(e: Error) -> Self {
        FfiError::Core(e)
    }
}

impl From<HandleError> for FfiError {
    #[cold]
    fn from(e: HandleError) -> Self {
        FfiError::Handle(e)
    }
}

impl FfiError {
    pub(crate) fn status(&self) -> memseg_status {
        match self {
            FfiError::Core(Error::InvalidArgument(_)) => memseg_status::InvalidArgument,
            FfiError::Core(Error::OutOfBounds { .. }) => memseg_status::OutOfBounds,
            FfiError::Core(Error::AllocationFailed { .. }) => memseg_status::AllocationFailed,
            FfiError::Core(Error::BudgetExhausted(_)) => memseg_status::BudgetExhausted,
            FfiError::Core(Error::QuotaExhausted(_)) => memseg_status::QuotaExhausted,
            FfiError::Core(Error::WouldBlock(_)) => memseg_status::WouldBlock,
            FfiError::Core(Error::Timeout(_)) => memseg_status::Timeout,
            FfiError::Core(Error::EndOfData(_)) => memseg_status::EndOfData,
            FfiError::Core(Error::OutOfSegments(_)) => memseg_status::OutOfSegments,
            FfiError::Core(Error::DiskFull(_)) => memseg_status::DiskFull,
            FfiError::Core(Error::Corrupted(_)) => memseg_status::Corrupted,
            FfiError::Core(Error::ReadOnly(_)) => memseg_status::ReadOnly,
            FfiError::Core(Error::InUse(_)) => memseg_status::InUse,
            FfiError::Core(Error::Closed(_)) => memseg_status::Closed,
            FfiError::Core(Error::NeedMoreData(_)) => memseg_status::NeedMoreData,
            FfiError::Core(Error::Io(_)) => memseg_status::Io,
            FfiError::Handle(HandleError::Invalid(_)) => memseg_status::InvalidHandle,
            FfiError::Handle(HandleError::Stale(_)) => memseg_status::StaleHandle,
            FfiError::Handle(HandleError::WrongKind(_)) => memseg_status::WrongHandleKind,
            FfiError::NullArgument(_) => memseg_status::NullArgument,
            FfiError::Panic(_) => memseg_status::Panic,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            FfiError::Core(e) => e.to_string(),
            FfiError::Handle(e) => e.to_string(),
            FfiError::NullArgument(name) => format!("argument `{name}` is NULL"),
            FfiError::Panic(what) => {
                format!("internal error (panic caught at the boundary): {what}")
            }
        }
    }
}
