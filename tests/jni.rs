//! The C ABI from the JVM through JNI: builds `java/memseg_jni.c` (the glue of
//! `java/memseg/Memseg.java`) against the `libmemseg.so` this `cargo test` built, compiles the
//! Java classes and runs `java/MemsegJniTest.java`: pages as direct `ByteBuffer`s over the
//! lent memory, the same bytes through the ABI, the statuses and messages of bad input, stale
//! handles and the leak report. Without a JDK (`javac` and `jni.h`) the test says why it skips
//! and passes; CI has one.

#![cfg(not(miri))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The JDK's home: `JAVA_HOME`, else two levels above the real path of `javac`.
fn java_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        return Some(PathBuf::from(home));
    }
    let output = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v javac)\""])
        .output()
        .ok()?;
    let javac = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    Some(javac.parent()?.parent()?.to_path_buf())
}

fn run(mut command: Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{command:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `libmemseg.so` of this build, under its own name and its soname in `dir`.
fn link_library(dir: &Path) {
    let exe = std::env::current_exe().expect("the test executable's path");
    let library = exe
        .parent()
        .expect("the test executable is in target/<profile>/deps")
        .join("libmemseg.so");
    let soname = format!("libmemseg.so.{}", env!("CARGO_PKG_VERSION_MAJOR"));
    for name in ["libmemseg.so".to_string(), soname] {
        std::os::unix::fs::symlink(&library, dir.join(name)).expect("linking the library");
    }
}

#[test]
fn the_jvm_drives_the_library_through_jni() {
    let Some(home) = java_home().filter(|home| home.join("include/jni.h").is_file()) else {
        eprintln!("no JDK with jni.h (set JAVA_HOME): skipping the JNI test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    link_library(dir.path());
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .cargo_warnings(false)
        .out_dir(dir.path())
        .target(&target)
        .host(&target)
        .opt_level(2)
        .debug(true)
        .get_compiler();
    let mut glue = compiler.to_command();
    glue.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Wpedantic",
        "-Werror",
        "-shared",
        "-fPIC",
    ])
    .arg("-I")
    .arg(home.join("include"))
    .arg("-I")
    .arg(home.join("include/linux"))
    .arg("-I")
    .arg(root().join("include"))
    .arg(root().join("java/memseg_jni.c"))
    .arg("-L")
    .arg(dir.path())
    .arg("-lmemseg")
    .arg(format!("-Wl,-rpath,{}", dir.path().display()))
    .arg("-o")
    .arg(dir.path().join("libmemseg_jni.so"));
    run(glue, "compiling the JNI glue");

    let classes = dir.path().join("classes");
    let mut javac = Command::new(home.join("bin/javac"));
    javac
        .arg("-Werror")
        .arg("-d")
        .arg(&classes)
        .arg(root().join("java/memseg/Memseg.java"))
        .arg(root().join("java/memseg/MemsegException.java"))
        .arg(root().join("java/MemsegJniTest.java"));
    run(javac, "compiling the Java classes");

    let mut java = Command::new(home.join("bin/java"));
    java.arg(format!("-Djava.library.path={}", dir.path().display()))
        .arg("-Xcheck:jni")
        .arg("-cp")
        .arg(&classes)
        .arg("MemsegJniTest")
        .arg(env!("CARGO_PKG_VERSION"));
    let output = run(java, "running MemsegJniTest");
    let printed = String::from_utf8_lossy(&output.stdout);
    let warnings = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        printed.lines().filter(|l| l.starts_with("ok ")).count(),
        3,
        "{printed}"
    );
    // `-Xcheck:jni` reports misuse of the JNI (a call with an exception pending, …) as
    // warnings.
    assert!(
        !printed.contains("WARNING") && !warnings.contains("WARNING"),
        "{printed}{warnings}"
    );
}
