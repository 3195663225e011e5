//! Byte compatibility with Java, as a real client sees it: values written with the output
//! view are read by `java.io.DataInputStream`, and values written by `java.io.DataOutputStream`
//! are read by the input view. The Java program is generated from the same table of values,
//! compiled with `javac` and run with `java` at test time. Without a JDK the test prints why
//! it skips and passes; CI has one.
//!
//! The values cover every type, the extremes, negative zero, infinities, subnormals, NaNs with
//! payloads, strings with NUL, non-ASCII and supplementary characters (surrogate pairs),
//! unpaired surrogates, the empty string and the longest string `writeUTF` accepts, and the
//! little-endian variants (which Java reads with `Integer.reverseBytes` and friends). Segments
//! are 7 and 5 bytes, so most values straddle a boundary.

#![cfg(not(miri))]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use memseg::Segment;
use memseg::view::{DataInput, DataOutput, HeapSource, InputView, OutputView};

#[derive(Debug, Clone)]
enum V {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Char(u16),
    Int(i32),
    Long(i64),
    /// `writeFloat`/`readFloat` (Java's writeFloat makes every NaN canonical).
    Float(u32),
    /// `writeDouble`/`readDouble` (likewise).
    Double(u64),
    /// A double written as its raw bits (`writeLong(doubleToRawLongBits)`): payloads kept.
    DoubleRaw(u64),
    Utf(Vec<u16>),
    Bytes(Vec<u8>),
    ShortLe(i16),
    IntLe(i32),
    LongLe(i64),
    FloatLe(u32),
    DoubleLe(u64),
}

