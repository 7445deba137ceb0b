#!/usr/bin/env bash
# Fuzzes hakmem's hak_ API with libFuzzer (tests/fuzz/alloc_fuzzer.cc).
#
#   tools/fuzz.sh              bounded run: 25 s (FUZZ_SECONDS overrides)
#   tools/fuzz.sh --long       one hour (FUZZ_SECONDS overrides), same corpus
#   tools/fuzz.sh --runs N     exactly N inputs
#   tools/fuzz.sh ... -- ARGS  extra libFuzzer arguments
#
# Bazel's toolchain here is gcc, which has no libFuzzer, so this compiles
# the sources of the Bazel target //api:hakmem_api (the hak_ API and
# everything under it, not the malloc overrides: ASan owns malloc), as
# `bazel query` lists them, and the fuzz target directly with clang++ and
# -fsanitize=fuzzer,address,undefined. The binary, the corpus (kept between
# runs so each run starts where the last stopped) and crash reproducers live
# under build/fuzz/. A crash reproducer is replayed with
#   build/fuzz/alloc_fuzzer build/fuzz/artifacts/crash-...
# Exit status: 0 if no input failed, nonzero otherwise. The last line says
# how many inputs ran.
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-25}"
runs=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --long) seconds="${FUZZ_SECONDS:-3600}" ;;
    --runs) runs="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: tools/fuzz.sh [--long] [--runs N] [-- libFuzzer args]" >&2; exit 2 ;;
  esac
  shift
done

CXX="${CXX_FUZZ:-clang++-14}"
command -v "$CXX" >/dev/null || CXX=clang++
out=build/fuzz
bin="$out/alloc_fuzzer"
mkdir -p "$out/corpus" "$out/artifacts"

# The .cc files of //api:hakmem_api and its dependencies in this workspace.
mapfile -t sources < <(bazel query --noshow_progress 'kind("source file", deps(//api:hakmem_api))' \
  2>/dev/null | grep -E '^//[^@]*\.cc$' | sed -E 's#^//([^:]*):#\1/#')
if [ ${#sources[@]} -eq 0 ]; then
  echo "fuzz: bazel query found no sources of //api:hakmem_api" >&2
  exit 1
fi
sources+=(tests/fuzz/alloc_fuzzer.cc)
# platform/version.h is generated from version.bzl (//platform:version_h).
if ! bazel build --noshow_progress //platform:version_h 2>/dev/null; then
  echo "fuzz: bazel build //platform:version_h failed" >&2
  exit 1
fi
generated=bazel-out/k8-fastbuild/bin

# Rebuild when any source or header is newer than the binary.
if [ ! -x "$bin" ] || [ -n "$(find core lockfree platform api tests/fuzz tools/fuzz.sh version.bzl -newer "$bin" -print -quit)" ]; then
  echo "fuzz: building $bin with $CXX" >&2
  "$CXX" -std=c++20 -O1 -g -fno-omit-frame-pointer -mcx16 -I. -I"$generated" -pthread \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -include tests/fuzz/source_location_shim.h \
    "${sources[@]}" -o "$bin.tmp"
  mv "$bin.tmp" "$bin"
fi

args=(-max_len=4096 -timeout=30 -rss_limit_mb=3072 -print_final_stats=1
      -artifact_prefix="$out/artifacts/")
if [ -n "$runs" ]; then
  args+=(-runs="$runs")
else
  args+=(-max_total_time="$seconds")
fi

log="$out/last_run.log"
set +e
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
  "$bin" "${args[@]}" "${extra[@]}" "$out/corpus" >"$log" 2>&1
rc=$?
set -e
executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
corpus=$(ls "$out/corpus" | wc -l)
if [ "$rc" -ne 0 ]; then
  tail -40 "$log" >&2
  echo "fuzz: FAILED after ${executed:-?} inputs (log: $log, reproducers: $out/artifacts/)" >&2
  exit "$rc"
fi
echo "fuzz: ${executed:-?} inputs run, no failure; corpus ${corpus} inputs (log: $log)"
