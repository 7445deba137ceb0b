#!/usr/bin/env bash
# Builds a Debian package of hakmem with dpkg-deb:
#
#   tools/make_deb.sh [--out DIR] [--no-build]
#
# It holds what tools/install.sh installs, with prefix /usr (the library in
# /usr/lib, where the dynamic loader looks), docs/install.md as
# /usr/share/doc/hakmem/README.Debian (how to enable hakmem for one systemd
# service or for the whole system), and a shlibs file. The package is
# DIR/hakmem_VERSION-1_ARCH.deb (DIR defaults to the checkout's dist/);
# install it with `apt install ./hakmem_VERSION-1_ARCH.deb`.
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$ROOT"

OUT="$ROOT/dist"
BUILD_ARG=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    --no-build) BUILD_ARG=(--no-build); shift ;;
    -h|--help) sed -n '2,11s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    *) echo "make_deb.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

VERSION="$(sed -n 's/^HAKMEM_VERSION = "\(.*\)"$/\1/p' version.bzl)"
MAJOR="${VERSION%%.*}"
MINOR="$(echo "$VERSION" | cut -d. -f2)"
DEB_VERSION="$VERSION-1"
ARCH="$(dpkg --print-architecture)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stage="$work/stage"

bash tools/install.sh --prefix /usr --destdir "$stage" --no-manifest "${BUILD_ARG[@]}"

doc="$stage/usr/share/doc/hakmem"
install -m 0644 docs/install.md "$doc/README.Debian"
cat >"$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hakmem
Comment: The source tree carries no license file; see its README.md.
COPYRIGHT
printf 'hakmem (%s) unstable; urgency=medium\n\n  * Built by tools/make_deb.sh.\n\n -- hakmem maintainers <hakmem@localhost>  %s\n' \
  "$DEB_VERSION" "$(date -R)" | gzip -9n >"$doc/changelog.Debian.gz"

# Dependencies from the libraries libhakmem.so links (dpkg-shlibdeps wants a
# debian/control in the current directory).
mkdir -p "$work/shlibdeps/debian"
printf 'Source: hakmem\n\nPackage: hakmem\nArchitecture: any\n' >"$work/shlibdeps/debian/control"
depends="$(cd "$work/shlibdeps" &&
  dpkg-shlibdeps -O "$stage/usr/lib/libhakmem.so.$MAJOR.$MINOR" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')"
if [ -z "$depends" ]; then
  depends="libc6, libstdc++6"
fi

mkdir -p "$stage/DEBIAN"
installed_kb="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: hakmem
Version: $DEB_VERSION
Architecture: $ARCH
Maintainer: hakmem maintainers <hakmem@localhost>
Installed-Size: $installed_kb
Depends: $depends
Section: libs
Priority: optional
Description: lock-free, thread-caching memory allocator
 hakmem replaces malloc, free, the rest of the C allocation family and every
 C++ operator new/delete, either linked in (pkg-config hakmem, CMake
 find_package(hakmem)) or loaded with LD_PRELOAD (hakmem-run). Its lock-free
 core is model-checked with Relacy. The package holds the shared library
 (libhakmem.so.$MAJOR), the static library, the header, pkg-config and CMake
 files, and hakmem-run. /usr/share/doc/hakmem/README.Debian shows how to
 enable it for one systemd service or for the whole system.
CONTROL
echo "libhakmem $MAJOR hakmem (>= $MAJOR.$MINOR)" >"$stage/DEBIAN/shlibs"
echo "activate-noawait ldconfig" >"$stage/DEBIAN/triggers"
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/shlibs" "$stage/DEBIAN/triggers" "$stage/DEBIAN/md5sums"

mkdir -p "$OUT"
deb="$OUT/hakmem_${DEB_VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "make_deb.sh: $deb" >&2
