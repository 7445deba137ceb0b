#!/usr/bin/env bash
# hakmem installed like a system library (tools/install.sh, tools/make_deb.sh):
#   - install into a temporary prefix: files, soname and links, manifest;
#   - a C and a C++ program built through `pkg-config --cflags --libs hakmem`,
#     and through a CMake project that uses find_package(hakmem) (shared and
#     static targets), run on hakmem;
#   - bin/hakmem-run from the prefix; HAKMEM_STATS=json with
#     HAKMEM_STATS_FILE, checked with python3 -m json.tool and for the
#     README's fields; HAKMEM_VERBOSE=1; the text statistics in a file;
#   - the version in hak_version(), the soname, hakmem.pc, CMake and the
#     README agree with version.bzl;
#   - uninstall from the manifest leaves nothing behind; DESTDIR staging;
#   - the .deb: its file list (dpkg-deb -c), its control fields (dpkg-deb -f)
#     and, as root, `apt-get install --simulate` of it.
# Run by tools/test.sh. Usage: tests/install/install_test.sh [--no-build]
set -uo pipefail

cd "$(dirname "$0")/../.."
ROOT="$PWD"
BUILD_ARG=()
if [ "${1:-}" = "--no-build" ]; then BUILD_ARG=(--no-build); fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
ok() { echo "ok:   $*"; }
check() {  # check NAME COMMAND...: passes if the command succeeds
  local name="$1"
  shift
  if "$@" >"$tmp/check.out" 2>&1; then
    ok "$name"
  else
    fail "$name"
    sed 's/^/    /' "$tmp/check.out" | head -20
  fi
}

VERSION="$(sed -n 's/^HAKMEM_VERSION = "\(.*\)"$/\1/p' version.bzl)"
MAJOR="${VERSION%%.*}"
MINOR="$(echo "$VERSION" | cut -d. -f2)"
echo "install_test: hakmem $VERSION"

# --- install into a temporary prefix --------------------------------------
prefix="$tmp/prefix"
if ! bash tools/install.sh --prefix "$prefix" "${BUILD_ARG[@]}" >"$tmp/install.log" 2>&1; then
  fail "tools/install.sh --prefix $prefix"
  cat "$tmp/install.log"
  exit 1
fi
ok "tools/install.sh --prefix"
lib="$prefix/lib"
for f in "lib/libhakmem.so.$MAJOR.$MINOR" lib/libhakmem.a include/hakmem.h \
  lib/pkgconfig/hakmem.pc lib/cmake/hakmem/hakmem-config.cmake \
  lib/cmake/hakmem/hakmem-config-version.cmake bin/hakmem-run \
  share/doc/hakmem/README.md share/doc/hakmem/docs/install.md \
  share/hakmem/install-manifest.txt; do
  [ -f "$prefix/$f" ] || fail "installed file $f missing"
done
[ "$(readlink "$lib/libhakmem.so.$MAJOR")" = "libhakmem.so.$MAJOR.$MINOR" ] ||
  fail "libhakmem.so.$MAJOR does not point to libhakmem.so.$MAJOR.$MINOR"
[ "$(readlink "$lib/libhakmem.so")" = "libhakmem.so.$MAJOR" ] ||
  fail "libhakmem.so does not point to libhakmem.so.$MAJOR"
soname="$(readelf -d "$lib/libhakmem.so.$MAJOR.$MINOR" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = "libhakmem.so.$MAJOR" ] || fail "soname is '$soname', not libhakmem.so.$MAJOR"
[ -x "$prefix/bin/hakmem-run" ] || fail "bin/hakmem-run is not executable"
ok "installed files, soname $soname and links"
# The registry's 64 MiB table is zero-initialised static storage: it must
# land in .bss (address space), not in the file.
so_bytes="$(stat -c %s "$lib/libhakmem.so.$MAJOR.$MINOR")"
if [ "$so_bytes" -lt $((4 << 20)) ]; then
  ok "libhakmem.so.$MAJOR.$MINOR is $((so_bytes / 1024)) KiB (the registry table is in .bss)"
