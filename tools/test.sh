#!/usr/bin/env bash
# Runs hakmem's whole test suite:
#   1. tools/install_deps.sh (Debian packages; a no-op when all are present);
#   2. bazel test //...                      every test, incl. Relacy models;
#   2b. bazel test --config=debug //tests/... every test under //tests/...
#                                            with HAKMEM_ASSERT compiled in;
#   3. bazel test --config=tsan  (stress)    every test tagged "stress" under
#                                            //tests/..., built with TSan,
#                                            except those tagged "no_tsan" or
#                                            "no_sanitizer";
#   4. bazel test --config=asan  //tests/... every test under //tests/...
#                                            with ASan + UBSan, except those
#                                            tagged "no_sanitizer";
#   5. tests/api/sanitizer_preload_test.sh   programs built with gcc and
#                                            clang sanitizers, run with the
#                                            release libhakmem.so preloaded;
#   6. tests/api/fast_path_golden_test.sh   the release fast path's counts
#                                            per call against
#                                            tests/api/fast_path.golden;
#   7. tools/fuzz.sh                         a bounded libFuzzer run of the
#                                            hak_ API (FUZZ_SECONDS, default
#                                            25 s; clang, outside Bazel);
#   7. tests/install/install_test.sh         tools/install.sh into a
#                                            temporary prefix, C and C++
#                                            programs through pkg-config and
#                                            CMake, hakmem-run, the JSON
#                                            statistics, uninstall, and the
#                                            .deb of tools/make_deb.sh.
# tests/api:sanitizer_build_test (malloc = "//:hakmem") runs in steps 2, 3
# and 4: a program that links hakmem, built the default way, with TSan and
# with ASan.
# Valgrind (tests/valgrind:valgrind_test) runs in step 2.
# New tests are picked up by their tags; no change here is needed.
# Every step runs even if an earlier one failed (and Bazel runs with
# --keep_going); the script exits non-zero if any step failed and ends with a
# summary and a "N passed, N failed" line counting test targets over all
# steps.
#
# Extra arguments are passed to every bazel invocation.
set -uo pipefail

cd "$(dirname "$0")/.."

if ! bash tools/install_deps.sh; then
  echo "test.sh: tools/install_deps.sh failed" >&2
  exit 1
fi

BEP_DIR="$(mktemp -d)"
trap 'rm -rf "$BEP_DIR"' EXIT

STEP_NAMES=()
STEP_RESULTS=()
TOTAL_PASSED=0
TOTAL_FAILED=0
ANY_FAILED=0

# Counts the test targets of one step from Bazel's build event file.
# Prints "passed failed failed_labels...".
count_tests() {
  python3 - "$1" <<'EOF'
import json, sys
passed, failed = 0, []
try:
    with open(sys.argv[1]) as f:
        for line in f:
            event = json.loads(line)
            summary = event.get("testSummary")
            if summary is None:
                continue
            label = event["id"]["testSummary"]["label"]
            if summary.get("overallStatus") == "PASSED":
                passed += 1
            else:
                failed.append(f"{label}({summary.get('overallStatus')})")
except FileNotFoundError:
    pass
print(passed, len(failed), " ".join(failed))
EOF
}

# run_command_step NAME COMMAND...: a step that is not a bazel test; it
# counts as one test.
run_command_step() {
  local name="$1"
  shift
  echo "=== ${name}: $*"
  local start=$SECONDS
  "$@"
  local rc=$?
  local verdict="PASS" passed=1 failed=0
  if [ "$rc" -ne 0 ]; then
    verdict="FAIL"
    passed=0
    failed=1
    ANY_FAILED=1
  fi
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  STEP_NAMES+=("$name")
  STEP_RESULTS+=("$verdict: $passed passed, $failed failed, $((SECONDS - start)) s")
  echo "=== ${name}: ${verdict}"
}

# run_step NAME BAZEL_TEST_ARGS...
run_step() {
  local name="$1"
  shift
  local bep="$BEP_DIR/step${#STEP_NAMES[@]}.json"
  echo "=== ${name}: bazel test $*"
  local start=$SECONDS
  bazel test --keep_going --build_event_json_file="$bep" "$@" "${EXTRA_ARGS[@]}"
  local rc=$?
  local counts passed failed labels
  counts="$(count_tests "$bep")"
  read -r passed failed labels <<<"$counts"
  # A step that failed without a failing test (a build error, no tests
  # found, ...) counts as one failure.
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
    labels="(bazel exit code $rc)"
  fi
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  local verdict="PASS"
  if [ "$rc" -ne 0 ]; then
    verdict="FAIL"
    ANY_FAILED=1
  fi
  STEP_NAMES+=("$name")
  STEP_RESULTS+=("$verdict: $passed passed, $failed failed, $((SECONDS - start)) s ${labels}")
  echo "=== ${name}: ${verdict} (${passed} passed, ${failed} failed)"
}

EXTRA_ARGS=("$@")

run_step "all tests (default config)" //...
run_step "tests with debug assertions" --config=debug //tests/...
TSAN_FILTER="stress,-no_tsan,-no_sanitizer"
run_step "stress tests under ThreadSanitizer" --config=tsan \
  --build_tag_filters="$TSAN_FILTER" --test_tag_filters="$TSAN_FILTER" //tests/...
run_step "tests under AddressSanitizer+UBSan" --config=asan \
  --build_tag_filters=-no_sanitizer --test_tag_filters=-no_sanitizer //tests/...
preload_into_sanitized_programs() {
  bazel build --config=release //:libhakmem.so "${EXTRA_ARGS[@]}" &&
    bash tests/api/sanitizer_preload_test.sh bazel-out/k8-opt/bin/libhakmem.so
}
run_command_step "libhakmem.so preloaded into sanitized programs" preload_into_sanitized_programs
fast_path_golden() {
  bazel build --config=release //:libhakmem.so "${EXTRA_ARGS[@]}" &&
    bash tests/api/fast_path_golden_test.sh bazel-out/k8-opt/bin/libhakmem.so
}
run_command_step "fast-path golden counts" fast_path_golden
run_command_step "fuzzing (bounded)" env FUZZ_SECONDS="${FUZZ_SECONDS:-25}" bash tools/fuzz.sh
run_command_step "install, pkg-config, CMake, .deb" bash tests/install/install_test.sh

echo
echo "=== test.sh summary"
for i in "${!STEP_NAMES[@]}"; do
  printf '  %-40s %s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}"
done
echo "${TOTAL_PASSED} passed, ${TOTAL_FAILED} failed"
exit "$ANY_FAILED"
