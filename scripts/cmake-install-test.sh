#!/usr/bin/env bash
# Builds and installs the memseg CMake package into a fresh temporary prefix, moves the
# prefix (the package must be relocatable), then builds the C tests in c-tests/ against the
# installed package, shared and static, runs them under ctest, and checks the artefacts:
# soname, symlinks, which libmemseg.so.N the test programs load, and memseg.pc.
#
#   scripts/cmake-install-test.sh
#
# Needs cmake (>= 3.16), cargo, a C compiler, pkg-config, readelf and ldd
# (Debian: apt-get install -y cmake pkg-config build-essential, plus a Rust toolchain).
# Environment:
#   CARGO_TARGET_DIR  cargo's target directory to build in (default: inside the temp dir,
#                     i.e. a from-scratch build)
#   KEEP_TMP=1        keep the temporary directory even when everything passes
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }

for tool in cmake cargo cc pkg-config readelf ldd; do
  command -v "$tool" >/dev/null || fail "$tool not found on PATH"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memseg-cmake.XXXXXX")
cleanup() {
  local status=$?
  if [[ $status -eq 0 && "${KEEP_TMP:-0}" != 1 ]]; then
    rm -rf "$tmp"
  else
    printf '\nbuild trees and prefix left in %s\n' "$tmp" >&2
  fi
}
trap cleanup EXIT

step "configure the package (cmake/ -> $tmp/build, prefix $tmp/prefix)"
cmake -S "$root/cmake" -B "$tmp/build" -DCMAKE_INSTALL_PREFIX="$tmp/prefix" \
  ${CARGO_TARGET_DIR:+"-DMEMSEG_CARGO_TARGET_DIR=$CARGO_TARGET_DIR"} \
  || fail "configuring the package failed"

step "build (cargo build --release --lib)"
cmake --build "$tmp/build" || fail "building the package (cargo) failed"

step "install"
cmake --install "$tmp/build" || fail "installing the package failed"

libdir_rel=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$tmp/build/CMakeCache.txt")
includedir_rel=$(sed -n 's/^CMAKE_INSTALL_INCLUDEDIR:[A-Z]*=//p' "$tmp/build/CMakeCache.txt")
config_version="$tmp/prefix/$libdir_rel/cmake/memseg/memsegConfigVersion.cmake"
[[ -f "$config_version" ]] || fail "not installed: $config_version"
version=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' "$config_version")
[[ -n "$version" ]] || fail "no PACKAGE_VERSION in $config_version"
major=${version%%.*}
soname="libmemseg.so.$major"
echo "package version $version, soname $soname"

step "check the installed files"
lib="$tmp/prefix/$libdir_rel"
for f in "$lib/libmemseg.so.$version" "$lib/$soname" "$lib/libmemseg.so" "$lib/libmemseg.a" \
  "$tmp/prefix/$includedir_rel/memseg.h" "$tmp/prefix/$includedir_rel/memseg_inline.h" \
  "$tmp/prefix/$includedir_rel/memseg.hpp" \
  "$lib/cmake/memseg/memsegConfig.cmake" "$config_version" "$lib/pkgconfig/memseg.pc"; do
  [[ -e "$f" ]] || fail "not installed: $f"
  echo "  ${f#"$tmp/prefix/"}"
done
[[ -f "$lib/libmemseg.so.$version" && ! -L "$lib/libmemseg.so.$version" ]] \
  || fail "libmemseg.so.$version should be a regular file"
[[ "$(readlink "$lib/$soname")" == "libmemseg.so.$version" ]] \
  || fail "$soname should be a symlink to libmemseg.so.$version"
[[ "$(readlink "$lib/libmemseg.so")" == "$soname" ]] \
  || fail "libmemseg.so should be a symlink to $soname"
