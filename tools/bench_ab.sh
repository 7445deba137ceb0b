#!/usr/bin/env bash
# Compares two builds of libhakmem.so on the benchmark suite, alternating
# them run by run, so that both see the same machine (load, thermals).
#
#   tools/bench_ab.sh [--runs N] [--seconds S] [--only REGEX] A.so B.so
#
# Each of the N rounds (default 5) runs tools/bench.sh once per library
# (--allocators hakmem --reps 1), A first in odd rounds and B first in even
# ones. The report gives, per workload and metric, the median over the
# rounds for A and for B and the ratio B/A (above 1 is faster for
# throughput, larger for memory). Results: results/ab-<timestamp>/.
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$ROOT"

runs=5
seconds=1.2
only=""
while [ $# -gt 2 ]; do
  case "$1" in
    --runs) runs="${2:?}"; shift ;;
    --seconds) seconds="${2:?}"; shift ;;
    --only) only="${2:?}"; shift ;;
    *) echo "usage: tools/bench_ab.sh [--runs N] [--seconds S] [--only REGEX] A.so B.so" >&2; exit 2 ;;
  esac
  shift
done
[ $# -eq 2 ] || { echo "usage: tools/bench_ab.sh [--runs N] [--seconds S] [--only REGEX] A.so B.so" >&2; exit 2; }
a="$(readlink -f "$1")"
b="$(readlink -f "$2")"
[ -f "$a" ] && [ -f "$b" ] || { echo "bench_ab: no library at $1 or $2" >&2; exit 2; }

out="$ROOT/results/ab-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
echo "A: $a" >"$out/meta.txt"
echo "B: $b" >>"$out/meta.txt"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/meta.txt"

# Builds the benchmark programs once; the rounds then use --no-build.
bazel build --config=release //tools/larson:larson //tools/larson:larson_cxx //tools/workloads:workloads

extra=(--no-build --allocators hakmem --reps 1 --seconds "$seconds")
[ -n "$only" ] && extra+=(--only "$only")
for ((i = 1; i <= runs; i++)); do
  order=(A B)
  [ $((i % 2)) -eq 0 ] && order=(B A)
  for side in "${order[@]}"; do
    lib="$a"
    [ "$side" = B ] && lib="$b"
    echo "bench_ab: round $i/$runs, $side" >&2
    HAKMEM_LIB="$lib" tools/bench.sh "${extra[@]}" --out "$out/$side-$i" >/dev/null
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/meta.txt"

python3 - "$out" "$runs" <<'PY' | tee "$out/ab.md"
import csv, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
values = {}  # (workload, metric) -> side -> [medians]
for side in "AB":
    for i in range(1, runs + 1):
        with open(f"{out}/{side}-{i}/summary.csv") as f:
            for row in csv.DictReader(f):
                if row["allocator"] != "hakmem" or row["median"] in ("", "nan"):
                    continue
                key = (row["workload"], row["metric"])
                values.setdefault(key, {"A": [], "B": []})[side].append(float(row["median"]))
print(f"| workload | metric | A (median of {runs}) | B (median of {runs}) | B/A |")
print("|---|---|---:|---:|---:|")
for (w, m), v in values.items():
    if not v["A"] or not v["B"]:
        continue
    ma, mb = statistics.median(v["A"]), statistics.median(v["B"])
    ratio = mb / ma if ma else float("nan")
    print(f"| {w} | {m} | {ma:.4g} | {mb:.4g} | {ratio:.3f} |")
PY
cat "$out/meta.txt"
