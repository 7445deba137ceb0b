#!/usr/bin/env bash
# An uninstrumented libhakmem.so preloaded into programs built with a
# sanitizer: each program runs to completion, hakmem says in one line on
# stderr that it steps aside, no sanitizer report appears, and a heap bug
# in the same program is still reported by the sanitizer (the control).
#
#   tests/api/sanitizer_preload_test.sh LIBHAKMEM_SO
#
# Programs: tests/api/sanitized_program.cc, built with gcc (shared sanitizer
# runtimes) and clang (runtimes linked into the executable). gcc's shared
# ASan runtime insists on coming first in the library list, so that case runs
# through tools/hakmem-run, which puts it first; run by hand, ASan's own
# one-line message says the same.
set -uo pipefail
cd "$(dirname "$0")/../.."

lib="$(readlink -f "${1:?usage: $0 LIBHAKMEM_SO}")"
[ -f "$lib" ] || { echo "no library at $lib" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# check_run NAME EXPECTED_LINE CMD...: the workload must print "ok", exit 0,
# print EXPECTED_LINE exactly once on stderr and no sanitizer report.
check_run() {
  local name="$1" line="$2"
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  local lines
  lines=$(grep -cxF "$line" "$tmp/err")
  if [ "$rc" -ne 0 ] || [ "$(cat "$tmp/out")" != "ok" ] || [ "$lines" -ne 1 ] ||
    grep -qE 'ERROR: [A-Za-z]+Sanitizer|WARNING: [A-Za-z]+Sanitizer' "$tmp/err"; then
    fail "$name: exit $rc, $lines announcement lines"
    sed 's/^/    stdout: /' "$tmp/out" | head -5
    sed 's/^/    stderr: /' "$tmp/err" | head -20
    return
  fi
  echo "ok:   $name"
}

# check_control NAME PATTERN CMD...: the sanitizer must report the heap bug.
check_control() {
  local name="$1" pattern="$2"
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" -eq 0 ] || ! grep -qF "$pattern" "$tmp/err"; then
    fail "$name: exit $rc, no '$pattern'"
    sed 's/^/    stderr: /' "$tmp/err" | head -20
    return
  fi
  echo "ok:   $name (reported: $pattern)"
}

announce() { echo "hakmem: $1 is in this process: its allocator serves malloc and new (hakmem steps aside)"; }

# compiler sanitizer name control-mode report
cases=(
  "g++ thread ThreadSanitizer race WARNING: ThreadSanitizer: data race"
  "g++ address AddressSanitizer overflow ERROR: AddressSanitizer: heap-buffer-overflow"
  "clang++ thread ThreadSanitizer race WARNING: ThreadSanitizer: data race"
  "clang++ address AddressSanitizer overflow ERROR: AddressSanitizer: heap-buffer-overflow"
  "clang++ memory MemorySanitizer uninit WARNING: MemorySanitizer: use-of-uninitialized-value"
)
for c in "${cases[@]}"; do
  read -r cxx sanitizer name control report <<<"$c"
  prog="$tmp/prog_${cxx%++}_$sanitizer"
  if ! "$cxx" -std=c++20 -O1 -g -fsanitize="$sanitizer" -pthread -I. \
    tests/api/sanitized_program.cc -o "$prog" -ldl 2>"$tmp/build"; then
    fail "$cxx -fsanitize=$sanitizer: build failed"
    sed 's/^/    /' "$tmp/build" | head -10
    continue
  fi
  label="$cxx -fsanitize=$sanitizer"
  if [ "$cxx" = g++ ] && [ "$sanitizer" = address ]; then
    # Plain LD_PRELOAD: ASan's own message, a normal exit, no crash.
    LD_PRELOAD="$lib" "$prog" workload >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ge 128 ] || ! grep -q "ASan runtime does not come first" "$tmp/err"; then
      fail "$label, plain LD_PRELOAD: exit $rc"
      sed 's/^/    stderr: /' "$tmp/err" | head -10
    else
      echo "ok:   $label, plain LD_PRELOAD: ASan asks for its runtime first (exit $rc)"
    fi
    check_run "$label via tools/hakmem-run" "$(announce "$name")" \
      env HAKMEM_LIB="$lib" tools/hakmem-run "$prog" workload
    check_run "$label, verify_asan_link_order=0" "$(announce "$name")" \
      env ASAN_OPTIONS=verify_asan_link_order=0 LD_PRELOAD="$lib" "$prog" workload
    check_control "$label control" "$report" env HAKMEM_LIB="$lib" tools/hakmem-run "$prog" "$control"
    continue
  fi
  check_run "$label" "$(announce "$name")" env LD_PRELOAD="$lib" "$prog" workload
  check_control "$label control" "$report" env LD_PRELOAD="$lib" "$prog" "$control"
done

# Valgrind: libhakmem.so has a soname (libhakmem.so.MAJOR), and Memcheck's
# documented replacement of malloc covers libc and objects without one;
# --soname-synonyms=somalloc=libhakmem.so* names hakmem as a malloc library
# too, so Memcheck's allocator serves the program and it reports heap bugs as
# usual. (Valgrind 3.19 also redirects malloc in any object, flag or not:
# --trace-redir=yes shows libhakmem.so.0:malloc redirected either way.)
if command -v valgrind >/dev/null; then
  prog="$tmp/prog_plain"
  g++ -std=c++20 -O1 -g -pthread -I. tests/api/sanitized_program.cc -o "$prog" -ldl
  vg=(valgrind -q --error-exitcode=99 --leak-check=no "--soname-synonyms=somalloc=libhakmem.so*")
  LD_PRELOAD="$lib" "${vg[@]}" "$prog" workload 500 >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ "$rc" -ne 0 ] || [ "$(cat "$tmp/out")" != "ok" ]; then
    fail "valgrind, workload: exit $rc"
    sed 's/^/    stderr: /' "$tmp/err" | head -20
  else
    echo "ok:   valgrind, workload"
  fi
  check_control "valgrind control" "Invalid write of size 1" \
    env LD_PRELOAD="$lib" "${vg[@]}" "$prog" overflow
fi

if [ "$failures" -ne 0 ]; then
  echo "sanitizer_preload_test: $failures failed"
  exit 1
fi
echo "sanitizer_preload_test: all passed"
