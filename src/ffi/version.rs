//! The library's version at run time; the header has the same numbers as macros.

use std::ffi::c_char;

const fn parse_decimal(text: &str) -> u32 {
    let bytes = text.as_bytes();
    let mut value = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "version part is not a number");
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    value
}

/// Major version of this build of the library.
pub(crate) const VERSION_MAJOR: u32 = parse_decimal(env!("CARGO_PKG_VERSION_MAJOR"));
/// Minor version of this build of the library.
pub(crate) const VERSION_MINOR: u32 = parse_decimal(env!("CARGO_PKG_VERSION_MINOR"));
/// Patch version of this build of the library.
pub(crate) const VERSION_PATCH: u32 = parse_decimal(env!("CARGO_PKG_VERSION_PATCH"));
/// `major * 1000000 + minor * 1000 + patch`, as `MEMSEG_VERSION_NUMBER` in the header.
pub(crate) const VERSION_NUMBER: u32 =
    VERSION_MAJOR * 1_000_000 + VERSION_MINOR * 1_000 + VERSION_PATCH;

const VERSION_STRING: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The version of the library linked at run time, as
/// `major * 1000000 + minor * 1000 + patch`; compare with `MEMSEG_VERSION_NUMBER` from the
/// header the program was compiled with. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_version() -> u32 {
    crate::ffi_boundary_value!(0, { VERSION_NUMBER })
}

/// The version of the library linked at run time as text, for example `"0.1.0"`; the same
/// as `MEMSEG_VERSION_STRING` in the header. Static: never free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_version_string() -> *const c_char {
    crate::ffi_boundary_value!(c"".as_ptr(), { VERSION_STRING.as_ptr().cast() })
}
