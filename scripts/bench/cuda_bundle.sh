#!/usr/bin/env bash
# The NVIDIA benchmark (cuda.sh's workloads) for a GPU machine that has no package registries
# and no Rust toolchain: `pack` runs where the registries are and gathers everything into one
# directory; `run` runs on the GPU machine from that directory and needs only python3 with
# NVIDIA's CUDA 13 runtime wheels (cuBLAS, cuDNN, NCCL, cuFFT, NVRTC: e.g. the environment of a
# CUDA 13 PyTorch) and the driver.
#
#   scripts/bench/cuda_bundle.sh pack DIR   # ollmlx ($OLLMLX, default target-bench-eng/release/
#                                           # ollmlx), the mlx, mlx-cuda-13 and mlx-lm 0.32.2
#                                           # wheels for Python $PYVER (3.12), SmolLM2's
#                                           # tokenizer and config
#   scripts/bench/cuda_bundle.sh run DIR    # SHAPES="smollm2-135m smollm2-1.7b" ROUNDS=3
#                                           # PYTHON=python3 COMPARE_ARGS=...
#
# A/B of two builds: put the baseline binary at DIR/ollmlx-base; `run` then serves it too (its
# own port and store) and compare.py times it as `ollmlx-base` in the same interleaved rounds.
#
# The ollmlx binary is the ordinary Linux build: it links `libmlx.so` of MLX 0.32.2 by name, and
# `run` puts the CUDA wheel's library first on the search path, so the same binary runs on the
# GPU (it reports the device in /api/ps and its log). No weights travel: `run` writes
# random-weight checkpoints of the SmolLM2 shapes (random_ckpt.py) that both engines load, bf16
# as on the GPU; speed depends on shapes and dtype, not on values. Results land in
# DIR/results/<card>/<shape>/ (machine.txt, compare.md, compare.json, server logs).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="$ROOT/.ollmlx-cache"
MLX_VERSION=0.32.2
cmd="${1:-}"
DIR="${2:-}"
[ -n "$cmd" ] && [ -n "$DIR" ] || {
  echo "usage: $0 pack|run DIR" >&2
  exit 2
}
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

