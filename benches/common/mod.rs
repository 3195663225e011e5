//! What the benchmarks share: medians, the machine's load, and finding and compiling against
//! the library cargo built for them. Each bench target includes it with
//! `#[path = "common/mod.rs"] mod common;` and uses what it needs.

#![allow(dead_code)] // every bench uses its own subset

use std::path::PathBuf;
use std::process::Command;

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The 1, 5 and 15 minute load averages (Linux): the machine is shared, so say how busy.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// The target triple of the toolchain that built this bench (benches run on the host).
pub fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .arg("-vV")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8(out.stdout)
                .ok()?
                .lines()
                .find_map(|line| {
                    line.strip_prefix("host: ")
                        .map(|triple| triple.trim().to_string())
                })
        })
        .unwrap_or_else(|| format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
}

/// The shared library cargo built together with this executable: in `target/<profile>/deps`
/// beside it, or (after a plain `cargo build`) one level up.
pub fn find_library() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let deps = exe.parent().ok_or("the executable has no directory")?;
    let candidates = [
        deps.join("libmemseg.so"),
        deps.parent()
            .map_or_else(PathBuf::new, |p| p.join("libmemseg.so")),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "libmemseg.so not found in {} or its parent; run `cargo build --release` first",
                deps.display()
            )
        })
}
