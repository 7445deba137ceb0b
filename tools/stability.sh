#!/usr/bin/env bash
# Stability test: repeated 4-thread Larson runs with hakmem preloaded
# (sizes 8..128 B, 1024 blocks per thread, 1 round, seed 12345: every thread
# hands its blocks to a successor after 1024 operations, so threads are born
# and die constantly while their blocks live on).
#
#   tools/stability.sh [seconds-per-run [runs]]      (defaults: 2 20)
#
# A run passes if it exits 0, prints its throughput and reports no corrupted
# block, within a time limit. Prints "N/RUNS" and exits 1 unless every run
# passed. HAKMEM_LIB selects another library; HAKMEM_* settings are passed on.
# Logs of failing runs are kept in a temporary directory (path printed).
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$ROOT"

seconds="${1:-2}"
runs="${2:-20}"
[[ "$seconds" =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "usage: $0 [seconds-per-run [runs]]" >&2; exit 2; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [seconds-per-run [runs]]" >&2; exit 2; }

"$ROOT/tools/install_deps.sh"
bazel build --config=release //tools/larson:larson || { echo "stability: larson does not build" >&2; exit 1; }
if [ -z "${HAKMEM_LIB:-}" ]; then
  bazel build --config=release //:libhakmem.so || {
    echo "stability: ERROR: hakmem's library //:libhakmem.so does not build" >&2
    exit 1
  }
fi

# Private copies: a build started meanwhile cannot replace them mid-test.
work="$(mktemp -d "${TMPDIR:-/tmp}/hakmem-stability.XXXXXX")"
cp "$ROOT/bazel-out/k8-opt/bin/tools/larson/larson" "$work/larson"
lib="${HAKMEM_LIB:-$ROOT/bazel-out/k8-opt/bin/libhakmem.so}"
[ -f "$lib" ] || { echo "stability: no hakmem library at $lib" >&2; exit 1; }
cp "$lib" "$work/libhakmem.so"

args=("$seconds" 8 128 1024 1 12345 4)
limit="$(awk -v s="$seconds" 'BEGIN { printf "%d", s * 5 + 30 }')"
echo "stability: $runs runs of: larson ${args[*]}  (hakmem: $lib)"
pass=0
for ((i = 1; i <= runs; i++)); do
  log="$work/run$i.log"
  set +e
  HAKMEM_LIB="$work/libhakmem.so" timeout -k 5 "$limit" \
    "$ROOT/tools/hakmem-run" "$work/larson" "${args[@]}" >"$log" 2>&1
  rc=$?
  set -e
  tp="$(sed -n 's/^Throughput = \([0-9]*\) operations per second$/\1/p' "$log")"
  if [ $rc -eq 0 ] && [ -n "$tp" ] && grep -q ' corrupt=0$' "$log"; then
    pass=$((pass + 1))
    printf 'run %2d: ok    %s ops/s\n' "$i" "$tp"
    rm -f "$log"
  else
    why="exit $rc"
    [ $rc -eq 124 ] && why="timed out after ${limit}s"
    [ $rc -gt 128 ] && [ $rc -ne 124 ] && why="killed by signal $((rc - 128))"
    [ $rc -eq 3 ] && why="corrupted blocks"
    printf 'run %2d: FAIL  %s (log: %s)\n' "$i" "$why" "$log"
    tail -n 5 "$log" | sed 's/^/        /'
  fi
done
echo "$pass/$runs"
if [ "$pass" -ne "$runs" ]; then
  echo "stability: FAILED ($((runs - pass)) of $runs runs failed; logs in $work)" >&2
  exit 1
fi
rm -rf "$work"