else
  fail "libhakmem.so.$MAJOR.$MINOR is $so_bytes bytes: static tables landed in the file"
fi

# --- pkg-config -----------------------------------------------------------
export PKG_CONFIG_PATH="$lib/pkgconfig"
check "pkg-config --modversion hakmem is $VERSION" test "$(pkg-config --modversion hakmem)" = "$VERSION"
check "pkg-config --atleast-version=$MAJOR.$MINOR hakmem" pkg-config --atleast-version="$MAJOR.$MINOR" hakmem
run_program() {  # run_program NAME BINARY: must print "ok VERSION"
  local out
  out="$(LD_LIBRARY_PATH="$lib" "$2" 2>&1)"
  if [ "$?" -eq 0 ] && [ "$out" = "ok $VERSION" ]; then
    ok "$1"
  else
    fail "$1: $out"
  fi
}
needs_installed_lib() {  # the binary loads the installed libhakmem.so.MAJOR
  LD_LIBRARY_PATH="$lib" ldd "$1" >"$tmp/ldd.out"
  grep -q "libhakmem.so.$MAJOR => $lib/libhakmem.so.$MAJOR " "$tmp/ldd.out" || {
    cat "$tmp/ldd.out"
    return 1
  }
}
# shellcheck disable=SC2046
if cc -O1 -o "$tmp/c_pc" tests/install/c_program.c $(pkg-config --cflags --libs hakmem) 2>"$tmp/cc.err"; then
  run_program "C program via pkg-config" "$tmp/c_pc"
  check "C program needs libhakmem.so.$MAJOR" needs_installed_lib "$tmp/c_pc"
else
  fail "C program via pkg-config: compile"
  cat "$tmp/cc.err"
fi
# shellcheck disable=SC2046
if c++ -std=c++17 -O1 -pthread -o "$tmp/cxx_pc" tests/install/cxx_program.cc \
  $(pkg-config --cflags --libs hakmem) 2>"$tmp/cxx.err"; then
  run_program "C++ program via pkg-config" "$tmp/cxx_pc"
else
  fail "C++ program via pkg-config: compile"
  cat "$tmp/cxx.err"
fi
# Static: the archive and pkg-config's private libraries.
# shellcheck disable=SC2046
if cc -O1 -o "$tmp/c_static" tests/install/c_program.c $(pkg-config --cflags hakmem) \
  "$lib/libhakmem.a" $(pkg-config --static --libs-only-other --libs-only-l hakmem | sed 's/-lhakmem//') \
  2>"$tmp/cc.err"; then
  run_program "C program linked with libhakmem.a" "$tmp/c_static"
  if grep -q libhakmem <<<"$(ldd "$tmp/c_static")"; then fail "static C program loads libhakmem.so"; fi
else
  fail "C program with libhakmem.a: compile"
  cat "$tmp/cc.err"
fi

# --- CMake ----------------------------------------------------------------
if cmake -S tests/install/cmake_project -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DHAKMEM_WANT="$MAJOR.$MINOR" >"$tmp/cmake.log" 2>&1 &&
  cmake --build "$tmp/cmake" >>"$tmp/cmake.log" 2>&1; then
  ok "CMake project with find_package(hakmem $MAJOR.$MINOR) builds"
  grep -q "hakmem $VERSION" "$tmp/cmake.log" || fail "CMake did not report hakmem_VERSION $VERSION"
  run_program "C program via CMake (hakmem::hakmem)" "$tmp/cmake/c_program"
  run_program "C++ program via CMake (hakmem::hakmem)" "$tmp/cmake/cxx_program"
  run_program "C++ program via CMake (hakmem::hakmem_static)" "$tmp/cmake/cxx_program_static"
  check "CMake program needs libhakmem.so.$MAJOR" needs_installed_lib "$tmp/cmake/cxx_program"
else
  fail "CMake project"
  tail -30 "$tmp/cmake.log"