fn units(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn values() -> Vec<V> {
    let mut v = vec![V::Bool(true), V::Bool(false)];
    v.extend([i8::MIN, -1, 0, 1, i8::MAX].map(V::Byte));
    v.extend([i16::MIN, -2, 0, i16::MAX].map(V::Short));
    v.extend([0u16, 0x41, 0xE9, 0xD800, 0xFFFF].map(V::Char));
    v.extend([i32::MIN, -1, 0, 0x0102_0304, i32::MAX].map(V::Int));
    v.extend([i64::MIN, -1, 0, 0x0102_0304_0506_0708, i64::MAX].map(V::Long));
    let floats = [
        0.0f32.to_bits(),
        (-0.0f32).to_bits(),
        1.5f32.to_bits(),
        f32::INFINITY.to_bits(),
        f32::NEG_INFINITY.to_bits(),
        f32::MAX.to_bits(),
        f32::MIN_POSITIVE.to_bits(),
        1, // the smallest subnormal
        0x7FC0_0000,
        0x7F80_0001,
        0xFFC0_1234,
    ];
    v.extend(floats.map(V::Float));
    let doubles = [
        0.0f64.to_bits(),
        (-0.0f64).to_bits(),
        std::f64::consts::PI.to_bits(),
        f64::INFINITY.to_bits(),
        f64::NEG_INFINITY.to_bits(),
        f64::MAX.to_bits(),
        f64::MIN.to_bits(),
        1,
        0x7FF8_0000_0000_0000,
        0x7FF0_0000_0000_0001,
        0xFFF8_DEAD_BEEF_0001,
    ];
    v.extend(doubles.map(V::Double));
    v.extend(doubles.map(V::DoubleRaw));
    for s in [
        "",
        "hello",
        "a\0b",
        "\0",
        "é ü ß",
        "€ 日本語",
        "😀 smile",
        "\u{10FFFF}\u{10000}",
        "\u{7F}\u{80}\u{7FF}\u{800}\u{FFFF}",
    ] {
        v.push(V::Utf(units(s)));
    }
    v.push(V::Utf(vec![0xD800, 0x41])); // an unpaired high surrogate
    v.push(V::Utf(vec![0xDC00])); // an unpaired low surrogate
    v.push(V::Utf(units(&"€".repeat(21845)))); // 65535 encoded bytes: the longest
    v.push(V::Utf(units(&"x\0".repeat(21845)))); // NULs take two bytes: 65535 too
    v.push(V::Bytes(vec![0, 0x80, 0xFF, 7]));
    v.extend([i16::MIN, -2].map(V::ShortLe));
    v.extend([-2, 0x0102_0304].map(V::IntLe));
    v.extend([i64::MIN, 0x0102_0304_0506_0708].map(V::LongLe));
    v.extend([(-0.0f32).to_bits(), 0x7F80_0001].map(V::FloatLe));
    v.extend([(-0.0f64).to_bits(), 0xFFF8_DEAD_BEEF_0001].map(V::DoubleLe));
    v
}

fn f32_canonical(bits: u32) -> u32 {
    if f32::from_bits(bits).is_nan() {
        0x7FC0_0000
    } else {
        bits
    }
}

fn f64_canonical(bits: u64) -> u64 {
    if f64::from_bits(bits).is_nan() {
        0x7FF8_0000_0000_0000
    } else {
        bits
    }
}

/// One line per value, as the Java reader prints it and the Rust reader formats it.
fn line(v: &V) -> String {
    match v {
        V::Bool(b) => format!("bool {b}"),
        V::Byte(x) => format!("byte {x}"),
        V::Short(x) | V::ShortLe(x) => format!("short {x}"),
        V::Char(x) => format!("char {x}"),
        V::Int(x) | V::IntLe(x) => format!("int {x}"),
        V::Long(x) | V::LongLe(x) => format!("long {x}"),
        V::Float(b) | V::FloatLe(b) => format!("float {b:08x}"),
        V::Double(b) | V::DoubleRaw(b) | V::DoubleLe(b) => format!("double {b:016x}"),
        V::Utf(u) => {
            let mut s = format!("utf {}", u.len());
            for unit in u.iter().take(64) {
                write!(s, " {unit:04x}").unwrap();
            }
            s
        }
        V::Bytes(b) => {
            let mut s = format!("bytes {}", b.len());
            for byte in b {
                write!(s, " {byte:02x}").unwrap();
            }
            s
        }
    }
}

/// What a value looks like after Java has written it with `DataOutputStream`.
fn as_java_writes(v: &V) -> V {
    match v {
        V::Float(b) => V::Float(f32_canonical(*b)),
        V::Double(b) => V::Double(f64_canonical(*b)),
        other => other.clone(),
    }
}

fn java_char_array(u: &[u16]) -> String {
    let items: Vec<String> = u.iter().map(|x| format!("(char) 0x{x:04x}")).collect();
    format!("new char[] {{{}}}", items.join(", "))
}

/// The Java program: `read FILE` prints a line per value; `write FILE` writes every value.
fn java_source(values: &[V]) -> String {
    let mut reads = String::new();
    let mut writes = String::new();
    let mut strings = String::new();
    for (i, v) in values.iter().enumerate() {
        let (read, write) = match v {
            V::Bool(b) => (
                "p(\"bool \" + in.readBoolean());".to_string(),
                format!("out.writeBoolean({b});"),
            ),
            V::Byte(x) => (
                "p(\"byte \" + in.readByte());".into(),
                format!("out.writeByte({x});"),
            ),
            V::Short(x) => (
                "p(\"short \" + in.readShort());".into(),
                format!("out.writeShort({x});"),
            ),
            V::Char(x) => (
                "p(\"char \" + (int) in.readChar());".into(),
                format!("out.writeChar(0x{x:04x});"),
            ),
            V::Int(x) => (
                "p(\"int \" + in.readInt());".into(),
                format!("out.writeInt({x});"),
            ),
            V::Long(x) => (
                "p(\"long \" + in.readLong());".into(),
                format!("out.writeLong({x}L);"),
            ),
            V::Float(b) => (
                "p(\"float \" + hex8(Float.floatToRawIntBits(in.readFloat())));".into(),
                format!("out.writeFloat(Float.intBitsToFloat(0x{b:08x}));"),
            ),
            V::Double(b) => (
                "p(\"double \" + hex16(Double.doubleToRawLongBits(in.readDouble())));".into(),
                format!("out.writeDouble(Double.longBitsToDouble(0x{b:016x}L));"),
            ),
            V::DoubleRaw(b) => (
                "p(\"double \" + hex16(Double.doubleToRawLongBits(in.readDouble())));".into(),
                format!("out.writeLong(0x{b:016x}L);"),
            ),
            V::Utf(u) => {
                writeln!(strings, "    static final String S{i} = new String({});", {
                    if u.len() > 64 {
                        // Long strings: repeat their period (checked below on the Rust side).
                        String::new()
                    } else {
                        java_char_array(u)
                    }
                })
                .unwrap();
                (
                    "p(utf(in.readUTF()));".into(),
                    format!("out.writeUTF(S{i});"),
                )
            }
            V::Bytes(b) => {
                let items: Vec<String> = b.iter().map(|x| format!("(byte) 0x{x:02x}")).collect();
                (
                    format!(
                        "{{ byte[] b = new byte[{}]; in.readFully(b); p(bytes(b)); }}",
                        b.len()
                    ),
                    format!("out.write(new byte[] {{{}}});", items.join(", ")),
                )
            }
            V::ShortLe(x) => (
                "p(\"short \" + Short.reverseBytes(in.readShort()));".into(),
                format!("out.writeShort(Short.reverseBytes((short) {x}));"),
            ),
            V::IntLe(x) => (
                "p(\"int \" + Integer.reverseBytes(in.readInt()));".into(),
                format!("out.writeInt(Integer.reverseBytes({x}));"),
            ),
            V::LongLe(x) => (
                "p(\"long \" + Long.reverseBytes(in.readLong()));".into(),
                format!("out.writeLong(Long.reverseBytes({x}L));"),
            ),
            V::FloatLe(b) => (
                "p(\"float \" + hex8(Integer.reverseBytes(in.readInt())));".into(),
                format!("out.writeInt(Integer.reverseBytes(0x{b:08x}));"),
            ),
            V::DoubleLe(b) => (
                "p(\"double \" + hex16(Long.reverseBytes(in.readLong())));".into(),
                format!("out.writeLong(Long.reverseBytes(0x{b:016x}L));"),
            ),
        };
        writeln!(reads, "        {read}").unwrap();
        writeln!(writes, "        {write}").unwrap();
    }
    // Long strings are built from their repeating unit in a static block.
    let mut long_strings = String::new();
    for (i, v) in values.iter().enumerate() {
        if let V::Utf(u) = v {
            if u.len() > 64 {
                let period = if u[0] == u[1] { 1 } else { 2 };
                writeln!(
                    long_strings,
                    "        S{i} = new String({}).repeat({});",
                    java_char_array(&u[..period]),
                    u.len() / period
                )
                .unwrap();
            }
        }
    }
    let strings = strings
        .replace("static final String", "static String")
        .replace("new String()", "\"\"");
    format!(
        r#"import java.io.*;

public class Compat {{
{strings}
    static {{
{long_strings}    }}

    static PrintStream stdout;
    static void p(String s) {{ stdout.println(s); }}
    static String hex8(int x) {{ return String.format("%08x", x); }}
    static String hex16(long x) {{ return String.format("%016x", x); }}
    static String utf(String s) {{
        StringBuilder b = new StringBuilder("utf " + s.length());
        for (int i = 0; i < s.length() && i < 64; i++) b.append(String.format(" %04x", (int) s.charAt(i)));
        return b.toString();
    }}
    static String bytes(byte[] a) {{
        StringBuilder b = new StringBuilder("bytes " + a.length);
        for (byte x : a) b.append(String.format(" %02x", x & 0xff));
        return b.toString();
    }}

    public static void main(String[] args) throws IOException {{
        stdout = new PrintStream(new FileOutputStream(FileDescriptor.out), false, "UTF-8");
        if (args[0].equals("read")) {{
            try (DataInputStream in = new DataInputStream(new BufferedInputStream(new FileInputStream(args[1])))) {{
{reads}                if (in.read() != -1) throw new IOException("bytes left after the last value");
            }}
        }} else {{
            try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(args[1])))) {{
{writes}            }}
        }}
        stdout.flush();
    }}
}}
"#
    )
}

