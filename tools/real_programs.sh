#!/usr/bin/env bash
# Runs real programs that were not written for hakmem with libhakmem.so
# preloaded, and checks that they produce the same output as without it.
#
#   tools/real_programs.sh [NAME...]     (default: every check)
#
# Checks: Debian's python3 with threads (dicts, queues between threads,
# zlib/lzma/hashlib in a thread pool, sqlite3), git on a clone of this
# repository (log, rev-list, diff, grep, a multithreaded gc), xz -T2,
# pigz -p 2, zstd -T2, sort --parallel=2, g++ -O2 compiling and linking a
# template-heavy program, make -j2 building a small C project, the sqlite3
# shell, and a python3 crash under HAKMEM_CRASH_REPORT=1.
#
# Each program runs twice, without and with LD_PRELOAD; their standard
# output (which includes checksums of the files they wrote) and exit status
# must match, and HAKMEM_STATS=1 must show that hakmem really served the
# preloaded run. Missing Debian packages are installed with apt-get.
#
# The library is $HAKMEM_LIB if set, else the release build
# (bazel build --config=release //:libhakmem.so, run first). Takes about
# two to three minutes on two cores. Exits non-zero if any check fails.
set -uo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
PY=/usr/bin/python3  # Debian's, not a pyenv shim

# ---- prerequisites

need=()
for pair in python3:python3 git:git xz:xz-utils pigz:pigz zstd:zstd sort:coreutils \
            g++:g++ make:make sqlite3:sqlite3; do
  [ -x "/usr/bin/${pair%%:*}" ] || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "real_programs: installing ${need[*]}"
  if ! { apt-get install -y -q "${need[@]}" >/dev/null 2>&1 ||
         { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${need[@]}" >/dev/null; }; }; then
    echo "real_programs: could not install ${need[*]}" >&2
    exit 2
  fi
fi

LIB="${HAKMEM_LIB:-}"
if [ -z "$LIB" ]; then
  (cd "$ROOT" && bazel build --config=release //:libhakmem.so >&2) || {
    echo "real_programs: could not build //:libhakmem.so" >&2
    exit 2
  }
  LIB="$ROOT/bazel-out/k8-opt/bin/libhakmem.so"
fi
LIB="$(readlink -f "$LIB")"
[ -f "$LIB" ] || { echo "real_programs: no library at $LIB" >&2; exit 2; }
echo "real_programs: library $LIB"

WORK="$(mktemp -d /tmp/hakmem-real.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 2

# Keep the programs' behaviour independent of the caller's environment.
unset LD_PRELOAD $(env | sed -n 's/^\(HAKMEM_[A-Z_]*\)=.*/\1/p')
export LC_ALL=C TZ=UTC GIT_CONFIG_NOSYSTEM=1 HOME="$WORK/home"
mkdir -p "$HOME"

FAILED=()
PASSED=()

# check NAME 'shell commands' — runs the commands in a fresh directory
# twice and compares stdout and exit status.
check() {
  local name="$1" cmd="$2"
  if [ ${#SELECTED[@]} -gt 0 ] && [[ " ${SELECTED[*]} " != *" $name "* ]]; then return; fi
  local dir="$WORK/$name"
  mkdir -p "$dir/plain" "$dir/hakmem"
  local t0=$SECONDS
  (cd "$dir/plain" && timeout 600 bash -c "$cmd") >"$dir/plain.out" 2>"$dir/plain.err"
  local rc_plain=$?
  local t1=$SECONDS
  (cd "$dir/hakmem" && LD_PRELOAD="$LIB" HAKMEM_STATS=1 timeout 600 bash -c "$cmd") \
    >"$dir/hakmem.out" 2>"$dir/hakmem.err"
  local rc_hakmem=$?
  local t2=$SECONDS
  local why=""
  if [ "$rc_plain" -ne "$rc_hakmem" ]; then
    why="exit status $rc_plain without hakmem, $rc_hakmem with"
  elif ! cmp -s "$dir/plain.out" "$dir/hakmem.out"; then
    why="outputs differ"
  elif ! grep -q "^hakmem statistics" "$dir/hakmem.err"; then
    why="hakmem was not in use (no HAKMEM_STATS report)"
  elif grep -q "^hakmem: " "$dir/hakmem.err"; then
    why="hakmem reported an error"
  elif [ ! -s "$dir/plain.out" ]; then
    why="no output to compare"
  fi
  if [ -n "$why" ]; then
    FAILED+=("$name")
    echo "FAIL $name: $why"
    diff "$dir/plain.out" "$dir/hakmem.out" | head -20
    echo "--- stderr with hakmem (head):"
    grep -v "^hakmem statistics\|^class  \|^[0-9]*  [0-9]*  \|^bytes mapped" "$dir/hakmem.err" | head -20
    [ "$rc_plain" -ne 0 ] && { echo "--- stderr without hakmem (head):"; head -20 "$dir/plain.err"; }
  else
    PASSED+=("$name")
    echo "PASS $name ($(wc -l <"$dir/plain.out") lines; $((t1 - t0)) s without, $((t2 - t1)) s with hakmem)"
  fi
}

SELECTED=("$@")

# ---- inputs

# 24 MiB of deterministic, compressible text.
"$PY" - "$WORK/text" <<'EOF'
import random, sys
rnd = random.Random(7)
words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 12)))
         for _ in range(5000)]