pack() {
  local ollmlx="${OLLMLX:-$ROOT/target-bench-eng/release/ollmlx}" pyver="${PYVER:-3.12}"
  [ -x "$ollmlx" ] || {
    echo "no ollmlx binary at $ollmlx (build it: CARGO_TARGET_DIR=target-bench-eng cargo build --release -p ollmlx-cli)" >&2
    exit 1
  }
  mkdir -p "$DIR/wheels" "$DIR/smollm2"
  strip -o "$DIR/ollmlx" "$ollmlx"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" \
    --implementation cp --platform manylinux_2_35_x86_64 -d "$DIR/wheels" \
    "mlx==$MLX_VERSION" "mlx-cuda-13==$MLX_VERSION" "mlx-lm==$MLX_VERSION"
  local hf="$CACHE/bench/smollm2-hf" gguf="${GGUF:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
  if [ ! -f "$hf/tokenizer.json" ]; then
    [ -f "$gguf" ] || "$ROOT/scripts/fetch-models.sh"
    python3 "$ROOT/scripts/bench/gguf_to_hf.py" "$gguf" "$hf"
  fi
  cp "$hf/config.json" "$hf/tokenizer.json" "$hf/tokenizer_config.json" "$DIR/smollm2/"
  du -sh "$DIR"/* | sed 's/^/  /'
}

run() {
  local py="${PYTHON:-python3}" site="$DIR/site"
  command -v nvidia-smi >/dev/null 2>&1 || {
    echo "nvidia-smi not found: run needs an NVIDIA GPU and its driver" >&2
    exit 1
  }
  if [ ! -d "$site/mlx/lib" ]; then
    echo "== installing the bundled wheels into $site"
    # Plain wheels (no scripts, no .data): unpacking them is installing them.
    "$py" -c 'import sys, zipfile
for w in sys.argv[2:]:
    zipfile.ZipFile(w).extractall(sys.argv[1])' "$site" "$DIR"/wheels/*.whl
  fi
  # libmlx.so finds NVIDIA's libraries through its rpath, $ORIGIN/../../nvidia/<component>/lib:
  # point $site/nvidia at the installed runtime wheels.
  local nvidia
  if nvidia="$("$py" -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null)"; then
    [ -e "$site/nvidia" ] || ln -s "$nvidia" "$site/nvidia"
  fi
  # MLX compiles some kernels at run time (NVRTC) and needs the CUDA headers: CUDA_HOME,
  # CUDA_PATH or /usr/local/cuda, else the runtime wheels' own include directory.
  if [ -z "${CUDA_HOME:-}${CUDA_PATH:-}" ] && [ ! -d /usr/local/cuda/include ] &&
    [ -d "${nvidia:-/nonexistent}/cu13/include" ]; then
    export CUDA_HOME="$nvidia/cu13"
  fi
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  export LD_LIBRARY_PATH="$site/mlx/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # Anything still missing (another layout of the runtime wheels, a system CUDA install): the
  # first copy found under the usual roots goes on the search path.
  local lib dir
  for lib in $(ldd "$site/mlx/lib/libmlx.so" | awk '/not found/ {print $1}'); do
    dir="$(find /opt /usr /root -xdev -name "$lib" -print -quit 2>/dev/null | xargs -r dirname)"
    [ -n "$dir" ] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$dir" && echo "$lib: $dir"
  done
  if ldd "$site/mlx/lib/libmlx.so" | grep "not found"; then
    echo "libmlx.so cannot find the NVIDIA libraries above (cuBLAS, cuDNN, NCCL, cuFFT, NVRTC)" >&2
    exit 1
  fi
  ldd "$DIR/ollmlx" | grep -E "mlx|not found" || true
  "$py" -c 'import mlx.core as mx; a = mx.ones((256, 256)); print("mlx", mx.__version__, mx.default_device(), float((a @ a).sum()))'

  CARD="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | xargs)"
  local slug
  slug="$(printf '%s' "$CARD" | tr -c 'A-Za-z0-9._-' '-' | tr -s '-')"
  OLLMLX="${OLLMLX:-$DIR/ollmlx}"
  local base="${OLLMLX_BASE:-$DIR/ollmlx-base}" port_base="${PORT_BASE:-11513}"
  VENV=/nonexistent
  MLX_SERVER_CMD="$py -m mlx_lm server"
  PORT_OLLMLX="${PORT_OLLMLX:-11511}"
  PORT_MLX="${PORT_MLX:-11512}"
  PARALLEL="${PARALLEL:-8}"
  local rounds="${ROUNDS:-3}"
  local args="${COMPARE_ARGS:---decode 128 --concurrency 1 2 4 8 --stream-tokens 32}"
  . "$ROOT/scripts/bench/lib.sh"
  for shape in ${SHAPES:-smollm2-135m}; do
    local ckpt="$DIR/ckpt-$shape"
    [ -f "$ckpt/model.safetensors" ] ||
      "$py" "$ROOT/scripts/bench/random_ckpt.py" "$DIR/smollm2" "$ckpt" --shape "$shape"
    OUT="$DIR/results/$slug/$shape"
    mkdir -p "$OUT"
    bench_start_servers "$ckpt"
    bench_create_model "$ckpt"
    local ab=()
    if [ -x "$base" ]; then
      bench_serve_ollmlx "$base" "$port_base" store-base
      for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port_base/" >/dev/null 2>&1 && break
        sleep 0.2
      done
      OLLAMA_HOST="127.0.0.1:$port_base" "$base" create smollm2 -f "$OUT/Modelfile" >/dev/null
      ab=(--ollmlx-base "http://127.0.0.1:$port_base")
    fi
    curl -sf "http://127.0.0.1:$PORT_OLLMLX/api/generate" \
      -d '{"model":"smollm2","prompt":"Why is the sky blue?","stream":false,"options":{"num_predict":16}}' \
      >"$OUT/first_answer.json"
    {
      bench_machine_lines
      echo "mlx wheels: mlx, mlx-cuda-13, mlx-lm $MLX_VERSION; python $("$py" -c 'import sys; print(sys.version.split()[0])')"
      echo "ollmlx device (/api/ps): $(curl -sf "http://127.0.0.1:$PORT_OLLMLX/api/ps" | tr -d '\n' | head -c 400)"
      echo "ollmlx first answer: $(head -c 300 "$OUT/first_answer.json")"
      echo "weights: $shape shape, random values, bfloat16 ($ckpt)"
      echo "rounds: $rounds, ollmlx OLLAMA_NUM_PARALLEL: $PARALLEL, args: $args"
    } | tee "$OUT/machine.txt"
    COMPARE_MLX_DEVICE="${COMPARE_MLX_DEVICE:-gpu}" "$py" "$ROOT/scripts/bench/compare.py" run \
      --out "$OUT/compare.json" --rounds "$rounds" \
      --ollmlx "http://127.0.0.1:$PORT_OLLMLX" --ollmlx-model smollm2 \
      --mlx-server "http://127.0.0.1:$PORT_MLX" --mlx-model "$ckpt" \
      --warm-streams "${WARM_STREAMS:-0}" "${ab[@]}" $args | tee "$OUT/compare.md"
    bench_cleanup
    PIDS=()
    sleep 1
  done
  echo "== results in $DIR/results/$slug"
}

case "$cmd" in
  pack) pack ;;
  run) run ;;
  *)
    echo "usage: $0 pack|run DIR" >&2
    exit 2
    ;;
esac
