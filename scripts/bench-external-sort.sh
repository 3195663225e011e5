#!/usr/bin/env bash
# External sort benchmark (see BENCHMARKS.md): `memseg sort` against GNU sort on the same
# records, both with the same memory limit, timed and measured with /usr/bin/time -v.
#
#   scripts/bench-external-sort.sh [RECORDS]      # default 43000000 (4.3 GB, more than 4 GiB)
#
# Environment: MEMORY (default 256M), PAGE_SIZE (memseg's page size, default 256K), BENCH_DIR
# (default /tmp/memseg-bench; needs about 4x the data size free), KEEP=1 keeps the files.
#
# The records are the sort benchmark's in text form (`memseg gen --ascii`, as `gensort -a`):
# 100 bytes, a 10-character printable key, one line each. GNU sort sorts them as lines with
# `LC_ALL=C sort -S $MEMORY` (byte order, its default of min(CPUs, 8) threads); memseg sorts
# them as 100-byte records by their 10-byte key within $MEMORY of pages. Both spill to
# $BENCH_DIR/tmp, both outputs are compared byte for byte, and `memseg check` validates the
# order, count and checksum.
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${1:-43000000}
MEMORY=${MEMORY:-256M}
PAGE_SIZE=${PAGE_SIZE:-256K}
DIR=${BENCH_DIR:-/tmp/memseg-bench}

if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (/usr/bin/time)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi

cargo build --release -p memseg-cli >&2
MEMSEG=target/release/memseg

mkdir -p "$DIR/tmp"
need=$((RECORDS * 100 * 4 / 1024))
have=$(df -Pk "$DIR" | awk 'NR==2 {print $4}')
if [ "$have" -lt "$need" ]; then
  echo "not enough room in $DIR: $((have / 1024 / 1024)) GiB free, $((need / 1024 / 1024)) GiB needed" >&2
  exit 1
fi
cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$DIR"; fi
}
trap cleanup EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "generating $RECORDS records ($((RECORDS / 10000000)).$((RECORDS / 1000000 % 10)) GB) in text form"
$MEMSEG gen --ascii "$RECORDS" "$DIR/input.txt"
sync

# Runs a command under /usr/bin/time -v; prints wall seconds and peak RSS (KiB) on one line.
measure() {
  local name=$1
  shift
  /usr/bin/time -v -o "$DIR/$name.time" "$@" >"$DIR/$name.log" 2>&1 || {
    cat "$DIR/$name.log" "$DIR/$name.time" >&2
    exit 1
  }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$DIR/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/$name.time")
  # h:mm:ss or m:ss.ss -> seconds
  wall=$(echo "$wall" | awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
  echo "$wall $rss"
}

echo "memseg sort --memory $MEMORY --page-size $PAGE_SIZE"
read -r ms_wall ms_rss < <(measure memseg $MEMSEG sort --memory "$MEMORY" --page-size "$PAGE_SIZE" \
  --temp-dir "$DIR/tmp" "$DIR/input.txt" "$DIR/memseg.out")
cat "$DIR/memseg.log"
sync
echo "LC_ALL=C sort -S $MEMORY"
read -r gnu_wall gnu_rss < <(measure gnu env LC_ALL=C sort -S "$MEMORY" -T "$DIR/tmp" \
  -o "$DIR/gnu.out" "$DIR/input.txt")

echo "checking: outputs identical, and in order with the input's count and checksum"
cmp "$DIR/memseg.out" "$DIR/gnu.out"
$MEMSEG check "$DIR/memseg.out"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
printf '%-32s %10s %14s\n' "sorter ($RECORDS records)" "wall (s)" "peak RSS (MiB)"
printf '%-32s %10.1f %14.1f\n' "memseg sort (budget $MEMORY)" "$ms_wall" "$(echo "$ms_rss / 1024" | bc -l)"
printf '%-32s %10.1f %14.1f\n' "GNU sort -S $MEMORY" "$gnu_wall" "$(echo "$gnu_rss / 1024" | bc -l)"
printf 'speed-up (GNU time / memseg time): %.2fx\n' "$(echo "$gnu_wall / $ms_wall" | bc -l)"
