#!/usr/bin/env bash
# Runs the C test programs of c-tests/ linked against the shared library under valgrind, so
# that CI can show they are clean: any memory error, and any definite or indirect leak, fails
# the program and with it its test.
#
#   tests/valgrind_c.sh                # the debug build
#   tests/valgrind_c.sh --release      # any further arguments go to `cargo test`
#
# It is `cargo test --test c_tests` with MEMSEG_VALGRIND=1, which makes tests/c_tests.rs run
# each shared-library program (shared_lib::*, the C++ wrapper test and the headers'
# double-include programs) as
#   valgrind --error-exitcode=1 --leak-check=full \
#     --errors-for-leak-kinds=definite,indirect <program>
# Only those tests run (the static-library ones need no second run). Needs valgrind on PATH.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v valgrind >/dev/null; then
  echo "valgrind_c.sh: valgrind not found on PATH" >&2
  exit 1
fi
cd "$root"
MEMSEG_VALGRIND=1 exec cargo test --test c_tests "$@" -- shared_lib:: headers_included_twice cxx_wrapper_shared