fn find_jdk_tool(name: &str) -> Option<PathBuf> {
    let candidates = std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin").join(name))
        .into_iter()
        .chain(std::iter::once(PathBuf::from(name)));
    candidates.into_iter().find(|tool| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Compiles the Java program into `dir`, or says why it cannot.
fn compile(dir: &Path, values: &[V]) -> Option<PathBuf> {
    let (Some(javac), Some(java)) = (find_jdk_tool("javac"), find_jdk_tool("java")) else {
        eprintln!(
            "java_compat: SKIPPED — no JDK found (javac/java on PATH or under $JAVA_HOME/bin); \
             install one (Java 17+) to run the byte-compatibility test"
        );
        return None;
    };
    std::fs::write(dir.join("Compat.java"), java_source(values)).unwrap();
    let out = Command::new(javac)
        .arg("-encoding")
        .arg("UTF-8")
        .arg("-d")
        .arg(dir)
        .arg(dir.join("Compat.java"))
        .output()
        .expect("running javac");
    assert!(
        out.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(java)
}

fn run_java(java: &Path, dir: &Path, mode: &str, file: &Path) -> String {
    let out = Command::new(java)
        .arg("-cp")
        .arg(dir)
        .arg("Compat")
        .arg(mode)
        .arg(file)
        .output()
        .expect("running java");
    assert!(
        out.status.success(),
        "java Compat {mode} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write_value(out: &mut impl DataOutput, v: &V) -> memseg::Result<()> {
    match v {
        V::Bool(b) => out.write_bool(*b),
        V::Byte(x) => out.write_i8(*x),
        V::Short(x) => out.write_i16(*x),
        V::Char(x) => out.write_char(*x),
        V::Int(x) => out.write_i32(*x),
        V::Long(x) => out.write_i64(*x),
        V::Float(b) => out.write_f32(f32::from_bits(*b)),
        V::Double(b) | V::DoubleRaw(b) => out.write_f64(f64::from_bits(*b)),
        V::Utf(u) => match String::from_utf16(u) {
            Ok(s) => out.write_utf(&s),
            Err(_) => out.write_utf16(u),
        },
        V::Bytes(b) => out.write_bytes(b),
        V::ShortLe(x) => out.write_i16_le(*x),
        V::IntLe(x) => out.write_i32_le(*x),
        V::LongLe(x) => out.write_i64_le(*x),
        V::FloatLe(b) => out.write_f32_le(f32::from_bits(*b)),
        V::DoubleLe(b) => out.write_f64_le(f64::from_bits(*b)),
    }
}

fn read_value(input: &mut impl DataInput, like: &V) -> memseg::Result<V> {
    Ok(match like {
        V::Bool(_) => V::Bool(input.read_bool()?),
        V::Byte(_) => V::Byte(input.read_i8()?),
        V::Short(_) => V::Short(input.read_i16()?),
        V::Char(_) => V::Char(input.read_char()?),
        V::Int(_) => V::Int(input.read_i32()?),
        V::Long(_) => V::Long(input.read_i64()?),
        V::Float(_) => V::Float(input.read_f32()?.to_bits()),
        V::Double(_) => V::Double(input.read_f64()?.to_bits()),
        V::DoubleRaw(_) => V::DoubleRaw(input.read_f64()?.to_bits()),
        V::Utf(u) => match String::from_utf16(u) {
            Ok(_) => V::Utf(input.read_utf()?.encode_utf16().collect()),
            Err(_) => {
                let mut got = Vec::new();
                input.read_utf16(&mut got)?;
                V::Utf(got)
            }
        },
        V::Bytes(b) => {
            let mut got = vec![0; b.len()];
            input.read_fully(&mut got)?;
            V::Bytes(got)
        }
        V::ShortLe(_) => V::ShortLe(input.read_i16_le()?),
        V::IntLe(_) => V::IntLe(input.read_i32_le()?),
        V::LongLe(_) => V::LongLe(input.read_i64_le()?),
        V::FloatLe(_) => V::FloatLe(input.read_f32_le()?.to_bits()),
        V::DoubleLe(_) => V::DoubleLe(input.read_f64_le()?.to_bits()),
    })
}

fn compare_lines(what: &str, got: &str, want: &[String]) {
    let got: Vec<&str> = got.lines().collect();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: value {i} differs");
    }
    assert_eq!(got.len(), want.len(), "{what}: number of values");
}

#[test]
fn java_reads_what_the_output_view_writes_and_the_input_view_reads_what_java_writes() {
    let values = values();
    let dir = tempfile::tempdir().unwrap();
    let Some(java) = compile(dir.path(), &values) else {
        return;
    };

    // Rust -> Java: through an output view over 7-byte segments.
    let mut view = OutputView::new(HeapSource::new(7, usize::MAX).unwrap());
    for v in &values {
        write_value(&mut view, v).unwrap();
    }
    let (segments, fill, _) = view.into_parts();
    let mut bytes = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        let n = if i + 1 == segments.len() {
            fill
        } else {
            s.size()
        };
        bytes.extend_from_slice(&s.as_slice()[..n]);
    }
    let from_rust = dir.path().join("from_rust.bin");
    std::fs::write(&from_rust, &bytes).unwrap();
    let printed = run_java(&java, dir.path(), "read", &from_rust);
    let want: Vec<String> = values.iter().map(line).collect();
    compare_lines("Java reading the output view's bytes", &printed, &want);

    // Java -> Rust: through an input view over 5-byte segments.
    let from_java = dir.path().join("from_java.bin");
    run_java(&java, dir.path(), "write", &from_java);
    let data = std::fs::read(&from_java).unwrap();
    let segments: Vec<Segment> = data
        .chunks(5)
        .map(|chunk| {
            let mut s = Segment::allocate_heap(5).unwrap();
            s.put_bytes(0, chunk).unwrap();
            s
        })
        .collect();
    let last = data.len() - (segments.len() - 1) * 5;
    let mut input = InputView::new(segments, last).unwrap();
    for (i, v) in values.iter().enumerate() {
        let got = read_value(&mut input, v).unwrap_or_else(|e| panic!("value {i} ({v:?}): {e}"));
        assert_eq!(
            line(&got),
            line(&as_java_writes(v)),
            "value {i} written by Java"
        );
        if let (V::Utf(g), V::Utf(w)) = (&got, v) {
            assert_eq!(g, w, "value {i}: every code unit");
        }
    }
    assert_eq!(input.available(), 0, "nothing left over");
    assert_eq!(
        bytes.len(),
        data.len(),
        "both sides wrote the same number of bytes"
    );
}