fi
# The version file refuses what it does not provide.
if cmake -S tests/install/cmake_project -B "$tmp/cmake_next" -DCMAKE_PREFIX_PATH="$prefix" \
  -DHAKMEM_WANT="$((MAJOR + 1)).0" >"$tmp/cmake_next.log" 2>&1; then
  fail "find_package(hakmem $((MAJOR + 1)).0) succeeded against $VERSION"
else
  ok "find_package(hakmem $((MAJOR + 1)).0) is refused"
fi

# --- hakmem-run, statistics, verbose --------------------------------------
# A program that knows nothing of hakmem (built without it), preloaded.
cc -O1 -o "$tmp/plain" -x c - <<'C'
#include <stdlib.h>
#include <string.h>
static char* blocks[100000];
int main(void) {
  for (int i = 0; i < 100000; ++i) {
    char* p = malloc((size_t)(i % 5000) + 1);
    memset(p, 1, (size_t)(i % 5000) + 1);
    free(i % 3 ? p : realloc(p, 100000));
  }
  /* About a hundred slabs of one class, all freed: the ones not current go
   * back to their chunk (and to the OS under HAKMEM_MEM_DIET=2). */
  for (int i = 0; i < 100000; ++i) blocks[i] = malloc(64);
  for (int i = 0; i < 100000; ++i) free(blocks[i]);
  /* A large block beyond one granule: cached, its tail decommitted under
   * HAKMEM_MEM_DIET=2. */
  char* big = malloc(8 << 20);
  memset(big, 1, 8 << 20);
  free(big);
  return 0;
}
C
out="$(env -u LD_PRELOAD HAKMEM_STATS=json HAKMEM_STATS_FILE="$tmp/stats.%p.json" \
  "$prefix/bin/hakmem-run" "$tmp/plain" 2>&1)"
json_files=("$tmp"/stats.*.json)
if [ "${#json_files[@]}" -ne 1 ] || [ ! -s "${json_files[0]}" ]; then
  fail "hakmem-run with HAKMEM_STATS=json HAKMEM_STATS_FILE=...%p...: no stats file ($out)"
else
  ok "installed hakmem-run preloads the installed library (stats in ${json_files[0]##*/})"
  [ -z "$out" ] || fail "HAKMEM_STATS_FILE: output on stderr: $out"
  check "stats JSON parses (python3 -m json.tool)" python3 -m json.tool "${json_files[0]}"
  check "stats JSON carries the README's fields" python3 - "${json_files[0]}" "$VERSION" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
assert text.endswith("}\n") and text.count("\n") == 1, "one object on one line"
s = json.loads(text)
assert s["schema"] == "hakmem-stats" and s["schema_version"] == 1, s.get("schema_version")
assert s["hakmem_version"] == sys.argv[2]
for k in ("pid", "options", "classes", "memory", "memory_limit", "large", "threads"):
    assert k in s, k
assert len(s["classes"]) == 60, len(s["classes"])  # 40 small and 20 medium classes
for c in s["classes"]:
    assert set(c) == {"class", "block_size", "chunks", "slabs_in_use", "live_blocks",
                      "remote_frees", "adoptions"}, c
assert sum(c["chunks"] for c in s["classes"]) > 0
assert set(s["memory"]) == {"mapped_bytes", "resident_bytes", "process_resident_bytes",
                            "dirty_bytes", "purged_bytes", "collected_bytes"}
assert set(s["memory_limit"]) == {"limit_bytes", "source", "usage_bytes", "in_pressure",
                                  "pressure_episodes", "pressure_purged_bytes"}
assert s["memory_limit"]["source"] in ("none", "cgroup_v1", "cgroup_v2", "knob")
assert s["memory"]["mapped_bytes"] > 0
assert set(s["large"]) == {"live_blocks", "live_bytes", "unmapped_bytes", "cache"}
assert set(s["large"]["cache"]) == {"blocks", "bytes", "limit_bytes", "slots"}
assert s["large"]["cache"]["blocks"] >= 1, "the realloc'd blocks were cached"
assert set(s["threads"]) == {"started", "exited", "live"} and s["threads"]["started"] >= 1
assert set(s["options"]) == {"mem_diet", "dirty_limit_bytes", "large_cache_limit_bytes", "on_error"}
PY
fi
# purged_bytes counts decommits: HAKMEM_MEM_DIET=2 returns every free slab.
HAKMEM_MEM_DIET=2 HAKMEM_STATS=json HAKMEM_STATS_FILE="$tmp/diet.json" \
  "$prefix/bin/hakmem-run" "$tmp/plain"
