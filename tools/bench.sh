#!/usr/bin/env bash
# hakmem benchmark suite: every workload under hakmem, glibc, mimalloc,
# jemalloc and tcmalloc, alternating allocators run by run.
#
#   tools/bench.sh [--quick | --full] [options]
#
#   (default)         3 repetitions, 1.2 s per timed run, 1 GiB memory-return
#                     (about 10 minutes on 2 cores)
#   --quick           2 repetitions, 0.3 s per run, 256 MiB (about 2 minutes)
#   --full            5 repetitions, 4 s per run, 1 GiB, extra workloads
#                     (about 45 minutes)
#   --reps N          repetitions per (workload, allocator)
#   --seconds S       duration of each timed run
#   --only REGEX      run only the workloads whose name matches (grep -E)
#   --allocators LIST comma-separated subset of hakmem,glibc,mimalloc,jemalloc,tcmalloc
#   --out DIR         results directory (default results/<timestamp>; results/latest
#                     points at the newest)
#   --no-build        use the binaries already built (bazel-out/k8-opt/bin)
#   --without-hakmem  compare the peers only (hakmem is otherwise required)
#
# HAKMEM_LIB=/path/libhakmem.so measures that library instead of building
# //:libhakmem.so. HAKMEM_* settings in the environment reach every run
# (they only affect hakmem).
#
# Each (workload, allocator) pair runs --reps times; within a repetition the
# allocators take turns on each workload, starting from a different one each
# repetition. The report gives the median of the runs, the median peak
# resident set (getrusage in the benchmark process), and each allocator's
# ratio to the best. It writes table.md, summary.csv, runs.csv, chart.svg and
# the raw logs to the results directory, and prints the table.
# Exit status: 0 all runs passed, 1 setup failed (hakmem not buildable, ...),
# 3 some runs failed or crashed (the table marks them).
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$ROOT"

mode=default
reps=""
seconds=""
only=""
allocators="hakmem,glibc,mimalloc,jemalloc,tcmalloc"
out=""
build=1
need_hakmem=1

die() { echo "bench: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --reps) reps="${2:?}"; shift ;;
    --seconds) seconds="${2:?}"; shift ;;
    --only) only="${2:?}"; shift ;;
    --allocators) allocators="${2:?}"; shift ;;
    --out) out="${2:?}"; shift ;;
    --no-build) build=0 ;;
    --without-hakmem) need_hakmem=0 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift
done

case "$mode" in
  quick)   : "${reps:=2}" "${seconds:=0.3}"; mr_total=256M; mr_idle=0.2 ;;
  default) : "${reps:=3}" "${seconds:=1.2}"; mr_total=1G;   mr_idle=0.5 ;;
  full)    : "${reps:=5}" "${seconds:=4}";   mr_total=1G;   mr_idle=2 ;;
esac
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || die "--reps needs a positive integer"
[[ "$seconds" =~ ^[0-9]*\.?[0-9]+$ ]] || die "--seconds needs a number"

# ---------------------------------------------------------------------------
# Workloads: name | command. Binaries: larson, larson_cxx, workloads.
S="$seconds"
WORKLOADS=(
  "larson-2t|larson $S 8 1000 5000 100 4141 2"
  "larson-4t-r1|larson $S 8 128 1024 1 12345 4"
  "larson-cxx-2t|larson_cxx $S 8 1000 5000 100 4141 2"
  "producer-consumer|workloads producer-consumer seconds=$S pairs=1"
  "false-sharing|workloads false-sharing seconds=$S threads=2"
  "thread-churn|workloads thread-churn seconds=$S threads=4"
  "size-mix|workloads size-mix seconds=$S"
  "realloc-growth|workloads realloc-growth seconds=$S"
  "large-blocks|workloads large-blocks seconds=$S threads=2"
  "memory-return|workloads memory-return total=$mr_total threads=2 idle=$mr_idle"
  # Cross-thread frees and threads that come and go.
  "batch-handoff-4t|workloads batch-handoff seconds=$S threads=4"
  "batch-handoff-8t|workloads batch-handoff seconds=$S threads=8"
  "lifetimes-8t|workloads lifetimes seconds=$S threads=8"
  "larson-8t|larson $S 8 1000 5000 100 4141 8"
  "larson-16t|larson $S 8 1000 5000 100 4141 16"
  # One thread's small objects, and the cost of one malloc + free pair.
  "small-churn|workloads small-churn seconds=$S"
  "trees|workloads trees seconds=$S"
  "mixed-loop|workloads mixed-loop seconds=$S"
  "pair-16|workloads pair seconds=$S size=16"
  "pair-64|workloads pair seconds=$S size=64"
  "pair-256|workloads pair seconds=$S size=256"
  "pair-1024|workloads pair seconds=$S size=1024"
)
if [ "$mode" = full ]; then
  WORKLOADS+=(
    "batch-handoff-ring-2t|workloads batch-handoff seconds=$S threads=2 ring=1"
    "mixed-loop-2t|workloads mixed-loop seconds=$S threads=2"
    "larson-4t-r100|larson $S 8 128 1024 100 12345 4"
    "producer-consumer-2p|workloads producer-consumer seconds=$S pairs=2"
    "thread-churn-16t|workloads thread-churn seconds=$S threads=16"
  )
