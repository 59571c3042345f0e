#!/usr/bin/env bash
# The side-by-side benchmark on an NVIDIA GPU: ollmlx built against MLX's CUDA wheel
# (mlx-cuda-13 0.32.2) vs mlx-lm 0.32.2 on the same wheel (mlx_lm.generate's stream_generate
# in-process, and mlx_lm.server), same weights, same workloads as scripts/bench/compare.sh,
# interleaved rounds. Needs an NVIDIA driver (nvidia-smi, libcuda.so.1) and the package
# registries (PyPI for the wheels, crates.io for the build).
#
#   scripts/bench/cuda.sh                        # everything; results under .ollmlx-cache/bench-cuda/<card>/
#   ROUNDS=5 DTYPE=float16 scripts/bench/cuda.sh
#   VARIANT=cpu scripts/bench/cuda.sh            # the same flow on the CPU wheel (checks the script
#                                                # on a machine without a GPU; its numbers are not the
#                                                # CPU comparison: scripts/bench/compare.sh is)
#
# Weights: both engines load one MLX checkpoint made from the SmolLM2-135M-Instruct GGUF
# (scripts/bench/gguf_to_hf.py, then mlx_lm.convert --dtype $DTYPE, bfloat16 by default, the
# GPU dtype; Q=4 adds mlx_lm.convert -q for 4-bit affine weights). ollmlx imports that directory
# with `ollmlx create` (FROM <dir>), so both run the same tensors. The card, driver and CUDA
# version go into machine.txt next to compare.md / compare.json: record them with the numbers
# in docs/performance.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="$ROOT/.ollmlx-cache"
VARIANT="${VARIANT:-cuda-13}"
DTYPE="${DTYPE:-bfloat16}"
Q="${Q:-}"
ROUNDS="${ROUNDS:-3}"
PARALLEL="${PARALLEL:-8}"
COMPARE_ARGS="${COMPARE_ARGS:---decode 128 --concurrency 1 2 4 8 --stream-tokens 32}"
GGUF="${GGUF:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
PORT_OLLMLX="${PORT_OLLMLX:-11511}"
PORT_MLX="${PORT_MLX:-11512}"

case "$VARIANT" in
  cuda-13 | cuda-12)
    command -v nvidia-smi >/dev/null 2>&1 || {
      echo "nvidia-smi not found: this benchmark needs an NVIDIA GPU and its driver" \
        "(VARIANT=cpu runs the same flow on the CPU)" >&2
      exit 1
    }
    CARD="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | xargs)"
    WHEEL="mlx-$VARIANT==0.32.2"
    ;;
  cpu)
    CARD="cpu-$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    WHEEL="mlx-cpu==0.32.2"
    ;;
  *)
    echo "VARIANT must be cuda-13, cuda-12 or cpu (got $VARIANT)" >&2
    exit 1
    ;;
esac
SLUG="$(printf '%s' "$CARD" | tr -c 'A-Za-z0-9._-' '-' | tr -s '-')"
OUT="${OUT:-$CACHE/bench-cuda/$SLUG}"
VENV="${VENV:-$CACHE/bench-venv-$VARIANT}"
TARGET="${TARGET:-$ROOT/target-$VARIANT}"
CKPT="$CACHE/bench/smollm2-135m-mlx-$DTYPE${Q:+-q$Q}"
mkdir -p "$OUT" "$CACHE/bench"

. "$ROOT/scripts/bench/lib.sh"
bench_setup "$WHEEL"
if [ ! -f "$CKPT/config.json" ]; then
  echo "== converting $GGUF to an MLX $DTYPE${Q:+ $Q-bit} checkpoint"
  [ -f "$CACHE/bench/smollm2-hf/config.json" ] ||
    "$VENV/bin/python" "$ROOT/scripts/bench/gguf_to_hf.py" "$GGUF" "$CACHE/bench/smollm2-hf"
  QARGS=()
  [ -n "$Q" ] && QARGS=(-q --q-bits "$Q")
  "$VENV/bin/mlx_lm.convert" --hf-path "$CACHE/bench/smollm2-hf" --mlx-path "$CKPT" \
    --dtype "$DTYPE" "${QARGS[@]}"
fi
OLLMLX="${OLLMLX:-$TARGET/release/ollmlx}"
if [ ! -x "$OLLMLX" ]; then
  echo "== building ollmlx against the MLX $VARIANT wheel ($TARGET)"
  (cd "$ROOT" && OLLMLX_MLX_VARIANT="$VARIANT" CARGO_TARGET_DIR="$TARGET" \
    cargo build --release -p ollmlx-cli)
fi

bench_start_servers "$CKPT"
bench_create_model "$CKPT"
# Load it once so the device shows in /api/ps.
curl -sf "http://127.0.0.1:$PORT_OLLMLX/api/generate" -d '{"model":"smollm2"}' >/dev/null

echo "== machine"
{
  bench_machine_lines
  echo "mlx wheel: $WHEEL; mlx (python) default device: $("$VENV/bin/python" -c 'import mlx.core as m; print(m.__version__, m.default_device())')"
  echo "ollmlx device (/api/ps): $(curl -sf "http://127.0.0.1:$PORT_OLLMLX/api/ps" | tr -d '\n' | head -c 400)"
  echo "weights: $CKPT (dtype $DTYPE${Q:+, $Q-bit})"
  echo "rounds: $ROUNDS, ollmlx OLLAMA_NUM_PARALLEL: $PARALLEL"
} | tee "$OUT/machine.txt"

"$VENV/bin/python" "$ROOT/scripts/bench/compare.py" run \
  --out "$OUT/compare.json" --rounds "$ROUNDS" \
  --ollmlx "http://127.0.0.1:$PORT_OLLMLX" --ollmlx-model smollm2 \
  --mlx-server "http://127.0.0.1:$PORT_MLX" --mlx-model "$CKPT" \
  $COMPARE_ARGS | tee "$OUT/compare.md"
echo "== results in $OUT (machine.txt, compare.md, compare.json)"
