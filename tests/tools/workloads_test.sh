#!/usr/bin/env bash
# Runs every subcommand of the benchmark workloads, linked with hakmem, for a
# fraction of a second each. A run passes if it exits 0 (a workload exits 1
# when its own accounting fails, e.g. blocks produced != consumed, and 3
# when a block's stamp was overwritten: a block handed out twice), prints
# its RESULT line with corrupt=0 and a positive measurement, and hakmem
# reported no heap error (each run is sized so that even the unoptimised
# build completes operations in its time). `workloads help` must list exactly the
# subcommands run here, so a new one cannot go untested.
# Usage: workloads_test.sh PATH_TO_workloads_on_hakmem
set -uo pipefail
bin="$1"
runs=(
  "producer-consumer seconds=0.3"
  "false-sharing seconds=0.3"
  "thread-churn seconds=0.3"
  "size-mix seconds=0.3"
  "realloc-growth seconds=0.3"
  "large-blocks seconds=0.2 live=2 max=2M"
  "memory-return total=32M idle=0.05"
  "batch-handoff seconds=0.3 threads=4"
  "batch-handoff seconds=0.3 threads=3 ring=1"
  "lifetimes seconds=0.2 threads=8 allocs=2000"
  "small-churn seconds=0.3"
  "trees seconds=0.3"
  "mixed-loop seconds=0.3 threads=2"
  "pair seconds=0.3 size=64"
)
fail=0
listed="$("$bin" help | awk 'NR > 1 && /^  [a-z]/ {print $1}' | sort -u)"
ran="$(printf '%s\n' "${runs[@]}" | awk '{print $1}' | sort -u)"
if [ "$listed" != "$ran" ]; then
  echo "FAIL: subcommands listed by 'workloads help' and run here differ:" >&2
  diff <(echo "$listed") <(echo "$ran") >&2
  fail=1
fi
for r in "${runs[@]}"; do
  read -r -a args <<<"$r"
  out="$("$bin" "${args[@]}" 2>&1)"
  rc=$?
  result="$(grep -m1 '^RESULT ' <<<"$out")"
  metric="$(grep -oE '(ops_per_sec|ns_per_pair|rss_idle_kb)=[0-9.]+' <<<"$result" | head -1)"
  if [ $rc -ne 0 ] || [ -z "$result" ] || ! grep -q ' corrupt=0$' <<<"$result" ||
     ! awk -F= '{ exit !($2 > 0) }' <<<"$metric" || grep -q '^hakmem: ' <<<"$out"; then
    echo "FAIL: workloads $r (exit $rc):" >&2
    sed 's/^/    /' <<<"$out" >&2
    fail=1
  else
    echo "ok: workloads $r: $metric"
  fi
done
exit $fail
