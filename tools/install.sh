#!/usr/bin/env bash
# Installs hakmem like a system library.
#
#   tools/install.sh [--prefix DIR] [--destdir DIR] [--no-build] [--no-manifest]
#   tools/install.sh --uninstall [--prefix DIR] [--destdir DIR]
#
# Builds the release library (bazel build --config=release) unless
# --no-build, then installs under DESTDIR/PREFIX (prefix /usr/local by
# default; DESTDIR stages the tree elsewhere, for packaging):
#   lib/libhakmem.so.MAJOR.MINOR   soname libhakmem.so.MAJOR
#   lib/libhakmem.so.MAJOR, lib/libhakmem.so   symlinks
#   lib/libhakmem.a                the static library (one object)
#   include/hakmem.h
#   lib/pkgconfig/hakmem.pc
#   lib/cmake/hakmem/hakmem-config.cmake, hakmem-config-version.cmake
#                                  imported targets hakmem::hakmem (shared)
#                                  and hakmem::hakmem_static
#   bin/hakmem-run                 runs a program with the library preloaded
#   share/doc/hakmem/              README.md and docs/*.md
#   share/hakmem/install-manifest.txt   what was installed (not with
#                                  --no-manifest), which --uninstall removes
# The version is version.bzl's.
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$ROOT"

usage() {
  sed -n '2,23s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

PREFIX=/usr/local
DESTDIR=""
BUILD=1
MANIFEST=1
UNINSTALL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; PREFIX="$2"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
    --destdir) [ $# -ge 2 ] || usage; DESTDIR="$2"; shift 2 ;;
    --destdir=*) DESTDIR="${1#--destdir=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    --no-manifest) MANIFEST=0; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown argument $1" >&2; usage ;;
  esac
done
case "$PREFIX" in
  /*) ;;
  *) echo "install.sh: --prefix must be an absolute path: $PREFIX" >&2; exit 2 ;;
esac
PREFIX="${PREFIX%/}"
[ -n "$PREFIX" ] || PREFIX=/
if [ -n "$DESTDIR" ]; then
  mkdir -p "$DESTDIR"
  DESTDIR="$(cd "$DESTDIR" && pwd)"
fi

MANIFEST_PATH="$PREFIX/share/hakmem/install-manifest.txt"

if [ "$UNINSTALL" -eq 1 ]; then
  manifest="$DESTDIR$MANIFEST_PATH"
  if [ ! -f "$manifest" ]; then
    echo "install.sh: no manifest at $manifest: nothing installed there" >&2
    exit 1
  fi
  # Files and links first, then the directories the install created (listed
  # deepest first), each only if it is empty.
  mapfile -t entries <"$manifest"
  for path in "${entries[@]}"; do
    case "$path" in
      */) ;;
      *) rm -f "$DESTDIR$path" ;;
    esac
  done
  rm -f "$manifest"
  for path in "${entries[@]}"; do
    case "$path" in
      */) rmdir "$DESTDIR${path%/}" 2>/dev/null || true ;;
    esac
  done
  echo "install.sh: removed hakmem from $DESTDIR$PREFIX" >&2
  exit 0
fi

VERSION="$(sed -n 's/^HAKMEM_VERSION = "\(.*\)"$/\1/p' version.bzl)"
MAJOR="${VERSION%%.*}"
MINOR="$(echo "$VERSION" | cut -d. -f2)"
if [ -z "$VERSION" ] || [ -z "$MAJOR" ] || [ -z "$MINOR" ]; then
  echo "install.sh: no HAKMEM_VERSION in version.bzl" >&2
  exit 1
fi
SONAME="libhakmem.so.$MAJOR"
REALNAME="libhakmem.so.$MAJOR.$MINOR"

if [ "$BUILD" -eq 1 ]; then
  bazel build --config=release //:libhakmem.so //:hakmem_static
fi
# The release configuration's output directory (as tools/test.sh and
# tools/hakmem-run use it).
BIN="$ROOT/bazel-out/k8-opt/bin"
for f in libhakmem.so libhakmem_static.a; do
  if [ ! -f "$BIN/$f" ]; then
    echo "install.sh: $BIN/$f missing (bazel build --config=release //:libhakmem.so //:hakmem_static)" >&2
    exit 1
  fi
done
built_soname="$(readelf -d "$BIN/libhakmem.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
if [ "$built_soname" != "$SONAME" ]; then
  echo "install.sh: $BIN/libhakmem.so has soname '$built_soname', expected $SONAME" >&2
  exit 1
fi

LIBDIR="$PREFIX/lib"
INCLUDEDIR="$PREFIX/include"
BINDIR="$PREFIX/bin"
DOCDIR="$PREFIX/share/doc/hakmem"
CMAKEDIR="$LIBDIR/cmake/hakmem"
PCDIR="$LIBDIR/pkgconfig"