with open(sys.argv[1], "w") as f:
    n = 0
    while n < 24 << 20:
        line = " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 20))) + f" {rnd.randint(0, 10**9)}\n"
        f.write(line)
        n += len(line)
EOF
TEXT="$WORK/text"

cat >"$WORK/threads.py" <<'EOF'
import concurrent.futures, hashlib, json, lzma, queue, random, sqlite3, threading, zlib

def churn(seed):
    rnd = random.Random(seed)
    d = {}
    for i in range(150000):
        k = "k%d" % rnd.randrange(40000)
        d[k] = d.get(k, "") + chr(97 + rnd.randrange(26)) * rnd.randrange(1, 40)
        if i % 7 == 0:
            d.pop("k%d" % rnd.randrange(40000), None)
        if i % 1000 == 0:
            d[k] = [bytes(rnd.randrange(256) for _ in range(64)), {"x": i}]
    blob = json.dumps(sorted((k, repr(v)) for k, v in d.items()))
    return hashlib.sha256(blob.encode()).hexdigest()

results = {}
def worker(seed):
    results[seed] = churn(seed)
threads = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
for t in threads: t.start()
for t in threads: t.join()
for s in sorted(results): print("churn", s, results[s])

# Objects made in one thread, dropped in another.
q = queue.Queue(maxsize=1000)
def producer(seed):
    rnd = random.Random(seed)
    for i in range(60000):
        q.put((seed, i, "x" * rnd.randrange(1, 3000), list(range(rnd.randrange(20)))))
    q.put(None)
totals = [0, 0]
def consumer(slot):
    done = 0
    while done < 1:
        item = q.get()
        if item is None:
            done += 1
            continue
        totals[slot] += len(item[2]) + sum(item[3])
ps = [threading.Thread(target=producer, args=(s,)) for s in range(2)]
cs = [threading.Thread(target=consumer, args=(s,)) for s in range(2)]
for t in ps + cs: t.start()
for t in ps + cs: t.join()
print("queue", sum(totals))

# zlib, lzma and hashlib release the GIL: truly parallel allocation.
data = [bytes(random.Random(s).randrange(40) for _ in range(300000)) for s in range(8)]
def squeeze(b):
    z = zlib.compress(b, 9)
    x = lzma.compress(b, preset=1)
    assert zlib.decompress(z) == b and lzma.decompress(x) == b
    return hashlib.sha256(z).hexdigest(), len(x)
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    for h, n in ex.map(squeeze, data):
        print("zlib", h, "lzma", n)

db = sqlite3.connect(":memory:")
db.execute("create table t(a integer, b text)")
db.executemany("insert into t values(?, ?)", ((i, "v%d" % (i * 7919 % 10007)) for i in range(200000)))
print("sqlite", db.execute("select count(distinct b), sum(a), max(b) from t").fetchone())
EOF

cat >"$WORK/heavy.cc" <<'EOF'
#include <algorithm>
#include <iostream>
#include <map>
#include <numeric>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>
template <int N> struct Fib { static constexpr long v = Fib<N - 1>::v + Fib<N - 2>::v; };
template <> struct Fib<0> { static constexpr long v = 0; };
template <> struct Fib<1> { static constexpr long v = 1; };
using Value = std::variant<int, double, std::string, std::vector<int>>;
int main() {
  std::map<std::string, std::vector<Value>> m;
  std::unordered_map<int, std::set<std::string>> u;
  for (int i = 0; i < 20000; ++i) {
    std::ostringstream key;
    key << "key" << (i * 7919) % 1013;
    m[key.str()].push_back(i % 3 == 0 ? Value(i) : i % 3 == 1 ? Value(std::to_string(i)) : Value(std::vector<int>(i % 17, i)));
    u[i % 97].insert(key.str());
  }
  std::regex re("key([0-9]+)");
  long total = 0;
  for (auto& [k, v] : m) {
    std::smatch sm;
    if (std::regex_match(k, sm, re)) total += std::stol(sm[1]) * long(v.size());
  }
  std::vector<long> fibs = {Fib<10>::v, Fib<20>::v, Fib<40>::v, Fib<60>::v};
  std::cout << total << " " << u.size() << " " << std::accumulate(fibs.begin(), fibs.end(), 0L) << "\n";
}
EOF

mkdir -p "$WORK/cproject"
for i in $(seq 1 12); do
  cat >"$WORK/cproject/part$i.c" <<EOF
