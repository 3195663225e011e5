//! View benchmarks (see BENCHMARKS.md): `cargo bench --bench view`.
//!
//! Streams of big-endian u64 values (Java's `writeLong` format) written and read through:
//! - the output and input views over 32 KiB heap segments (the Rust API; values never
//!   straddle here since 32 KiB is a multiple of 8 — a second pass uses 32 KiB + 4 byte
//!   segments so that one value per segment straddles),
//! - the serialization buffer and reader,
//! - the C ABI's per-value calls (`memseg_output_view_write_u64`, `memseg_input_view_read_u64`),
//!   called from Rust,
//!
//! against, in the same run, the same stream into a plain `Vec<u8>` (`extend_from_slice` of
//! `to_be_bytes`, capacity reserved beforehand) and out of a plain slice
//! (`chunks_exact(8)` + `from_be_bytes`). Every figure is a median over rounds; each ratio is
//! the median of per-round ratios (baseline time / view time: 1.0 = as fast as the
//! baseline; the target is >= 0.8). Variants alternate order every round. Sums are checked.
//! The writes also run on a 256 KiB stream repeated 400 times ("in cache"), where memory
//! bandwidth does not hide the instructions and dependencies of each write.
//!
//! Then the same from C (`benches/view.c`, compiled with the `cc` crate's compiler at `-O3`
//! against the `libmemseg.so` of this build): plain memory against the views' windows with
//! the inline accessors of `memseg_inline.h` (per value at a byte offset, and by index over a
//! span checked once), and against one ABI call per value.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) everything runs once on a small
//! stream, as a smoke test; the figures then mean nothing.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use memseg::Segment;

#[path = "common/mod.rs"]
mod common;
use common::{find_library, host_triple, load_average, median};
use memseg::ffi::{
    memseg_input_view, memseg_input_view_free, memseg_input_view_new, memseg_input_view_read_u64,
    memseg_output_view, memseg_output_view_free, memseg_output_view_new,
    memseg_output_view_write_u64, memseg_segment, memseg_segment_free, memseg_segment_new_heap,
    memseg_status,
};
use memseg::view::{
    DataInput, DataOutput, FixedSource, InputView, OutputView, SerializationBuffer,
    SerializationReader,
};

const SEGMENT: usize = 32 * 1024;

fn time<R>(f: impl FnOnce() -> R) -> (f64, R) {
    let start = Instant::now();
    let r = f();
    (start.elapsed().as_secs_f64() * 1e9, r)
}

fn value(i: u64, seed: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed
}

fn expected_sum(n: u64, seed: u64) -> u64 {
    (0..n).fold(0u64, |s, i| s.wrapping_add(value(i, seed)))
}

// ---- the variants, each a noinline function over the whole stream --------------------------

#[inline(never)]
fn write_vec(out: &mut Vec<u8>, n: u64, seed: u64) {
    out.clear();
    for i in 0..n {
        out.extend_from_slice(&value(i, seed).to_be_bytes());
    }
}

#[inline(never)]
fn read_slice(data: &[u8]) -> u64 {
    data.chunks_exact(8).fold(0u64, |s, c| {
        s.wrapping_add(u64::from_be_bytes(c.try_into().unwrap()))
    })
}

#[inline(never)]
fn write_view(segments: Vec<Segment>, n: u64, seed: u64) -> (Vec<Segment>, usize, usize) {
    let mut view = OutputView::new(FixedSource::new(segments));
    for i in 0..n {
        view.write_u64(value(i, seed)).expect("room for the stream");
    }
    let (mut written, fill, source) = view.into_parts();
    let count = written.len();
    written.extend(source.into_segments());
    (written, count, fill)
}

#[inline(never)]
fn read_view(view: &mut InputView<&Segment>, n: u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(view.read_u64().expect("the stream is there"));
    }
    sum
}

#[inline(never)]
fn write_buffer(buf: &mut SerializationBuffer, n: u64, seed: u64) {
    buf.clear();
    for i in 0..n {
        buf.write_u64(value(i, seed)).expect("room");
    }
}

#[inline(never)]
fn read_buffer(data: &[u8], n: u64) -> u64 {
    let mut reader = SerializationReader::new(data);
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(reader.read_u64().expect("the stream is there"));
    }
    sum
}