fi
if [ -n "$only" ]; then
  selected=()
  for w in "${WORKLOADS[@]}"; do
    if grep -qE -- "$only" <<<"${w%%|*}"; then selected+=("$w"); fi
  done
  [ ${#selected[@]} -gt 0 ] || die "--only '$only' matches no workload"
  WORKLOADS=("${selected[@]}")
fi

# ---------------------------------------------------------------------------
# Dependencies and build.
"$ROOT/tools/install_deps.sh" || die "tools/install_deps.sh failed"
PY=/usr/bin/python3
[ -x "$PY" ] || die "$PY not found (Debian package python3)"

BIN="$ROOT/bazel-out/k8-opt/bin"
hakmem_note=""
if [ "$build" = 1 ]; then
  echo "bench: building the benchmark programs (bazel build --config=release)" >&2
  bazel build --config=release //tools/larson:larson //tools/larson:larson_cxx \
    //tools/workloads:workloads || die "the benchmark programs do not build"
  if [[ ",$allocators," == *,hakmem,* ]] && [ -z "${HAKMEM_LIB:-}" ]; then
    echo "bench: building hakmem (bazel build --config=release //:libhakmem.so)" >&2
    if ! bazel build --config=release //:libhakmem.so; then
      if [ "$need_hakmem" = 1 ]; then
        echo "bench: ERROR: hakmem's library //:libhakmem.so does not build." >&2
        echo "bench: hakmem is the product under test, so there is nothing to benchmark." >&2
        echo "bench: (--without-hakmem compares the peer allocators only.)" >&2
        exit 1
      fi
      hakmem_note="hakmem: //:libhakmem.so does not build; left out (--without-hakmem)"
    fi
  fi
fi
for b in larson/larson larson/larson_cxx workloads/workloads; do
  [ -x "$BIN/tools/$b" ] || die "tools/$b is not built (run without --no-build)"
done

# ---------------------------------------------------------------------------
# Results directory; binaries are copied in so that builds running meanwhile
# cannot swap them out under the benchmark.
stamp="$(date +%Y%m%d-%H%M%S)"
if [ -z "$out" ]; then
  mkdir -p "$ROOT/results"
  out="$ROOT/results/$stamp"
fi
mkdir -p "$out/bin" "$out/logs"
out="$(cd "$out" && pwd)"
cp "$BIN/tools/larson/larson" "$BIN/tools/larson/larson_cxx" "$BIN/tools/workloads/workloads" "$out/bin/"

# ---------------------------------------------------------------------------
# Allocators: name -> library to preload ("" = none: glibc's malloc).
libdir=""
for d in /usr/lib/x86_64-linux-gnu /usr/lib/"$(gcc -print-multiarch 2>/dev/null || true)" /usr/lib64 /usr/lib; do
  if [ -d "$d" ]; then libdir="$d"; break; fi
done
peer_lib() {
  case "$1" in
    mimalloc) echo "$libdir/libmimalloc.so.2" ;;
    jemalloc) echo "$libdir/libjemalloc.so.2" ;;
    tcmalloc) echo "$libdir/libtcmalloc_minimal.so.4" ;;
  esac
}

names=()
libs=()
notes=()
[ -n "$hakmem_note" ] && notes+=("$hakmem_note")
IFS=',' read -r -a wanted <<<"$allocators"
for a in "${wanted[@]}"; do
  case "$a" in
    hakmem)
      src="${HAKMEM_LIB:-$BIN/libhakmem.so}"
      if [ -f "$src" ] && [ -z "$hakmem_note" ]; then
        cp "$src" "$out/bin/libhakmem.so"
        names+=(hakmem); libs+=("$out/bin/libhakmem.so")
      elif [ "$need_hakmem" = 1 ]; then
        die "hakmem's library is not at $src (build it: bazel build --config=release //:libhakmem.so)"
      elif [ -z "$hakmem_note" ]; then
        notes+=("hakmem: not built; left out (--without-hakmem)")
      fi
      ;;
    glibc) names+=(glibc); libs+=("") ;;
    mimalloc|jemalloc|tcmalloc)
      lib="$(peer_lib "$a")"
      if [ -f "$lib" ]; then
        names+=("$a"); libs+=("$lib")
      else
        notes+=("$a: $lib not installed; skipped")
        echo "bench: note: $a skipped ($lib not installed)" >&2
      fi
      ;;
    *) die "unknown allocator '$a' (hakmem, glibc, mimalloc, jemalloc, tcmalloc)" ;;
  esac
