//! The C test suite (`c-tests/*.c`), built and run from `cargo test`.
//!
//! Every `c-tests/*.c` is one test program. It is compiled with the C compiler the `cc` crate
//! finds (C11, `-Wall -Wextra -Wpedantic -Werror`) against the library that this very
//! `cargo test` built, linked twice — against `libmemseg.a` and against `libmemseg.so` — and
//! run; a program that fails fails its test (`static_lib::<file>` or `shared_lib::<file>`)
//! with the program's output. `c-tests/test_hpp.cpp` tests the C++ owners of `memseg.hpp` the
//! same way. The headers are also tested as artefacts: each compiles on its own as C and as
//! C++ (`-std=c++11`; `memseg.hpp` as C++ only), and both C headers included twice compile,
//! link and run.
//!
//! The libraries are taken from `target/<profile>/deps`: cargo builds every crate type of the
//! library there for the integration tests, but copies them up to `target/<profile>` only on
//! `cargo build`, so the copies there may be stale.
//!
//! `MEMSEG_VALGRIND=1` runs the shared-library programs under valgrind (memory errors and
//! definite or indirect leaks fail the test); `tests/valgrind_c.sh` does that.

// Linux only (the soname, the static link libraries, the loader's library listing); not under
// Miri, which cannot start processes.
#![cfg(all(target_os = "linux", not(miri)))]

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Declares one test per C file and link mode, named after the file.
macro_rules! c_tests {
    ($($name:ident),* $(,)?) => {
        /// The C test files (without `.c`) that have a test here.
        const C_TESTS: &[&str] = &[$(stringify!($name)),*];

        /// Each C test linked against `libmemseg.a`.
        mod static_lib {
            $(
                #[test]
                fn $name() {
                    super::run_c_test(stringify!($name), super::Link::Static);
                }
            )*
        }

        /// Each C test linked against `libmemseg.so` (run under valgrind with
        /// `MEMSEG_VALGRIND=1`).
        mod shared_lib {
            $(
                #[test]
                fn $name() {
                    super::run_c_test(stringify!($name), super::Link::Shared);
                }
            )*
        }
    };
}

c_tests!(
    test_alloc,
    test_bulk,
    test_errors,
    test_foreign,
    test_handles,
    test_inline,
    test_manager,
    test_pool,
    test_sort,
    test_threads,
    test_typed,
    test_version,
    test_view,
);

/// Warnings every C program and header check compiles with.
const C_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];
/// The same for C++.
const CXX_FLAGS: &[&str] = &["-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];
/// What a program linked against the static library also needs (Rust's std on Linux).
const STATIC_LINK_LIBS: &[&str] = &["-lpthread", "-ldl", "-lm", "-lrt", "-lutil"];
/// The valgrind options of `MEMSEG_VALGRIND=1`.
const VALGRIND: &[&str] = &[
    "--error-exitcode=1",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite,indirect",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Static,
    Shared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    C,
    Cxx,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shared library's soname, as build.rs sets it: `libmemseg.so.<major>`.
fn soname() -> String {
    format!("libmemseg.so.{}", env!("CARGO_PKG_VERSION_MAJOR"))
}

/// The target this test was built for, as a GNU triple for the `cc` crate (which outside a
/// build script has no `TARGET` to read).
fn target_triple() -> String {
    let env = if cfg!(target_env = "musl") {
        "musl"
    } else {
        "gnu"
    };
    format!("{}-unknown-linux-{env}", std::env::consts::ARCH)
}

/// `target/<profile>/deps`, where this test's executable is and where cargo put the
/// `libmemseg.a` and `libmemseg.so` of this build.
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .expect("the test executable is in target/<profile>/deps")
        .to_path_buf()
}

/// Path of a library file that this `cargo test` built.
fn built_library(file: &str) -> PathBuf {
    let path = deps_dir().join(file);
    assert!(
        path.is_file(),
        "{} is missing: cargo should have built every crate type of the library \
         (rlib, cdylib, staticlib) for the integration tests",
        path.display()
    );
    path
}

/// A fresh directory for one test's programs, holding `libmemseg.so` and its soname as
/// symlinks to the library that was built, so the shared programs link and load it (and no
/// other `libmemseg.so.0` on the system).
fn test_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("memseg-c-tests-")
        .tempdir()
        .expect("creating a temporary directory");
    let shared = built_library("libmemseg.so");
    for name in ["libmemseg.so".to_string(), soname()] {
        std::os::unix::fs::symlink(&shared, dir.path().join(&name))
            .unwrap_or_else(|e| panic!("symlink {name} -> {}: {e}", shared.display()));
    }
    dir
}

