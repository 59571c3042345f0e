#!/usr/bin/env bash
# System packages the MLX engine crates (backends/mlx) need to build and test on Linux.
# Idempotent; CI runs it before `cargo build`. macOS needs only cmake (brew install cmake) and
# Xcode's command line tools.
#
#   clang-19 + libclang-19-dev  compile mlx-c (x86_64 needs clang >= 15 for __bf16/_Float16) and
#                               let bindgen parse its headers
#   libfmt-dev                  std::format for libstdc++ 12 (Debian 12) which has no <format>
#   cmake                       builds mlx-c
#   libopenblas0-pthread        the BLAS the MLX CPU wheel is pointed at (~17x faster matmul)
#   python3 + pip               mlx-sys' build installs the official `mlx-cpu==0.32.2` wheel into
#                               ~/.cache/ollmlx (set MLX_DIR to use an existing MLX instead)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

if command -v apt-get >/dev/null; then
  pkgs=(clang-19 libclang-19-dev libfmt-dev cmake libopenblas0-pthread python3 python3-pip)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
elif [ "$(uname)" = Darwin ]; then
  command -v cmake >/dev/null || brew install cmake
fi

# Optional: pre-install the MLX wheel where the build expects it (the build does this itself
# when missing). Honour OLLMLX_MLX_CACHE like backends/mlx/mlx-sys/build/install.rs does.
cache="${OLLMLX_MLX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ollmlx}"
if [ "$(uname)" = Linux ] && [ -z "${MLX_DIR:-}" ] && [ ! -f "$cache/mlx-cpu-0.32.2/mlx/share/cmake/MLX/MLXConfig.cmake" ]; then
  tmp="$cache/.tmp-ci-$$"
  python3 -m pip install --disable-pip-version-check --quiet --no-deps --target "$tmp" mlx-cpu==0.32.2
  mkdir -p "$cache" && rm -rf "$cache/mlx-cpu-0.32.2" && mv "$tmp" "$cache/mlx-cpu-0.32.2"
fi

# Real model weights for the engine's end-to-end tests (they skip loudly without them).
if [ "${OLLMLX_FETCH_MODELS:-1}" = 1 ]; then
  "$(dirname "$0")/../scripts/fetch-models.sh"
fi