#[inline(never)]
fn write_ffi(handles: &[memseg_segment], n: u64, seed: u64) {
    let mut view = memseg_output_view::default();
    // SAFETY: a valid list and out pointer.
    let status = unsafe { memseg_output_view_new(handles.as_ptr(), handles.len(), &mut view) };
    assert_eq!(status, memseg_status::Ok);
    for i in 0..n {
        assert_eq!(
            memseg_output_view_write_u64(view, value(i, seed)),
            memseg_status::Ok
        );
    }
    assert_eq!(memseg_output_view_free(view), memseg_status::Ok);
}

#[inline(never)]
fn read_ffi(handles: &[memseg_segment], fill: usize, n: u64) -> u64 {
    let mut view = memseg_input_view::default();
    // SAFETY: a valid list and out pointer.
    let status = unsafe { memseg_input_view_new(handles.as_ptr(), handles.len(), fill, &mut view) };
    assert_eq!(status, memseg_status::Ok);
    let mut sum = 0u64;
    for _ in 0..n {
        let mut v = 0u64;
        // SAFETY: `v` is writable.
        assert_eq!(
            unsafe { memseg_input_view_read_u64(view, &mut v) },
            memseg_status::Ok
        );
        sum = sum.wrapping_add(v);
    }
    assert_eq!(memseg_input_view_free(view), memseg_status::Ok);
    sum
}

struct Figures {
    what: &'static str,
    base_ns: Vec<f64>,
    view_ns: Vec<f64>,
    ratio: Vec<f64>,
}

impl Figures {
    fn new(what: &'static str) -> Self {
        Figures {
            what,
            base_ns: vec![],
            view_ns: vec![],
            ratio: vec![],
        }
    }

    fn add(&mut self, base: f64, view: f64, per: f64) {
        self.base_ns.push(base / per);
        self.view_ns.push(view / per);
        self.ratio.push(base / view);
    }

    fn print(self, base_name: &str) {
        println!(
            "  {:<48} {:7.3} ns/value   {:<26} {:7.3} ns/value   ratio {:5.2} x",
            self.what,
            median(self.view_ns),
            base_name,
            median(self.base_ns),
            median(self.ratio)
        );
    }
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (bytes, rounds) = if smoke { (1 << 16, 1) } else { (64 << 20, 9) };
    let n = (bytes / 8) as u64;
    if smoke {
        println!("view: smoke run (no --bench): a small stream, figures mean nothing");
    }
    println!("view: load average {} at the start", load_average());
    let mut ok = true;

    let mut vec_out: Vec<u8> = Vec::with_capacity(bytes);
    let mut buffer = SerializationBuffer::new(bytes).unwrap();
    let aligned: Vec<Segment> = (0..bytes / SEGMENT + 1)
        .map(|_| Segment::allocate_heap(SEGMENT).unwrap())
        .collect();
    let odd_size = SEGMENT + 4;
    let odd: Vec<Segment> = (0..bytes / odd_size + 2)
        .map(|_| Segment::allocate_heap(odd_size).unwrap())
        .collect();
    let mut pools = [aligned, odd];
    let (mut w_vec_view, mut w_vec_odd, mut w_vec_buf) = (
        Figures::new("write: OutputView::write_u64, 32 KiB segs"),
        Figures::new("write: OutputView::write_u64, 32 KiB+4"),
        Figures::new("write: SerializationBuffer::write_u64"),
    );
    let (mut r_view, mut r_odd, mut r_buf) = (
        Figures::new("read:  InputView::read_u64, 32 KiB segs"),
        Figures::new("read:  InputView::read_u64, 32 KiB+4"),
        Figures::new("read:  SerializationReader::read_u64"),
    );