installed=()
created_dirs=()
make_dir() {  # make_dir DIR (without DESTDIR), recording the ones created
  local d="$1" missing=()
  while [ ! -d "$DESTDIR$d" ]; do
    missing=("$d" "${missing[@]}")
    d="$(dirname "$d")"
  done
  for d in "${missing[@]}"; do
    mkdir "$DESTDIR$d"
    created_dirs+=("$d/")
  done
}
put() {  # put MODE SRC DEST (DEST without DESTDIR)
  make_dir "$(dirname "$3")"
  install -m "$1" "$2" "$DESTDIR$3"
  installed+=("$3")
}
put_text() {  # put_text MODE DEST < content
  local tmp
  tmp="$(mktemp)"
  cat >"$tmp"
  put "$1" "$tmp" "$2"
  rm -f "$tmp"
}
link() {  # link TARGET DEST
  make_dir "$(dirname "$2")"
  ln -sfn "$1" "$DESTDIR$2"
  installed+=("$2")
}

put 0755 "$BIN/libhakmem.so" "$LIBDIR/$REALNAME"
link "$REALNAME" "$LIBDIR/$SONAME"
link "$SONAME" "$LIBDIR/libhakmem.so"
put 0644 "$BIN/libhakmem_static.a" "$LIBDIR/libhakmem.a"
put 0644 api/hakmem.h "$INCLUDEDIR/hakmem.h"

put_text 0644 "$PCDIR/hakmem.pc" <<PC
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: hakmem
Description: Lock-free, thread-caching memory allocator (replaces malloc and operator new)
Version: $VERSION
Libs: -L\${libdir} -lhakmem
Libs.private: -lstdc++ -lm -pthread
Cflags: -I\${includedir}
PC

put_text 0644 "$CMAKEDIR/hakmem-config.cmake" <<CMAKE
# hakmem $VERSION, installed by tools/install.sh.
#   find_package(hakmem $MAJOR.$MINOR REQUIRED)
#   target_link_libraries(app PRIVATE hakmem::hakmem)         # libhakmem.so
#   target_link_libraries(app PRIVATE hakmem::hakmem_static)  # libhakmem.a
# Linking either replaces malloc, free and operator new/delete in the program.
get_filename_component(_hakmem_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(hakmem_VERSION "$VERSION")
set(hakmem_INCLUDE_DIRS "\${_hakmem_prefix}/include")
set(hakmem_LIBRARIES hakmem::hakmem)
if(NOT TARGET hakmem::hakmem)
  add_library(hakmem::hakmem SHARED IMPORTED)
  set_target_properties(hakmem::hakmem PROPERTIES
    IMPORTED_LOCATION "\${_hakmem_prefix}/lib/$REALNAME"
    IMPORTED_SONAME "$SONAME"
    INTERFACE_INCLUDE_DIRECTORIES "\${_hakmem_prefix}/include")
endif()
if(NOT TARGET hakmem::hakmem_static)
  add_library(hakmem::hakmem_static STATIC IMPORTED)
  set_target_properties(hakmem::hakmem_static PROPERTIES
    IMPORTED_LOCATION "\${_hakmem_prefix}/lib/libhakmem.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "CXX"
    INTERFACE_INCLUDE_DIRECTORIES "\${_hakmem_prefix}/include"
    INTERFACE_LINK_LIBRARIES "stdc++;m;-pthread")
endif()
unset(_hakmem_prefix)
CMAKE

put_text 0644 "$CMAKEDIR/hakmem-config-version.cmake" <<CMAKE
# hakmem $VERSION: a request is compatible if it asks for this version or an
# older one with the same MAJOR (and, while MAJOR is 0, the same MINOR).
set(PACKAGE_VERSION "$VERSION")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "$MAJOR")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif("$MAJOR" STREQUAL "0" AND NOT PACKAGE_FIND_VERSION_MINOR STREQUAL "$MINOR")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
if(NOT "\${CMAKE_SIZEOF_VOID_P}" STREQUAL "" AND NOT "\${CMAKE_SIZEOF_VOID_P}" STREQUAL "8")
  set(PACKAGE_VERSION "\${PACKAGE_VERSION} (64-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
CMAKE

put_text 0755 "$BINDIR/hakmem-run" < <(sed "s|^INSTALLED_LIB=\"\"|INSTALLED_LIB=\"$LIBDIR/$SONAME\"|" tools/hakmem-run)
grep -q "^INSTALLED_LIB=\"$LIBDIR/$SONAME\"" "$DESTDIR$BINDIR/hakmem-run" || {
  echo "install.sh: could not set the library path in bin/hakmem-run" >&2
  exit 1
}

put 0644 README.md "$DOCDIR/README.md"
for doc in docs/*.md; do
  put 0644 "$doc" "$DOCDIR/$doc"
done

if [ "$MANIFEST" -eq 1 ]; then
  make_dir "$(dirname "$MANIFEST_PATH")"
  # A reinstall keeps the directories an earlier install created.
  if [ -f "$DESTDIR$MANIFEST_PATH" ]; then
    mapfile -t -O "${#created_dirs[@]}" created_dirs < <(grep '/$' "$DESTDIR$MANIFEST_PATH" || true)
  fi
  {
    printf '%s\n' "${installed[@]}"
    # Directories last, deepest first: --uninstall removes them if empty.
    if [ ${#created_dirs[@]} -gt 0 ]; then printf '%s\n' "${created_dirs[@]}" | sort -ru; fi
  } >"$DESTDIR$MANIFEST_PATH"
fi
echo "install.sh: hakmem $VERSION installed in $DESTDIR$PREFIX (${#installed[@]} files)" >&2