#include <stdlib.h>
#include <string.h>
unsigned long part$i(unsigned long seed) {
  char *buf = malloc(1000 + $i);
  unsigned long h = seed;
  for (int k = 0; k < 1000 + $i; ++k) { buf[k] = (char)(h >> 3); h = h * 6364136223846793005UL + $i; }
  for (int k = 0; k < 1000 + $i; ++k) h ^= (unsigned char)buf[k] << (k % 56);
  free(buf);
  return h;
}
EOF
done
{
  echo '#include <stdio.h>'
  for i in $(seq 1 12); do echo "unsigned long part$i(unsigned long);"; done
  echo 'int main(void) { unsigned long h = 1;'
  for i in $(seq 1 12); do echo "  h = part$i(h);"; done
  echo '  printf("%lu\n", h); return 0; }'
} >"$WORK/cproject/main.c"
cat >"$WORK/cproject/Makefile" <<'EOF'
OBJS = main.o $(patsubst %.c,%.o,$(wildcard part*.c))
prog: $(OBJS)
	$(CC) -o $@ $(OBJS)
%.o: %.c
	$(CC) -O2 -c $< -o $@
EOF

SRC_REPO="$WORK/repo"
git clone -q --no-hardlinks "$ROOT" "$SRC_REPO" || { echo "real_programs: git clone failed" >&2; exit 2; }

# ---- checks

check python-threads "'$PY' '$WORK/threads.py'"

check git-read "
  cp -r '$SRC_REPO' repo && cd repo &&
  git log --stat --format=fuller | sha256sum &&
  git log --oneline | wc -l &&
  git rev-list --all --objects | sort | sha256sum &&
  git diff --stat \$(git rev-list --max-parents=0 HEAD | tail -1) HEAD | tail -1 &&
  git grep -c hak_ -- core | sort | sha256sum &&
  git status --porcelain | wc -l &&
  git blame core/allocator.cc | sha256sum"

check git-gc "
  cp -r '$SRC_REPO' repo && cd repo &&
  git -c pack.threads=2 gc --aggressive --quiet &&
  { git fsck --full --no-progress; echo \"fsck status \$?\"; } | sort | sha256sum &&
  git cat-file --batch-all-objects --batch-check | sort | sha256sum &&
  git count-objects -v | grep -E '^(count|in-pack|garbage)'"

check xz "
  xz -T2 -6 -c '$TEXT' >text.xz && sha256sum <text.xz &&
  xz -T2 -d -c text.xz | sha256sum && xz -l text.xz | tail -1 | awk '{print \$1, \$2}'"

check pigz "
  pigz -p 2 -c '$TEXT' >text.gz && sha256sum <text.gz && pigz -p 2 -d -c text.gz | sha256sum"

check zstd "
  zstd -q -T2 -c '$TEXT' >text.zst && sha256sum <text.zst && zstd -q -d -c text.zst | sha256sum"

check sort "
  sort --parallel=2 -S 8M -T . '$TEXT' | sha256sum &&
  sort --parallel=2 -S 8M -T . -k2,2 -k1,1r -u '$TEXT' | sha256sum &&
  sort --parallel=2 -n -t ' ' -k3 '$TEXT' | tail -3"

check g++ "
  g++ -O2 -std=c++20 -c '$WORK/heavy.cc' -o heavy.o && sha256sum <heavy.o &&
  g++ heavy.o -o heavy && ./heavy"

check make "
  cp '$WORK'/cproject/* . && make -s -j2 && sha256sum <prog && ./prog"

check sqlite3 "
  sqlite3 :memory: \"
    create table t(a integer primary key, b text, c real);
    with recursive n(i) as (select 1 union all select i + 1 from n where i < 300000)
      insert into t select i, 'v' || (i * 7919 % 10007), i / 3.0 from n;
    create index tb on t(b);
    select count(*), count(distinct b), sum(c) from t;
    select b, count(*) from t group by b order by 2 desc, 1 limit 5;\""

# A crash under HAKMEM_CRASH_REPORT=1: the report, then death by SIGSEGV.
if [ ${#SELECTED[@]} -eq 0 ] || [[ " ${SELECTED[*]} " == *" crash-report "* ]]; then
  # (The subshell keeps bash's own "Segmentation fault" notice quiet.)
  rc=$( (LD_PRELOAD="$LIB" HAKMEM_CRASH_REPORT=1 "$PY" -c 'import ctypes; ctypes.string_at(0)' \
    >/dev/null 2>"$WORK/crash.err"; echo $?) 2>/dev/null)
  if [ "$rc" -eq $((128 + 11)) ] && grep -q "^hakmem crash report: signal 11" "$WORK/crash.err"; then
    PASSED+=(crash-report)
    echo "PASS crash-report (python3 died of SIGSEGV after hakmem's report)"
  else
    FAILED+=(crash-report)
    echo "FAIL crash-report: exit status $rc"
    head -20 "$WORK/crash.err"
  fi
fi

echo
echo "real_programs: ${#PASSED[@]} passed, ${#FAILED[@]} failed${FAILED[*]:+: ${FAILED[*]}}"
[ ${#FAILED[@]} -eq 0 ]