    for round in 0..rounds {
        let seed = round as u64 * 7919 + 3;
        let expect = expected_sum(n, seed);
        let per = n as f64;
        let vec_first = round % 2 == 0;

        // Writes.
        let tb = |vec_out: &mut Vec<u8>| time(|| write_vec(black_box(vec_out), n, seed)).0;
        for (k, pool) in pools.iter_mut().enumerate() {
            let segments = std::mem::take(pool);
            let (base, (view, (segments, count, fill))) = if vec_first {
                let b = tb(&mut vec_out);
                (b, time(|| write_view(black_box(segments), n, seed)))
            } else {
                let v = time(|| write_view(black_box(segments), n, seed));
                (tb(&mut vec_out), v)
            };
            if k == 0 {
                w_vec_view.add(base, view, per);
            } else {
                w_vec_odd.add(base, view, per);
            }
            // Reads of what the view wrote (the written segments come first).
            let refs: Vec<&Segment> = segments[..count].iter().collect();
            let mut input = InputView::new(refs, fill).unwrap();
            let ((base, sb), (view, sv)) = if vec_first {
                let b = time(|| read_slice(black_box(&vec_out)));
                (b, time(|| read_view(black_box(&mut input), n)))
            } else {
                let v = time(|| read_view(black_box(&mut input), n));
                (time(|| read_slice(black_box(&vec_out))), v)
            };
            if sb != expect || sv != expect {
                eprintln!("view: checksum mismatch (segments {k}): {sb} / {sv}, expected {expect}");
                ok = false;
            }
            if k == 0 {
                r_view.add(base, view, per);
            } else {
                r_odd.add(base, view, per);
            }
            *pool = segments;
        }

        // The serialization buffer.
        let (base, view) = if vec_first {
            let b = tb(&mut vec_out);
            (b, time(|| write_buffer(black_box(&mut buffer), n, seed)).0)
        } else {
            let v = time(|| write_buffer(black_box(&mut buffer), n, seed)).0;
            (tb(&mut vec_out), v)
        };
        w_vec_buf.add(base, view, per);
        let ((base, sb), (view, sv)) = if vec_first {
            let b = time(|| read_slice(black_box(&vec_out)));
            (b, time(|| read_buffer(black_box(buffer.as_bytes()), n)))
        } else {
            let v = time(|| read_buffer(black_box(buffer.as_bytes()), n));
            (time(|| read_slice(black_box(&vec_out))), v)
        };
        if sb != expect || sv != expect || buffer.as_bytes() != &vec_out[..] {
            eprintln!("view: serialization buffer checksum mismatch");
            ok = false;
        }
        r_buf.add(base, view, per);
    }

    // In cache: the same writes of a 256 KiB stream, repeated, so that memory bandwidth does
    // not hide what each write costs in instructions (and in dependencies between them).
    let small_bytes = 8 * SEGMENT;
    let small_n = (small_bytes / 8) as u64;
    let reps = if smoke { 1 } else { 400 };
    let mut small_vec: Vec<u8> = Vec::with_capacity(small_bytes);
    let mut small_buffer = SerializationBuffer::new(small_bytes).unwrap();
    let mut small_segments: Vec<Segment> = (0..small_bytes / SEGMENT)
        .map(|_| Segment::allocate_heap(SEGMENT).unwrap())
        .collect();
    let mut c_view = Figures::new("write: OutputView::write_u64, in cache");
    let mut c_buf = Figures::new("write: SerializationBuffer::write_u64, in cache");
    for round in 0..rounds {
        let seed = round as u64 + 11;
        let per = (small_n * reps) as f64;
        let vec_pass = |v: &mut Vec<u8>| {
            time(|| {
                for _ in 0..reps {
                    write_vec(black_box(v), small_n, seed);
                }
            })
            .0
        };
        let buffer_pass = |b: &mut SerializationBuffer| {
            time(|| {
                for _ in 0..reps {
                    write_buffer(black_box(b), small_n, seed);
                }
            })
            .0
        };
        let mut segments = std::mem::take(&mut small_segments);
        let mut view_pass = || {
            time(|| {
                for _ in 0..reps {
                    segments =
                        write_view(black_box(std::mem::take(&mut segments)), small_n, seed).0;
                }
            })
            .0
        };
        let (base, buffer_ns, view_ns) = if round % 2 == 0 {
            let b = vec_pass(&mut small_vec);
            (b, buffer_pass(&mut small_buffer), view_pass())
        } else {
            let v = view_pass();
            let f = buffer_pass(&mut small_buffer);
            (vec_pass(&mut small_vec), f, v)
        };
        c_buf.add(base, buffer_ns, per);
        c_view.add(base, view_ns, per);
        let written: Vec<u8> = segments
            .iter()
            .flat_map(|s| s.as_slice().to_vec())
            .collect();
        if small_buffer.as_bytes() != &small_vec[..] || written != small_vec {
            eprintln!("view: in-cache bytes differ from the Vec<u8>'s");
            ok = false;
        }
        small_segments = segments;
    }