done
[ ${#names[@]} -gt 0 ] || die "no allocator to run"

# A library that ld.so refuses to preload would silently measure glibc.
for i in "${!names[@]}"; do
  [ -n "${libs[$i]}" ] || continue
  msg="$(LD_PRELOAD="${libs[$i]}" /bin/true 2>&1 || true)"
  [ -z "$msg" ] || die "${names[$i]}: cannot preload ${libs[$i]}: $msg"
done

# ---------------------------------------------------------------------------
# Metadata.
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
{
  echo "date: $(date -Is)"
  echo "mode: $mode, repetitions: $reps, seconds per timed run: $seconds"
  echo "machine: $(nproc) CPUs, $(uname -srm), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- core BUILD.bazel lockfree 2>/dev/null || echo ' (uncommitted changes)')"
  if [[ " ${names[*]} " == *" hakmem "* ]]; then
    echo "hakmem library: ${HAKMEM_LIB:-//:libhakmem.so (release build)}"
  fi
  echo "glibc: $(pkgver libc6)"
  echo "mimalloc: $(pkgver libmimalloc2.0) jemalloc: $(pkgver libjemalloc2) tcmalloc: $(pkgver libtcmalloc-minimal4)"
} >"$out/meta.txt"
printf '%s\n' "${notes[@]}" >"$out/notes.txt"
printf '%s\n' "${names[@]}" >"$out/allocators.txt"
: >"$out/workloads.tsv"
for w in "${WORKLOADS[@]}"; do printf '%s\t%s\n' "${w%%|*}" "${w#*|}" >>"$out/workloads.tsv"; done

# ---------------------------------------------------------------------------
# Runs.
echo "rep,workload,allocator,status,metric,value" >"$out/runs.csv"
n_alloc=${#names[@]}
total=$((reps * ${#WORKLOADS[@]} * n_alloc))
done_runs=0
failed=0
limit="$(awk -v s="$seconds" 'BEGIN { printf "%d", s * 10 + 60 }')"
echo "bench: $total runs ($mode: ${#WORKLOADS[@]} workloads x $n_alloc allocators x $reps repetitions) -> $out" >&2

for ((rep = 1; rep <= reps; rep++)); do
  for w in "${WORKLOADS[@]}"; do
    wname="${w%%|*}"
    read -r -a cmd <<<"${w#*|}"
    for ((k = 0; k < n_alloc; k++)); do
      i=$(((k + rep - 1) % n_alloc))
      a="${names[$i]}"
      log="$out/logs/$wname.$a.$rep.log"
      done_runs=$((done_runs + 1))
      set +e
      LD_PRELOAD="${libs[$i]}" timeout -k 5 "$limit" "$out/bin/${cmd[0]}" "${cmd[@]:1}" >"$log" 2>&1
      rc=$?
      set -e
      result="$(grep -m1 '^RESULT ' "$log" || true)"
      status=ok
      if [ $rc -ne 0 ]; then
        status="exit $rc"
        [ $rc -eq 124 ] && status="timeout"
        [ $rc -gt 128 ] && [ $rc -ne 124 ] && status="signal $((rc - 128))"
        [ $rc -eq 3 ] && status="corruption"
      elif [ -z "$result" ]; then
        status="no result"
      elif grep -q "cannot be preloaded" "$log"; then
        status="preload failed"
      fi
      if [ "$status" = ok ]; then
        for kv in ${result#RESULT }; do
          key="${kv%%=*}"; val="${kv#*=}"
          [[ "$val" =~ ^-?[0-9.]+$ ]] || continue
          echo "$rep,$wname,$a,ok,$key,$val" >>"$out/runs.csv"
        done
        shown="$(grep -oE '(ops_per_sec|ns_per_pair|rss_idle_kb)=[0-9.]+' <<<"$result" | head -1)"
      else
        failed=$((failed + 1))
        echo "$rep,$wname,$a,$status,," >>"$out/runs.csv"
        shown="FAILED ($status, log: $log)"
      fi
      printf 'bench: [%d/%d] rep %d %-18s %-9s %s\n' "$done_runs" "$total" "$rep" "$wname" "$a" "$shown" >&2
    done
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/meta.txt"

# ---------------------------------------------------------------------------
# Report.
"$PY" "$ROOT/tools/bench_report.py" "$out"
if [ "$out" = "$ROOT/results/$stamp" ]; then
  ln -sfn "$stamp" "$ROOT/results/latest"
fi
echo "bench: results in $out (table.md, summary.csv, runs.csv, chart.svg, logs/)" >&2
if [ $failed -gt 0 ]; then
  echo "bench: $failed of $total runs FAILED (see the table and logs)" >&2
  exit 3
fi