/// The compiler command for `lang` with the flags every test compiles with. `dir` is the
/// test's directory, where `cc` may leave its compiler probes.
fn compiler(lang: Lang, dir: &Path) -> Command {
    let target = target_triple();
    let tool = cc::Build::new()
        .out_dir(dir)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .target(&target)
        .host(&target)
        .opt_level(2)
        .debug(true)
        .cpp(lang == Lang::Cxx)
        .get_compiler();
    let mut command = tool.to_command();
    command.args(match lang {
        Lang::C => C_FLAGS,
        Lang::Cxx => CXX_FLAGS,
    });
    command
        .arg("-pthread")
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("c-tests"));
    command
}

/// Runs a command to completion and fails with its whole output if it does not succeed.
fn run_checked(mut command: Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start {command:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{}",
            output.status,
            describe(&command, &output)
        );
    }
    output
}

fn describe(command: &Command, output: &Output) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "--- command ---\n{command:?}");
    let _ = writeln!(
        text,
        "--- stdout ---\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let _ = writeln!(
        text,
        "--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

/// Compiles `source` into the executable `exe`, linked against the library as `link` says.
fn build_program(source: &Path, lang: Lang, link: Link, dir: &Path, exe: &Path) {
    let mut command = compiler(lang, dir);
    command.arg(format!(
        "-DMEMSEG_TEST_CARGO_VERSION=\"{}\"",
        env!("CARGO_PKG_VERSION")
    ));
    command.arg(source).arg("-o").arg(exe);
    match link {
        Link::Static => {
            command.arg(built_library("libmemseg.a"));
            command.args(STATIC_LINK_LIBS);
        }
        Link::Shared => {
            command.arg("-L").arg(dir).arg("-lmemseg");
            let mut rpath = OsString::from("-Wl,-rpath,");
            rpath.push(dir);
            command.arg(rpath);
        }
    }
    run_checked(command, &format!("compiling {}", source.display()));
}

/// A command that runs `exe` with the test directory on the library path.
fn program(exe: &Path, dir: &Path, under_valgrind: bool) -> Command {
    let mut command = if under_valgrind {
        let mut command = Command::new("valgrind");
        command.args(VALGRIND).arg(exe);
        command
    } else {
        Command::new(exe)
    };
    command.env("LD_LIBRARY_PATH", dir).current_dir(dir);
    command
}

/// Checks, through the dynamic loader, that `exe` loads the library built here when linked
/// shared (by its soname, from the test directory) and no libmemseg at all when static.
fn check_link_mode(exe: &Path, dir: &Path, link: Link) {
    let mut command = program(exe, dir, false);
    command.env("LD_TRACE_LOADED_OBJECTS", "1");
    let output = run_checked(
        command,
        &format!("listing the libraries of {}", exe.display()),
    );
    let listing = String::from_utf8_lossy(&output.stdout);
    match link {
        Link::Shared => {
            let expected = format!("{} => {}", soname(), dir.join(soname()).display());
            assert!(
                listing.contains(&expected),
                "{} should load {expected}; the loader says:\n{listing}",
                exe.display()
            );
        }
        Link::Static => assert!(
            !listing.contains("libmemseg"),
            "{} is linked statically but loads a libmemseg:\n{listing}",
            exe.display()
        ),
    }
}

fn valgrind_requested() -> bool {
    std::env::var_os("MEMSEG_VALGRIND").is_some_and(|v| v == "1")
}

/// Builds `c-tests/<name>.c` linked as `link`, runs it, and fails with its output if it
/// fails.
fn run_c_test(name: &str, link: Link) {
    run_test_program(name, Lang::C, link);
}

/// Builds `c-tests/<name>.c` (or `.cpp`) linked as `link`, runs it, and fails with its output
/// if it fails.
fn run_test_program(name: &str, lang: Lang, link: Link) {
    let extension = match lang {
        Lang::C => "c",
        Lang::Cxx => "cpp",
    };
    let source = root().join("c-tests").join(format!("{name}.{extension}"));
    assert!(source.is_file(), "{} is missing", source.display());
    let dir = test_dir();
    let exe = dir.path().join(name);
    build_program(&source, lang, link, dir.path(), &exe);
    check_link_mode(&exe, dir.path(), link);

    let under_valgrind = link == Link::Shared && valgrind_requested();
    let command = program(&exe, dir.path(), under_valgrind);
    let output = run_checked(
        command,
        &format!(
            "C test {name}.c ({link:?} library{})",
            if under_valgrind {
                ", under valgrind"
            } else {
                ""
            }
        ),
    );
    // Shown with --nocapture, so that a run can show what it covered.
    print!("{}", String::from_utf8_lossy(&output.stdout));
    if under_valgrind {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn every_c_test_file_has_a_test() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("c-tests"))
        .expect("reading c-tests/")
        .map(|entry| entry.expect("a c-tests/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "c"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut listed: Vec<String> = C_TESTS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every c-tests/*.c needs an entry in the c_tests! list of tests/c_tests.rs, and \
         every entry a file"
    );
}

/// The C++ owners of `memseg.hpp` (`c-tests/test_hpp.cpp`), against both libraries.
#[test]
fn cxx_wrapper_static() {
    run_test_program("test_hpp", Lang::Cxx, Link::Static);
}

#[test]
fn cxx_wrapper_shared() {
    run_test_program("test_hpp", Lang::Cxx, Link::Shared);
}

const HEADERS: &[&str] = &["memseg.h", "memseg_inline.h"];

/// Compiles a translation unit that includes only `header`, as C or C++.
fn compile_header_alone(header: &str, lang: Lang) {
    let dir = test_dir();
    let extension = match lang {
        Lang::C => "c",
        Lang::Cxx => "cpp",
    };
    let source = dir.path().join(format!("alone.{extension}"));
    std::fs::write(&source, format!("#include \"{header}\"\n")).unwrap();
    let mut command = compiler(lang, dir.path());
    command
        .arg("-c")
        .arg(&source)
        .arg("-o")
        .arg(dir.path().join("alone.o"));
    run_checked(
        command,
        &format!("compiling {header} on its own as {lang:?}"),
    );
}

#[test]
fn each_header_compiles_on_its_own_as_c() {
    for header in HEADERS {
        compile_header_alone(header, Lang::C);
    }
}

#[test]
fn each_header_compiles_on_its_own_as_cxx() {
    for header in HEADERS.iter().chain(&["memseg.hpp"]) {
        compile_header_alone(header, Lang::Cxx);
    }
}

/// Both headers included twice (in both orders), then used: valid C and C++ alike.
const DOUBLE_INCLUDE: &str = r#"
#include "memseg_inline.h"
#include "memseg.h"
#include "memseg.h"
#include "memseg_inline.h"

#include <stdio.h>
#include <string.h>

#define EXPECT(cond)                                                   \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: EXPECT(%s) failed\n", __FILE__, __LINE__, \
              #cond);                                                  \
      return 1;                                                        \
    }                                                                  \
  } while (0)