check "HAKMEM_MEM_DIET=2: purged_bytes > 0" python3 -c "
import json, sys
s = json.load(open('$tmp/diet.json'))
assert s['memory']['purged_bytes'] > 0, s['memory']"
HAKMEM_STATS=1 HAKMEM_STATS_FILE="$tmp/stats.txt" "$prefix/bin/hakmem-run" "$tmp/plain"
check "HAKMEM_STATS=1 with HAKMEM_STATS_FILE: the table in the file" grep -q "^hakmem statistics" "$tmp/stats.txt"
out="$(HAKMEM_VERBOSE=1 HAKMEM_DIRTY_MB=3 "$prefix/bin/hakmem-run" "$tmp/plain" 2>&1)"
if grep -q "^hakmem: version $VERSION (libhakmem.so.$MAJOR)" <<<"$out" &&
  grep -q "^hakmem: option HAKMEM_DIRTY_MB=3$" <<<"$out" &&
  grep -q "^hakmem: option HAKMEM_MEM_DIET=1$" <<<"$out"; then
  ok "HAKMEM_VERBOSE=1 prints the version and the effective options"
else
  fail "HAKMEM_VERBOSE=1: $out"
fi

# --- the version in every place -------------------------------------------
check "hakmem.pc says Version: $VERSION" grep -qx "Version: $VERSION" "$lib/pkgconfig/hakmem.pc"
check "README shows libhakmem.so.$MAJOR.$MINOR" grep -q "libhakmem.so.$MAJOR.$MINOR" README.md
check "README names version $VERSION" grep -q "version $VERSION" README.md

# --- uninstall ------------------------------------------------------------
check "tools/install.sh --uninstall" bash tools/install.sh --uninstall --prefix "$prefix"
if [ -e "$prefix" ]; then
  fail "uninstall left $(find "$prefix" | head -5 | tr '\n' ' ')"
else
  ok "uninstall removed every file and the directories it created"
fi
# An install into an existing directory keeps that directory.
mkdir -p "$tmp/existing/lib"
touch "$tmp/existing/lib/other.so"
bash tools/install.sh --no-build --prefix "$tmp/existing" >/dev/null 2>&1 &&
  bash tools/install.sh --uninstall --prefix "$tmp/existing" >/dev/null 2>&1
check "uninstall keeps what it did not install" test "$(cd "$tmp/existing" && find . | sort | tr '\n' ' ')" = ". ./lib ./lib/other.so "
# DESTDIR: staged under DESTDIR, paths inside refer to the prefix.
bash tools/install.sh --no-build --prefix /usr --destdir "$tmp/stage" >/dev/null 2>&1
check "--destdir stages under DESTDIR/PREFIX" test -f "$tmp/stage/usr/lib/libhakmem.so.$MAJOR.$MINOR"
check "--destdir: hakmem.pc says prefix=/usr" grep -qx "prefix=/usr" "$tmp/stage/usr/lib/pkgconfig/hakmem.pc"
check "--destdir: hakmem-run uses /usr/lib" grep -q "^INSTALLED_LIB=\"/usr/lib/libhakmem.so.$MAJOR\"" "$tmp/stage/usr/bin/hakmem-run"

