#!/usr/bin/env bash
# Runs valgrind_workload under Memcheck:
#   1. the clean workload: no error, no definitely lost byte (exit 0);
#   2. negative controls: a deliberate leak and a deliberate write after
#      free must both be reported (otherwise Memcheck is not seeing
#      hakmem's blocks and step 1 proves nothing).
# Usage: valgrind_test.sh PATH_TO_valgrind_workload
set -uo pipefail
bin="$1"
if ! command -v valgrind >/dev/null; then
  echo "valgrind is not installed (tools/install_deps.sh installs it)" >&2
  exit 1
fi
log_dir="${TEST_UNDECLARED_OUTPUTS_DIR:-$(mktemp -d)}"
# somalloc=nouserintercepts: Memcheck must not replace the executable's own
# malloc/new (hakmem) with its own, as it does by default.
vg=(valgrind --tool=memcheck --soname-synonyms=somalloc=nouserintercepts
    --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite
    --error-exitcode=97 --num-callers=20)
fail=0

"${vg[@]}" "$bin" >"$log_dir/clean.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ] || ! grep -q "ERROR SUMMARY: 0 errors" "$log_dir/clean.log" ||
   grep -Eq "definitely lost: [1-9]" "$log_dir/clean.log"; then
  echo "FAIL: the clean workload is not clean under Memcheck (exit $rc):" >&2
  cat "$log_dir/clean.log" >&2
  fail=1
else
  echo "clean workload: $(grep -o 'valgrind_workload: .*' "$log_dir/clean.log")"
  grep -E "ERROR SUMMARY|in use at exit|total heap usage|definitely lost|All heap blocks" "$log_dir/clean.log" | sed 's/^==[0-9]*== /  /'
fi

"${vg[@]}" "$bin" leak >"$log_dir/leak.log" 2>&1
rc=$?
# The lost blocks must be hakmem's (announced by track_alloc), of their
# usable sizes: 100 -> 112 bytes, new int[10] -> 48 bytes.
if [ "$rc" -ne 97 ] || ! grep -q "definitely lost: 160 bytes in 2 blocks" "$log_dir/leak.log" ||
   ! grep -q "track_alloc" "$log_dir/leak.log"; then
  echo "FAIL: Memcheck did not report the deliberate leak (exit $rc):" >&2
  cat "$log_dir/leak.log" >&2
  fail=1
else
  echo "negative control, leak: $(grep -o 'definitely lost: .*' "$log_dir/leak.log" | head -1)"
fi

"${vg[@]}" "$bin" use-after-free >"$log_dir/uaf.log" 2>&1
rc=$?
if [ "$rc" -ne 97 ] || ! grep -q "Invalid write of size 1" "$log_dir/uaf.log"; then
  echo "FAIL: Memcheck did not report the deliberate write after free (exit $rc):" >&2
  cat "$log_dir/uaf.log" >&2
  fail=1
else
  echo "negative control, write after free: $(grep -o 'Invalid write of size 1' "$log_dir/uaf.log" | head -1) reported"
fi
exit "$fail"