int main(void) {
  memseg_segment segment = {0};
  memseg_raw raw;
  memseg_memory_kind kind;
  memseg_status status;
  uint32_t value = 0;
  size_t live = 0;
  EXPECT(memseg_segment_live_count(&live) == MEMSEG_STATUS_OK);
  EXPECT(memseg_version() == MEMSEG_VERSION_NUMBER);
  EXPECT(strcmp(memseg_version_string(), MEMSEG_VERSION_STRING) == 0);
  EXPECT(memseg_segment_new_heap(64, &segment) == MEMSEG_STATUS_OK);
  EXPECT(memseg_segment_kind(segment, &kind) == MEMSEG_STATUS_OK);
  EXPECT(kind == MEMSEG_MEMORY_KIND_HEAP);
  EXPECT(memseg_segment_put_u32_be(segment, 4, 0x01020304u) == MEMSEG_STATUS_OK);
  EXPECT(memseg_raw_of(segment, &raw) == MEMSEG_STATUS_OK);
  EXPECT(raw.size == 64 && raw.ptr[4] == 1 && raw.ptr[7] == 4);
  EXPECT(memseg_raw_get_u32_be(raw, 4, &value) == MEMSEG_STATUS_OK);
  EXPECT(value == 0x01020304u);
  status = memseg_raw_get_u32_le(raw, 61, &value);
  EXPECT(status == MEMSEG_STATUS_OUT_OF_BOUNDS);
  status = memseg_segment_get_u32_le(segment, 61, &value);
  EXPECT(status == MEMSEG_STATUS_OUT_OF_BOUNDS);
  EXPECT(strcmp(memseg_status_name(status), "MEMSEG_STATUS_OUT_OF_BOUNDS") == 0);
  EXPECT(memseg_last_error_message(NULL, 0) > 0);
  EXPECT(memseg_segment_free(segment) == MEMSEG_STATUS_OK);
  EXPECT(memseg_segment_free(segment) == MEMSEG_STATUS_STALE_HANDLE);
  {
    size_t after = 1;
    EXPECT(memseg_segment_live_count(&after) == MEMSEG_STATUS_OK);
    EXPECT(after == live);
  }
  puts("headers included twice: ok");
  return 0;
}
"#;

fn double_include(lang: Lang) {
    let dir = test_dir();
    let extension = match lang {
        Lang::C => "c",
        Lang::Cxx => "cpp",
    };
    let source = dir.path().join(format!("double_include.{extension}"));
    std::fs::write(&source, DOUBLE_INCLUDE).unwrap();
    let exe = dir.path().join("double_include");
    build_program(&source, lang, Link::Shared, dir.path(), &exe);
    check_link_mode(&exe, dir.path(), Link::Shared);
    run_checked(
        program(&exe, dir.path(), valgrind_requested()),
        &format!("running the double-include program ({lang:?})"),
    );
}

#[test]
fn headers_included_twice_link_and_run_as_c() {
    double_include(Lang::C);
}

#[test]
fn headers_included_twice_link_and_run_as_cxx() {
    double_include(Lang::Cxx);
}