actual_soname=$(readelf -d "$lib/libmemseg.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ "$actual_soname" == "$soname" ]] \
  || fail "SONAME of libmemseg.so.$version is '${actual_soname:-none}', expected $soname"
echo "SONAME: $actual_soname"

step "move the prefix to $tmp/moved (the package must not depend on where it was installed)"
mv "$tmp/prefix" "$tmp/moved"
prefix="$tmp/moved"
lib="$prefix/$libdir_rel"
if grep -rlF "$tmp/prefix" "$lib/cmake/memseg" "$lib/pkgconfig"; then
  fail "the files above hold the install-time prefix $tmp/prefix"
fi

step "configure the C tests against the installed package (CMAKE_PREFIX_PATH=$prefix)"
# Optimized, so that -Werror and the tests also see the inline header as hot loops compile
# it; asserts stay on (memseg_test.h undefines NDEBUG).
cmake -S "$root/c-tests" -B "$tmp/c-tests" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  || fail "configuring the C tests against the installed package failed"
found_dir=$(sed -n 's/^memseg_DIR:[A-Z]*=//p' "$tmp/c-tests/CMakeCache.txt")
[[ "$found_dir" -ef "$lib/cmake/memseg" ]] \
  || fail "find_package(memseg) used $found_dir, not the installed package in $lib/cmake/memseg"

step "build the C tests (shared and static)"
cmake --build "$tmp/c-tests" --parallel "$jobs" || fail "building the C tests failed"

step "run the C tests"
(cd "$tmp/c-tests" && ctest --output-on-failure --parallel "$jobs") || fail "C tests failed"

step "check which libmemseg the test programs load"
shopt -s nullglob
shared_tests=("$tmp/c-tests/shared/"*)
static_tests=("$tmp/c-tests/static/"*)
[[ ${#shared_tests[@]} -gt 0 && ${#static_tests[@]} -gt 0 ]] || fail "no test programs built"
for exe in "${shared_tests[@]}"; do
  resolved=$(ldd "$exe" | sed -n "s/^[[:space:]]*$soname => \\(.*\\) (0x.*/\\1/p")
  [[ -n "$resolved" && "$resolved" -ef "$lib/$soname" ]] \
    || fail "${exe#"$tmp/"} loads '${resolved:-no $soname}', not $lib/$soname"
done
echo "${#shared_tests[@]} shared test programs load $lib/$soname"
for exe in "${static_tests[@]}"; do
  if readelf -d "$exe" | grep -q 'NEEDED.*libmemseg'; then
    fail "${exe#"$tmp/"} needs a shared libmemseg but should embed libmemseg.a"
  fi
done
echo "${#static_tests[@]} static test programs need no shared libmemseg"

step "check memseg.pc with a pkg-config consumer"
export PKG_CONFIG_PATH="$lib/pkgconfig"
pc_version=$(pkg-config --modversion memseg)
[[ "$pc_version" == "$version" ]] || fail "pkg-config says version $pc_version, expected $version"
mkdir -p "$tmp/pkg-config"
cat >"$tmp/pkg-config/version.c" <<'EOF'
#include <stdio.h>
#include <string.h>

#include "memseg.h"
#include "memseg_inline.h"

int main(void) {
  if (memseg_version() != MEMSEG_VERSION_NUMBER ||
      strcmp(memseg_version_string(), MEMSEG_VERSION_STRING) != 0) {
    fprintf(stderr, "header %s, library %s\n", MEMSEG_VERSION_STRING, memseg_version_string());
    return 1;
  }
  printf("memseg %s\n", memseg_version_string());
  return 0;
}
EOF
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
# shellcheck disable=SC2046  # pkg-config output is meant to be split into words
cc "${cflags[@]}" "$tmp/pkg-config/version.c" -o "$tmp/pkg-config/version-shared" \
  $(pkg-config --cflags --libs memseg) -Wl,-rpath,"$(pkg-config --variable=libdir memseg)" \
  || fail "compiling the pkg-config consumer (shared) failed"
printf 'shared: '; "$tmp/pkg-config/version-shared" || fail "pkg-config consumer (shared) failed"
# Static: libmemseg.a by path, then the private libs memseg.pc lists for static linking.
# shellcheck disable=SC2046
cc "${cflags[@]}" "$tmp/pkg-config/version.c" -o "$tmp/pkg-config/version-static" \
  $(pkg-config --cflags memseg) "$(pkg-config --variable=libdir memseg)/libmemseg.a" \
  $(pkg-config --static --libs-only-l memseg | sed 's/-lmemseg\b//') \
  || fail "compiling the pkg-config consumer (static) failed"
printf 'static: '; "$tmp/pkg-config/version-static" || fail "pkg-config consumer (static) failed"

step "OK: memseg $version installs, relocates, and passes the C tests shared and static"
