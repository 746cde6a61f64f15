#!/usr/bin/env bash
# ensure-deps.sh — make sure the Debian packages xcall's build needs are there.
#
# Quiet when everything is installed. Otherwise, as root: apt-get update once
# and install what is missing; as anyone else: print the install command and
# exit 1.
set -euo pipefail

packages=(
  cmake        # >= 3.25, for the presets
  g++          # C++20; brings libasan/libtsan/libubsan through libgcc-12-dev
  make         # the top-level Makefile
  ninja-build  # the presets' generator
  pkg-config
  libgtest-dev # GoogleTest headers and libraries (GTest::gtest_main)
  googletest   # GoogleTest sources
  libcli11-dev # command-line options of the example and xcall-torture
  libfmt-dev   # {fmt}: text formatting in xcall-bench
  nlohmann-json3-dev  # JSON output of xcall-bench and xcall-torture (header-only)
  spin         # the SPIN model checker for model/ (CTest runs the models)
  libbenchmark-dev  # Google Benchmark: bench/micro
  clang-format # make format / format-check (.clang-format), run by .ci/run
  liburing-dev # examples/io_uring: a host blocked in io_uring_wait_cqe
  systemtap-sdt-dev  # <sys/sdt.h>: the USDT trace points (XCALL_TRACE, docs/tracing.md)
  binutils     # readelf: tests/trace reads the probes' ELF notes
)
# Extra packages a target needs beyond the build (make bench: DPDK, gnuplot).
packages+=("$@")

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "ensure-deps: missing packages: ${missing[*]}" >&2
  echo "ensure-deps: install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "ensure-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
