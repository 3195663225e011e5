//! The C ABI from Python: `python/test_memseg.py` (unittest) drives `python/memseg.py`, a
//! ctypes binding, against the `libmemseg.so` this `cargo test` built: segments as
//! memoryviews over the lent memory, typed access through the ABI, managers, leases, the
//! external sorter (spilling, and on a lease), the statuses and messages of bad input, and
//! the leak report. Without `python3` the test says
//! why it skips and passes; CI has one.

#![cfg(not(miri))]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn python_drives_the_library_through_ctypes() {
    let exe = std::env::current_exe().expect("the test executable's path");
    let library = exe
        .parent()
        .expect("the test executable is in target/<profile>/deps")
        .join("libmemseg.so");
    assert!(
        library.is_file(),
        "{} is missing: cargo builds the cdylib for the integration tests",
        library.display()
    );
    let python_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python");
    let output = match Command::new("python3")
        .arg(python_dir.join("test_memseg.py"))
        .env("PYTHONPATH", &python_dir)
        .env("MEMSEG_LIBRARY", &library)
        .env("MEMSEG_EXPECTED_VERSION", env!("CARGO_PKG_VERSION"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            eprintln!("python3 not available ({e}): skipping the ctypes test");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python/test_memseg.py failed:\n{stderr}"
    );
    let ran: usize = stderr
        .lines()
        .find_map(|line| line.strip_prefix("Ran ")?.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(
        ran > 0 && stderr.contains("OK") && !stderr.contains("skipped"),
        "every Python test ran, none skipped:\n{stderr}"
    );
}
