//! Segment benchmarks (see BENCHMARKS.md): `cargo bench --bench segment_access`.
//!
//! Part 1, the C side: compiles `benches/segment_access.c` with the `cc` crate's compiler
//! against the shared library cargo has just built for this bench (`libmemseg.so`, found
//! beside this executable), twice — plain `-O3`, and `-O3` with the auto-vectorizer off, so
//! that the plain-loop baselines cannot use SIMD that the bounds-checked inline accessors
//! cannot — and runs both, passing their output through. No `-march`: the figures are for
//! the portable x86-64 baseline (SSE2) that a distributed build gets.
//!
//! Part 2, the Rust side: `Segment::get`/`Segment::put` in a loop against a plain slice loop
//! over the same segments, measured in this process.
//!
//! Every figure is measured in the same run as its baseline and printed with the ratio;
//! nothing asserts a time. Without `--bench` (as `cargo test --benches` runs it) everything
//! runs once on a few segments, as a smoke test of the programs and their checksums.

use std::hint::black_box;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use memseg::{ByteOrder, OffHeapOptions, Segment};

#[path = "common/mod.rs"]
mod common;
use common::{find_library, host_triple, load_average, median};

const SEGMENT_SIZE: usize = 32 * 1024;
const WORDS: usize = SEGMENT_SIZE / 8;

struct Config {
    segments: usize,
    rounds: usize,
    smoke: bool,
}

fn main() -> ExitCode {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let config = if smoke {
        Config {
            segments: 64,
            rounds: 1,
            smoke,
        }
    } else {
        Config {
            segments: 16384,
            rounds: 9,
            smoke,
        }
    };
    if smoke {
        println!("segment_access: smoke run (no --bench): tiny sizes, figures mean nothing");
    }
    let start = load_average();
    println!(
        "machine: {}, {} CPUs; load average at start: {start}",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let mut ok = true;
    match run_c(&config) {
        Ok(passed) => ok &= passed,
        Err(e) => {
            eprintln!("segment_access: the C benchmark could not run: {e}");
            ok = false;
        }
    }
    ok &= run_rust(&config);
    let end = load_average();
    println!("\nload average at end: {end}");
    // The one-minute load: before the run nothing of ours was running, at the end this run
    // itself counts 1. Anything beyond that competed for the two CPUs.
    let one_minute = |l: &str| {
        l.split_whitespace()
            .next()
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(f64::INFINITY)
    };
    if one_minute(&start) >= 0.7 || one_minute(&end) >= 1.7 {
        println!(
            "note: other processes were running; ratios (measured side by side) hold better than \
             absolute figures"
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The CPU's model name (Linux), for the record.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

// ---- C --------------------------------------------------------------------------------------

/// Compiles `benches/segment_access.c` into `out`, with the vectorizer on or off.
fn compile_c(lib_dir: &Path, out: &Path, vectorize: bool) -> Result<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let host = host_triple();
    let compiler = cc::Build::new()
        .target(&host)
        .host(&host)
        .opt_level(3)
        .debug(false)
        .cargo_metadata(false)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .try_get_compiler()
        .map_err(|e| format!("no C compiler: {e}"))?;
    let mut flavour = String::from("-O3");
    let mut cmd = compiler.to_command();
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]);
    if !vectorize {
        let flags: &[&str] = if compiler.is_like_clang() {
            &["-fno-vectorize", "-fno-slp-vectorize"]
        } else {
            &["-fno-tree-vectorize"]
        };
        cmd.args(flags);
        flavour = format!("{flavour} {}", flags.join(" "));
    }
    let name = compiler
        .path()
        .file_name()
        .map_or("cc".into(), |n| n.to_string_lossy().into_owned());
    let version = Command::new(compiler.path())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or(name);
    let description = format!("{version}, {flavour}, no -march");
    cmd.arg(format!("-DBENCH_FLAVOUR=\"{description}\""))
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("benches/segment_access.c"))
        .arg("-o")
        .arg(out)
        .arg("-L")
        .arg(lib_dir)
        .arg("-lmemseg")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()));
    let status = cmd.status().map_err(|e| format!("running {cmd:?}: {e}"))?;
    if !status.success() {
        return Err(format!("{cmd:?} failed: {status}"));
    }
    Ok(description)
}

/// Builds and runs the C benchmark in both flavours; `Ok(false)` if a run failed its checks.
fn run_c(config: &Config) -> Result<bool, String> {
    let library = find_library()?.canonicalize().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    // The library's soname is libmemseg.so.0: the loader looks for that name (rpath), the
    // linker for libmemseg.so (-lmemseg).
    for name in ["libmemseg.so", "libmemseg.so.0"] {
        std::os::unix::fs::symlink(&library, dir.path().join(name))
            .map_err(|e| format!("symlink {name}: {e}"))?;
    }
    println!("library under test: {}", library.display());
    let mut ok = true;
    for vectorize in [true, false] {
        let exe = dir
            .path()
            .join(if vectorize { "vectorized" } else { "scalar" });
        compile_c(dir.path(), &exe, vectorize)?;
        println!();
        let status = Command::new(&exe)
            .arg(config.segments.to_string())
            .arg(config.rounds.to_string())
            .status()
            .map_err(|e| format!("running {}: {e}", exe.display()))?;
        if !status.success() {
            eprintln!("segment_access: {} failed: {status}", exe.display());
            ok = false;
        }
    }
    Ok(ok)
}

// ---- Rust -----------------------------------------------------------------------------------

