#!/usr/bin/env bash
# Golden counts of the fast path (in the manner of tcmalloc's
# testing/fast_path.*.golden): what one call of malloc, free, operator new,
# sized operator delete, hak_malloc and hak_free executes when the heap's
# list serves it, in the release libhakmem.so.
#
#   tests/api/fast_path_golden_test.sh LIBHAKMEM_SO            compare
#   tests/api/fast_path_golden_test.sh LIBHAKMEM_SO --update   rewrite the golden file
#
# Per call, measured with callgrind (instructions, counts repeatable for the
# same binary whatever the machine's load) over tests/api/fast_path_driver.cc:
#   instructions  executed instructions
#   loads stores  data reads and writes (stack included)
#   branches      conditional and indirect branches executed
#   calls         calls out of the function
# and from the disassembly of the whole function (every inlined path):
#   locked        locked read-modify-writes (lock prefix, xchg)
# Any difference from tests/api/fast_path.golden fails: a change that adds
# to the hot path fails until the golden file is updated on purpose, and one
# that removes from it shows its gain there. The counts are those of Debian
# 12's gcc 12 at -O2 (--config=release).
set -euo pipefail
cd "$(dirname "$0")/../.."

lib="$(readlink -f "${1:?usage: $0 LIBHAKMEM_SO [--update]}")"
update="${2:-}"
golden=tests/api/fast_path.golden
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
n=1048576

g++ -std=c++20 -O2 tests/api/fast_path_driver.cc -o "$tmp/driver" -ldl
LD_PRELOAD="$lib" valgrind -q --log-file="$tmp/valgrind.log" --tool=callgrind --cache-sim=yes --branch-sim=yes \
  --compress-strings=no --compress-pos=no --callgrind-out-file="$tmp/cg.out" "$tmp/driver" "$n"
objdump -d --no-show-raw-insn "$lib" >"$tmp/disasm"

python3 - "$tmp/cg.out" "$tmp/disasm" "$n" >"$tmp/counts" <<'PY'
import re, sys
cg, disasm, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
# name in callgrind -> mangled symbol in the library
functions = [
    ("malloc", "malloc"),
    ("free", "free"),
    ("operator new(unsigned long)", "_Znwm"),
    ("operator delete(void*, unsigned long)", "_ZdlPvm"),
    ("hak_malloc", "hak_malloc"),
    ("hak_free", "hak_free"),
]
events, self_cost, calls = None, {}, {}
fn = None
in_call = False
for line in open(cg):
    line = line.rstrip("\n")
    if line.startswith("events:"):
        events = line.split()[1:]
    elif line.startswith("fn="):
        fn = line[3:]
        in_call = False
    elif line.startswith("calls="):
        calls[fn] = calls.get(fn, 0) + int(line.split()[0][6:])
        in_call = True  # the next cost line is the call's inclusive cost
    elif line and (line[0].isdigit() or line[0] == "+" or line[0] == "-"):
        if in_call:
            in_call = False
            continue
        parts = line.split()[1:]
        acc = self_cost.setdefault(fn, [0] * len(events))
        for i, v in enumerate(parts):
            acc[i] += int(v)
index = {e: i for i, e in enumerate(events)}
body = {}
current = None
for line in open(disasm):
    m = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
    if m:
        current = m.group(1)
        body[current] = []
    elif current and line.strip():
        body[current].append(line)
print(f"{'function':40} instructions loads stores branches calls locked")
for name, symbol in functions:
    cost = self_cost.get(name)
    if cost is None:
        sys.exit(f"no callgrind record of {name}")
    per = lambda e: round(cost[index[e]] / n)
    branches = round((cost[index["Bc"]] + cost[index["Bi"]]) / n)
    # A lock prefix, or xchg with a memory operand (locked implicitly;
    # `xchg %ax,%ax` is padding).
    locked = sum(1 for l in body.get(symbol, [])
                 if re.search(r"\tlock ", l) or re.search(r"\txchg\s+\S*\(", l))
    print(f"{symbol:40} {per('Ir'):12} {per('Dr'):5} {per('Dw'):6} {branches:8} "
          f"{round(calls.get(name, 0) / n):5} {locked:6}")
PY

if [ "$update" = "--update" ]; then
  { sed -n '/^#/p' "$golden" 2>/dev/null; cat "$tmp/counts"; } >"$tmp/new"
  mv "$tmp/new" "$golden"
  echo "fast_path_golden: wrote $golden"
  cat "$golden"
  exit 0
fi
if ! diff <(grep -v '^#' "$golden") "$tmp/counts" >"$tmp/diff"; then
  echo "fast_path_golden: the fast path changed (< golden, > now):"
  cat "$tmp/diff"
  echo "If the change is intended, run: $0 $1 --update"
  exit 1
fi
echo "fast_path_golden: matches $golden"
cat "$tmp/counts"
