//! The boundary every exported function runs inside: it catches panics, turns errors
//! into status codes and records the calling thread's last error message.

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::status::{FfiError, memseg_status};

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs the body of a status-returning C function.
///
/// Expands inside the function body (not around the function) so that cbindgen sees a
/// plain `extern "C" fn`. The body is a block evaluating to `Result<(), FfiError>`.
#[macro_export]
#[doc(hidden)]
macro_rules! ffi_boundary {
    ($body:block) => {
        $crate::ffi::boundary::run(
            || -> ::std::result::Result<(), $crate::ffi::status::FfiError> { $body },
        )
    };
}

/// Runs the body of a C function that returns a value instead of a status; `fallback` is
/// returned if the body panics.
#[macro_export]
#[doc(hidden)]
macro_rules! ffi_boundary_value {
    ($fallback:expr, $body:block) => {
        $crate::ffi::boundary::run_value($fallback, || $body)
    };
}

#[inline(always)]
pub(crate) fn run(body: impl FnOnce() -> Result<(), FfiError>) -> memseg_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => memseg_status::Ok,
        Ok(Err(error)) => fail(error),
        Err(payload) => fail(FfiError::Panic(panic_text(payload.as_ref()))),
    }
}

#[inline(always)]
pub(crate) fn run_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            fail(FfiError::Panic(panic_text(payload.as_ref())));
            fallback
        }
    }
}

#[cold]
#[inline(never)]
fn fail(error: FfiError) -> memseg_status {
    let status = error.status();
    let message = error.message();
    // `try_with`: during thread teardown the slot may be gone; the status still tells.
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = message);
    status
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_string()
    }
}

/// The calling thread's last error message, for Rust callers of the C functions.
pub fn last_error_message() -> String {
    LAST_ERROR.with(|last| last.borrow().clone())
}

/// Copies the calling thread's last error message into `buf` and returns its length in
/// bytes (without the terminating NUL).
///
/// The message describes the most recent call on this thread that returned an error status
/// (which offset, which bound, which handle); successful calls leave it unchanged, and it is
/// empty before the first error. At most `buf_len - 1` bytes are copied, always followed by a
/// NUL when `buf_len > 0`; a return value `>= buf_len` means the message was truncated, so call
/// again with a buffer of the returned length + 1. `buf` may be NULL when `buf_len` is 0, to
/// ask for the length. The message is copied: the buffer is the caller's. Thread-safe (each
/// thread has its own message).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_last_error_message(buf: *mut c_char, buf_len: usize) -> usize {
    crate::ffi_boundary_value!(0, {
        LAST_ERROR.with(|last| {
            let message = last.borrow();
            if !buf.is_null() && buf_len > 0 {
                let n = message.len().min(buf_len - 1);
                // SAFETY: the caller promises `buf` is writable for `buf_len` bytes and
                // `n + 1 <= buf_len`; the message is a separate Rust allocation.
                unsafe {
                    std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), n);
                    buf.add(n).write(0);
                }
            }
            message.len()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// The C function's view of the same message.
    fn c_message() -> String {
        let mut buf = [0 as c_char; 256];
        // SAFETY: `buf` is writable for its length.
        let len = unsafe { memseg_last_error_message(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: the call NUL-terminated what it wrote.
        let text = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(len, text.to_bytes().len(), "not truncated in this buffer");
        text.to_str().unwrap().to_string()
    }

    #[test]
    fn a_panic_inside_the_boundary_becomes_the_panic_status_with_its_message() {
        let status = run(|| panic!("formatted {} panic", 42));
        assert_eq!(status, memseg_status::Panic);
        let message = last_error_message();
        assert_eq!(
            message,
            "internal error (panic caught at the boundary): formatted 42 panic"
        );
        assert_eq!(c_message(), message);

        assert_eq!(run(|| panic!("static text")), memseg_status::Panic);
        assert!(last_error_message().ends_with(": static text"));

        let status = run(|| std::panic::panic_any(7u32));
        assert_eq!(status, memseg_status::Panic);
        assert!(last_error_message().ends_with(": non-text panic payload"));
    }

    #[test]
    fn the_boundary_macros_catch_panics() {
        let status = crate::ffi_boundary!({ panic!("inside ffi_boundary") });
        assert_eq!(status, memseg_status::Panic);
        assert!(last_error_message().ends_with(": inside ffi_boundary"));

        let value: u32 = crate::ffi_boundary_value!(5, { panic!("inside ffi_boundary_value") });
        assert_eq!(value, 5, "the fallback is returned");
        assert!(last_error_message().ends_with(": inside ffi_boundary_value"));
        assert_eq!(crate::ffi_boundary_value!(5, { 9u32 }), 9);
    }

    #[test]
    fn errors_become_their_status_and_message_and_success_keeps_the_last_one() {
        let status = run(|| Err(FfiError::NullArgument("out_thing")));
        assert_eq!(status, memseg_status::NullArgument);
        assert_eq!(last_error_message(), "argument `out_thing` is NULL");

        let status = run(|| {
            Err(Error::OutOfBounds {
                offset: 5,
                len: 4,
                size: 8,
            }
            .into())
        });
        assert_eq!(status, memseg_status::OutOfBounds);
        let message = last_error_message();
        assert_eq!(message, "out of bounds: offset 5 + length 4 exceeds size 8");

        assert_eq!(run(|| Ok(())), memseg_status::Ok);
        assert_eq!(run_value(1, || 2), 2);
        assert_eq!(
            last_error_message(),
            message,
            "success leaves the message alone"
        );
    }

    #[test]
    fn the_boundary_stays_usable_after_a_panic() {
        for round in 0..3 {
            assert_eq!(run(|| panic!("round {round}")), memseg_status::Panic);
            assert_eq!(run(|| Ok(())), memseg_status::Ok);
            assert!(last_error_message().ends_with(&format!("round {round}")));
        }
    }
}