/// The words of a segment as a plain slice (segments are page aligned).
fn words(segment: &Segment) -> &[u64] {
    let (head, words, tail) = {
        // SAFETY: any bit pattern is a valid u64; `align_to` only splits at alignment.
        unsafe { segment.as_slice().align_to::<u64>() }
    };
    assert!(head.is_empty() && tail.is_empty());
    words
}

fn words_mut(segment: &mut Segment) -> &mut [u64] {
    // SAFETY: as in `words`.
    let (head, words, tail) = unsafe { segment.as_mut_slice().align_to_mut::<u64>() };
    assert!(head.is_empty() && tail.is_empty());
    words
}

fn get_slice(segments: &[Segment]) -> u64 {
    let mut sum = 0u64;
    for segment in segments {
        for &w in words(segment) {
            sum = sum.wrapping_add(w);
        }
    }
    sum
}

fn get_api(segments: &[Segment]) -> u64 {
    let mut sum = 0u64;
    for segment in segments {
        let mut offset = 0;
        while offset < segment.size() {
            let value: u64 = segment
                .get(offset, ByteOrder::Native)
                .expect("offset in bounds");
            sum = sum.wrapping_add(value);
            offset += 8;
        }
    }
    sum
}

fn put_slice(segments: &mut [Segment], seed: u64) {
    for (s, segment) in segments.iter_mut().enumerate() {
        let base = seed.wrapping_add((s * WORDS) as u64);
        for (i, w) in words_mut(segment).iter_mut().enumerate() {
            *w = base.wrapping_add(i as u64);
        }
    }
}

fn put_api(segments: &mut [Segment], seed: u64) {
    for (s, segment) in segments.iter_mut().enumerate() {
        let mut value = seed.wrapping_add((s * WORDS) as u64);
        let mut offset = 0;
        while offset < segment.size() {
            segment
                .put(offset, value, ByteOrder::Native)
                .expect("offset in bounds");
            value = value.wrapping_add(1);
            offset += 8;
        }
    }
}

/// Sum of `seed + i` for `i` in `0..n`, modulo 2^64.
fn expected_sum(n: u64, seed: u64) -> u64 {
    let (a, b) = if n % 2 == 0 {
        (n / 2, n.wrapping_sub(1))
    } else {
        (n, (n - 1) / 2)
    };
    a.wrapping_mul(b).wrapping_add(n.wrapping_mul(seed))
}

fn time<R>(f: impl FnOnce() -> R) -> (f64, R) {
    let start = Instant::now();
    let result = f();
    (start.elapsed().as_nanos() as f64, result)
}

/// `Segment::get`/`put` against a slice loop over the same segments; `false` on a bad sum.
fn run_rust(config: &Config) -> bool {
    let options = OffHeapOptions {
        huge_pages: false,
        prefault: true,
    };
    let mut segments: Vec<Segment> = (0..config.segments)
        .map(|_| Segment::allocate_off_heap(SEGMENT_SIZE, options).expect("allocation"))
        .collect();
    let words_total = (config.segments * WORDS) as u64;
    let per = words_total as f64;
    let mut ok = true;
    let (mut put_s, mut put_a, mut get_s, mut get_a) = (vec![], vec![], vec![], vec![]);
    let mut ratio_put = vec![];
    let mut ratio_get = vec![];
    for round in 0..config.rounds {
        let seed = round as u64 * 1_000_003 + 11;
        // Alternate which variant goes first.
        let (ts, ta) = if round % 2 == 0 {
            let ts = time(|| put_slice(black_box(&mut segments), seed)).0;
            let ta = time(|| put_api(black_box(&mut segments), seed)).0;
            (ts, ta)
        } else {
            let ta = time(|| put_api(black_box(&mut segments), seed)).0;
            let ts = time(|| put_slice(black_box(&mut segments), seed)).0;
            (ts, ta)
        };
        put_s.push(ts / per);
        put_a.push(ta / per);
        ratio_put.push(ts / ta);
        let expect = expected_sum(words_total, seed);
        let ((ts, sum_s), (ta, sum_a)) = if round % 2 == 0 {
            let s = time(|| get_slice(black_box(&segments)));
            let a = time(|| get_api(black_box(&segments)));
            (s, a)
        } else {
            let a = time(|| get_api(black_box(&segments)));
            let s = time(|| get_slice(black_box(&segments)));
            (s, a)
        };
        if sum_s != expect || sum_a != expect {
            eprintln!(
                "segment_access: Rust checksum mismatch: {sum_s} / {sum_a}, expected {expect}"
            );
            ok = false;
        }
        get_s.push(ts / per);
        get_a.push(ta / per);
        ratio_get.push(ts / ta);
    }
    println!(
        "\n3. Rust safe API over {} MiB of 32 KiB off-heap segments ({} rounds, medians; in-process)",
        (config.segments * SEGMENT_SIZE) >> 20,
        config.rounds
    );
    let line = |what: &str, ns: Vec<f64>| println!("  {what:<57} {:9.3} ns/access", median(ns));
    line("get u64: plain slice loop (&[u64])", get_s);
    line("get u64: Segment::get::<u64>(offset, Native)?", get_a);
    println!(
        "       {:<52} {:9.3} x",
        "speed Segment::get / slice",
        median(ratio_get)
    );
    line("put u64: plain slice loop (&mut [u64])", put_s);
    line("put u64: Segment::put(offset, value, Native)?", put_a);
    println!(
        "       {:<52} {:9.3} x",
        "speed Segment::put / slice",
        median(ratio_put)
    );
    if config.smoke {
        println!("(smoke run: sizes and rounds reduced, figures mean nothing)");
    }
    ok
}
