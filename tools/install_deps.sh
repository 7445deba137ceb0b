#!/usr/bin/env bash
# Installs every Debian package that hakmem's build, tests and benchmarks need.
# Idempotent: when everything is present it does no package work at all.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap bazel-platforms
  relacy-dev libboost-atomic-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev
  clang libclang-rt-14-dev llvm
  valgrind python3
  pkg-config cmake make dpkg-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! grep -q "install ok installed" <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install_deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
