#!/usr/bin/env bash
# hakmem under a real multithreaded server: memcached (4 worker threads)
# with libhakmem.so preloaded, driven by memaslap (libmemcached-tools) with
# 128 concurrent connections, a 30% set / 70% get mix, keys of 16..64 bytes
# and values of 1 byte to 200 KB, with a share of the gets verified.
#
#   tools/server_load.sh [--duration SECONDS] [--lib PATH] [--memory-mb MB]
#
# Defaults: 90 s, the release build of //:libhakmem.so (built here), a
# 256 MiB memcached cache. The server's resident size is sampled every
# second into results/server_load/rss.csv. The run fails if memcached dies,
# reports anything from hakmem on stderr, answers with errors or failed
# verifications, or if its resident size keeps growing once the cache is
# full (the last third's peak more than 10% + 16 MiB above the middle
# third's). Not part of tools/test.sh: it installs packages and runs for
# minutes.
set -euo pipefail

cd "$(dirname "$0")/.."

duration=90
lib=""
memory_mb=256
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift ;;
    --lib) lib="$2"; shift ;;
    --memory-mb) memory_mb="$2"; shift ;;
    *) echo "usage: tools/server_load.sh [--duration S] [--lib PATH] [--memory-mb MB]" >&2; exit 2 ;;
  esac
  shift
done

# The server and the load generator (idempotent: nothing to do when present).
need=()
for p in memcached libmemcached-tools; do
  grep -q "install ok installed" <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "server_load: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
slap=$(command -v memaslap || command -v memcaslap)

if [ -z "$lib" ]; then
  bazel build --config=release //:libhakmem.so
  # The release config is compilation_mode=opt: its outputs are under k8-opt
  # (not bazel-bin, which follows whatever was built last in this workspace).
  lib=bazel-out/k8-opt/bin/libhakmem.so
fi
lib="$(readlink -f "$lib")"
[ -f "$lib" ] || { echo "server_load: no library at $lib" >&2; exit 1; }

out=results/server_load
mkdir -p "$out"
port=$((20000 + RANDOM % 20000))

cat >"$out/memaslap.cnf" <<'EOF'
key
16 64 1
value
1 100 0.4
101 1000 0.3
1001 10000 0.2
10001 200000 0.1
cmd
0 0.3
1 0.7
EOF

user_opt=()
[ "$(id -u)" -eq 0 ] && user_opt=(-u root)
LD_PRELOAD="$lib" HAKMEM_STATS=1 memcached -l 127.0.0.1 -p "$port" -U 0 -t 4 -c 4096 \
  -m "$memory_mb" -I 1m "${user_opt[@]}" >"$out/memcached.out" 2>"$out/memcached.err" &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
if ! grep -q "$(basename "$lib")" "/proc/$server/maps"; then
  echo "server_load: $lib is not mapped into memcached" >&2
  exit 1
fi

# RSS sampler.
echo "seconds,rss_kib" >"$out/rss.csv"
(
  start=$SECONDS
  while kill -0 "$server" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$((SECONDS - start)),$rss" >>"$out/rss.csv"
    sleep 1
  done
) &
sampler=$!

echo "server_load: memcached (pid $server, 4 threads, ${memory_mb} MiB cache) with $(basename "$lib"), ${duration} s of load" >&2
set +e
"$slap" -s "127.0.0.1:$port" -T 2 -c 128 -t "${duration}s" -F "$out/memaslap.cnf" \
  --verify=0.05 -S 10s >"$out/memaslap.log" 2>&1
slap_rc=$?
set -e

alive=1
kill -0 "$server" 2>/dev/null || alive=0
kill -TERM "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
trap - EXIT

python3 - "$out" "$duration" "$slap_rc" "$alive" <<'PY'
import re, sys
out, duration, slap_rc, alive = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
log = open(f"{out}/memaslap.log").read()
err = open(f"{out}/memcached.err").read()
problems = []
if slap_rc != 0:
    problems.append(f"memaslap exited with {slap_rc}")
if not alive:
    problems.append("memcached died during the run")
# hakmem's error reports start with "hakmem: " (the HAKMEM_STATS table at
# exit does not).
bad_lines = [l for l in err.splitlines() if l.startswith("hakmem: ")]
if bad_lines:
    problems.append("hakmem reported: " + "; ".join(bad_lines[:3]))
# memaslap's final "Run time ... Ops ... TPS" and verification lines.
ops = re.findall(r"Run time: ([\d.]+)s Ops: (\d+) TPS: (\d+)", log)
total_ops, tps, run_time = (int(ops[-1][1]), int(ops[-1][2]), float(ops[-1][0])) if ops else (0, 0, 0.0)
if total_ops == 0:
    problems.append("no operation completed")
def counter(name):
    m = re.findall(name + r"\s*:\s*(\d+)", log)
    return int(m[-1]) if m else 0
verify_failed = counter("verify_failed")
unexpired = counter("unexpired_unget")
errors = 0
for name in ("verify_failed", "expired_get"):
    errors += counter(name)
if verify_failed:
    problems.append(f"{verify_failed} verifications failed")
rows = [tuple(map(int, l.split(","))) for l in open(f"{out}/rss.csv").read().split()[1:] if l]
rss = [r for _, r in rows]
if len(rss) < 6:
    problems.append("too few RSS samples")
    mid_peak = last_peak = peak = final = 0
else:
    n = len(rss)
    mid_peak = max(rss[n // 3: 2 * n // 3])
    last_peak = max(rss[2 * n // 3:])
    peak, final = max(rss), rss[-1]
    if last_peak > mid_peak * 1.10 + 16 * 1024:
        problems.append(f"resident size still growing: middle third peak {mid_peak} KiB, last third {last_peak} KiB")
summary = (f"server_load: memcached + hakmem, {run_time:.0f} s, {total_ops} operations ({tps}/s), "
           f"verify failures {verify_failed}, errors {errors}; RSS peak {peak // 1024} MiB, "
           f"middle-third peak {mid_peak // 1024} MiB, last-third peak {last_peak // 1024} MiB, "
           f"final {final // 1024} MiB ({len(rss)} samples)")
print(summary)
open(f"{out}/summary.txt", "w").write(summary + "\n")
if problems:
    print("server_load: FAILED: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print("server_load: OK")
PY