# --- the Debian package ---------------------------------------------------
if bash tools/make_deb.sh --no-build --out "$tmp/deb" >"$tmp/deb.log" 2>&1; then
  debs=("$tmp"/deb/hakmem_*.deb)
  deb="${debs[0]}"
  ok "tools/make_deb.sh built ${deb##*/}"
  arch="$(dpkg --print-architecture)"
  [ "${deb##*/}" = "hakmem_${VERSION}-1_${arch}.deb" ] || fail "package file name ${deb##*/}"
  dpkg-deb -c "$deb" | awk '{ print $6 ($7 == "->" ? " -> " $8 : "") }' >"$tmp/deb.files"
  for entry in "./usr/lib/libhakmem.so.$MAJOR.$MINOR" \
    "./usr/lib/libhakmem.so.$MAJOR -> libhakmem.so.$MAJOR.$MINOR" \
    "./usr/lib/libhakmem.so -> libhakmem.so.$MAJOR" ./usr/lib/libhakmem.a \
    ./usr/include/hakmem.h ./usr/lib/pkgconfig/hakmem.pc \
    ./usr/lib/cmake/hakmem/hakmem-config.cmake ./usr/lib/cmake/hakmem/hakmem-config-version.cmake \
    ./usr/bin/hakmem-run ./usr/share/doc/hakmem/README.Debian ./usr/share/doc/hakmem/copyright \
    ./usr/share/doc/hakmem/changelog.Debian.gz ./usr/share/doc/hakmem/README.md; do
    grep -qxF "$entry" "$tmp/deb.files" || fail "dpkg-deb -c: no $entry"
  done
  if grep -q "install-manifest" "$tmp/deb.files"; then fail "the package holds an install manifest"; fi
  if awk '{print $2}' <<<"$(dpkg-deb -c "$deb")" | grep -qv '^root/root$'; then fail "files not owned by root"; fi
  ok "dpkg-deb -c: $(wc -l <"$tmp/deb.files") entries, the expected files among them"
  [ "$(dpkg-deb -f "$deb" Package)" = hakmem ] || fail "Package: $(dpkg-deb -f "$deb" Package)"
  [ "$(dpkg-deb -f "$deb" Version)" = "$VERSION-1" ] || fail "Version: $(dpkg-deb -f "$deb" Version)"
  [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "Architecture: $(dpkg-deb -f "$deb" Architecture)"
  grep -q "libc6" <<<"$(dpkg-deb -f "$deb" Depends)" || fail "Depends: $(dpkg-deb -f "$deb" Depends)"
  [ -n "$(dpkg-deb -f "$deb" Maintainer)" ] || fail "no Maintainer"
  [ -n "$(dpkg-deb -f "$deb" Description)" ] || fail "no Description"
  grep -qx "./shlibs" <<<"$(dpkg-deb --ctrl-tarfile "$deb" | tar -tf -)" || fail "no shlibs control file"
  ok "control fields: $(dpkg-deb -f "$deb" Package Version Architecture Depends | tr '\n' ' ')"
  grep -q "Environment=LD_PRELOAD=/usr/lib/libhakmem.so.$MAJOR" docs/install.md ||
    fail "README.Debian shows no systemd drop-in for libhakmem.so.$MAJOR"
  grep -q "/etc/ld.so.preload" docs/install.md || fail "README.Debian does not show /etc/ld.so.preload"
  # The unpacked package works: a program built against it runs on it.
  dpkg-deb -x "$deb" "$tmp/unpacked"
  if cc -o "$tmp/c_deb" tests/install/c_program.c -I"$tmp/unpacked/usr/include" \
    -L"$tmp/unpacked/usr/lib" -lhakmem; then
    lib="$tmp/unpacked/usr/lib" run_program "C program against the unpacked package" "$tmp/c_deb"
  else
    fail "C program against the unpacked package: compile"
  fi
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    if apt-get install --simulate "$deb" >"$tmp/apt.log" 2>&1 && grep -q "^Inst hakmem" "$tmp/apt.log"; then
      ok "apt-get install --simulate ${deb##*/}"
    else
      fail "apt-get install --simulate ${deb##*/}"
      tail -10 "$tmp/apt.log"
    fi
  fi
else
  fail "tools/make_deb.sh"
  cat "$tmp/deb.log"
fi

if [ "$failures" -ne 0 ]; then
  echo "install_test: $failures failed"
  exit 1
fi
echo "install_test: all passed"
