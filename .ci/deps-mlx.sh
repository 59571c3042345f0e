#!/usr/bin/env bash
# System packages the MLX engine build needs on Debian/Ubuntu x86_64 (see docs/engine.md):
# clang >= 15 (GCC 12 lacks __bf16 on x86) with libclang for bindgen, cmake for mlx-c, fmt for
# the std::format shim, and OpenBLAS, which replaces the reference BLAS bundled in the MLX wheel.
# The MLX library itself comes from the official mlx-cpu wheel, installed by the build (pip).
# Idempotent: does nothing when everything is present.
set -euo pipefail
[ "$(uname -s)" = "Linux" ] || exit 0
need=()
command -v clang-19 >/dev/null 2>&1 || command -v clang >/dev/null 2>&1 || need+=(clang-19)
[ -e /usr/lib/llvm-19/lib/libclang.so ] || ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || need+=(libclang-19-dev)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
[ -e /usr/include/fmt/format.h ] || need+=(libfmt-dev)
ls /usr/lib/*/openblas-pthread/libblas.so.3 >/dev/null 2>&1 || need+=(libopenblas0-pthread)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