    // The C ABI, one call per value (a smaller stream: it is much slower).
    let ffi_n = n / 8;
    let handles: Vec<memseg_segment> = (0..(ffi_n as usize * 8) / SEGMENT + 1)
        .map(|_| {
            let mut h = memseg_segment::default();
            // SAFETY: `h` is writable.
            assert_eq!(
                unsafe { memseg_segment_new_heap(SEGMENT, &mut h) },
                memseg_status::Ok
            );
            h
        })
        .collect();
    let mut ffi_w = Figures::new("write: memseg_output_view_write_u64 (ABI)");
    let mut ffi_r = Figures::new("read:  memseg_input_view_read_u64 (ABI)");
    let mut small_vec: Vec<u8> = Vec::with_capacity(ffi_n as usize * 8);
    for round in 0..rounds {
        let seed = round as u64 + 1;
        let per = ffi_n as f64;
        let base = time(|| write_vec(black_box(&mut small_vec), ffi_n, seed)).0;
        let view = time(|| write_ffi(&handles, ffi_n, seed)).0;
        ffi_w.add(base, view, per);
        let written = ffi_n as usize * 8;
        let count = written.div_ceil(SEGMENT);
        let fill = written - (count - 1) * SEGMENT;
        let (base, sb) = time(|| read_slice(black_box(&small_vec)));
        let (view, sv) = time(|| read_ffi(&handles[..count], fill, ffi_n));
        if sb != sv || sb != expected_sum(ffi_n, seed) {
            eprintln!("view: ABI checksum mismatch");
            ok = false;
        }
        ffi_r.add(base, view, per);
    }
    for h in handles {
        assert_eq!(memseg_segment_free(h), memseg_status::Ok);
    }

    println!(
        "\nview: streaming big-endian u64, {} MiB per pass, {} rounds (medians; ratio = baseline \
         time / view time, 1.0 = as fast; target >= 0.8)",
        bytes >> 20,
        rounds
    );
    w_vec_view.print("Vec<u8> extend_from_slice");
    w_vec_odd.print("Vec<u8> extend_from_slice");
    w_vec_buf.print("Vec<u8> extend_from_slice");
    c_view.print("Vec<u8> extend_from_slice");
    c_buf.print("Vec<u8> extend_from_slice");
    r_view.print("slice chunks_exact(8)");
    r_odd.print("slice chunks_exact(8)");
    r_buf.print("slice chunks_exact(8)");
    println!(
        "  C ABI, one call per value, {} MiB per pass:",
        (ffi_n * 8) >> 20
    );
    ffi_w.print("Vec<u8> extend_from_slice");
    ffi_r.print("slice chunks_exact(8)");
    match run_c(if smoke { (1, 1) } else { (bytes >> 20, rounds) }) {
        Ok(true) => {}
        Ok(false) => ok = false,
        Err(e) => {
            eprintln!("view: the C benchmark could not run: {e}");
            ok = false;
        }
    }
    println!("view: load average {} at the end", load_average());
    if !ok {
        std::process::exit(1);
    }
}

// ---- C --------------------------------------------------------------------------------------

fn compile_c(lib_dir: &Path, out: &Path) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let host = host_triple();
    let compiler = cc::Build::new()
        .target(&host)
        .host(&host)
        .opt_level(3)
        .debug(false)
        .cargo_metadata(false)
        .try_get_compiler()
        .map_err(|e| format!("no C compiler: {e}"))?;
    let mut cmd = compiler.to_command();
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("benches/view.c"))
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
    Ok(())
}

/// Builds and runs `benches/view.c` over `mib` MiB for `rounds` rounds.
fn run_c((mib, rounds): (usize, usize)) -> Result<bool, String> {
    let library = find_library()?.canonicalize().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    for name in ["libmemseg.so", "libmemseg.so.0"] {
        std::os::unix::fs::symlink(&library, dir.path().join(name))
            .map_err(|e| format!("symlink {name}: {e}"))?;
    }
    let exe = dir.path().join("view");
    compile_c(dir.path(), &exe)?;
    let status = Command::new(&exe)
        .arg(mib.max(1).to_string())
        .arg(rounds.to_string())
        .status()
        .map_err(|e| format!("running {}: {e}", exe.display()))?;
    Ok(status.success())
}
