#!/usr/bin/env bash
# Side-by-side benchmark on this machine: ollmlx vs mlx-lm (mlx_lm.generate's stream_generate
# in-process, and mlx_lm.server) vs llama.cpp (llama-cpp-python), same SmolLM2-135M-Instruct
# weights, MLX 0.32.2 on both MLX engines, same thread count, runs interleaved.
#
#   scripts/bench/compare.sh                     # everything (builds/installs what is missing)
#   ROUNDS=5 THREADS=2 scripts/bench/compare.sh
#   NO_LLAMACPP=1 scripts/bench/compare.sh       # skip llama.cpp (its pip install compiles C++)
#   OLLMLX=target/release/ollmlx scripts/bench/compare.sh
#   COMPARE_ARGS="--rounds 1 --decode 8" NO_BENCH=1 scripts/bench/compare.sh   # a quick smoke run
#
# Dtype and BLAS, for the engine-efficiency ratio: ollmlx on the CPU dequantizes the GGUF to
# float32 and its MLX install resolves BLAS to OpenBLAS (the build replaces the wheel's bundled
# reference libblas with a symlink to libopenblas, see docs/engine.md). mlx-lm gets the same
# weights as a float32 MLX checkpoint (made from the same GGUF by gguf_to_hf.py + mlx_lm.convert)
# and the same OpenBLAS through LD_PRELOAD. "mlx-lm (bundled BLAS)" is mlx-lm as pip installs it.
# llama.cpp runs the GGUF as is (Q4_1), its default.
# Output: $OUT/compare.json, $OUT/compare.md (the tables for docs/performance.md), $OUT/*.log.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="$ROOT/.ollmlx-cache"
VENV="${VENV:-$CACHE/bench-venv}"
OUT="${OUT:-$CACHE/bench-out}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-3}"
GGUF="${GGUF:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
MLX_DIR="${MLX_DIR:-$CACHE/bench/smollm2-135m-mlx-f32}"
OPENBLAS="${OPENBLAS:-/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3}"
OLLMLX="${OLLMLX:-$ROOT/target/release/ollmlx}"
PORT_OLLMLX="${PORT_OLLMLX:-11501}"
PORT_MLX="${PORT_MLX:-11502}"
# Concurrent requests ollmlx decodes together (OLLAMA_NUM_PARALLEL; mlx_lm.server batches up to
# 32 by default): the concurrency sweep compares the two batching engines.
PARALLEL="${PARALLEL:-4}"
mkdir -p "$OUT" "$CACHE/bench"

. "$ROOT/scripts/bench/lib.sh"
bench_setup mlx-cpu==0.32.2
if [ -z "${NO_LLAMACPP:-}" ] && ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "== building llama-cpp-python from source (once; several minutes)"
  CMAKE_BUILD_PARALLEL_LEVEL="$THREADS" "$VENV/bin/pip" install -q llama-cpp-python
fi
if [ ! -f "$MLX_DIR/config.json" ]; then
  echo "== converting $GGUF to an MLX float32 checkpoint"
  "$VENV/bin/python" "$ROOT/scripts/bench/gguf_to_hf.py" "$GGUF" "$CACHE/bench/smollm2-hf"
  "$VENV/bin/mlx_lm.convert" --hf-path "$CACHE/bench/smollm2-hf" --mlx-path "$MLX_DIR" --dtype float32
fi
[ -x "$OLLMLX" ] || (cd "$ROOT" && cargo build --release -p ollmlx-cli)
[ -f "$OPENBLAS" ] || { echo "OpenBLAS not found at $OPENBLAS (apt install libopenblas0-pthread)"; exit 1; }

# Same BLAS threads everywhere; MLX's CPU backend itself computes on one thread.
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"

bench_start_servers "$MLX_DIR" LD_PRELOAD="$OPENBLAS"
bench_create_model "$GGUF"

echo "== machine"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "mlx (python): $("$VENV/bin/python" -c 'import mlx.core as m; print(m.__version__)')"
  echo "mlx-lm: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mlx-lm"))')"
  echo "threads: $THREADS (OPENBLAS_NUM_THREADS), rounds: $ROUNDS, ollmlx OLLAMA_NUM_PARALLEL: $PARALLEL"
} | tee "$OUT/machine.txt"

LLAMA_ARGS=()
[ -z "${NO_LLAMACPP:-}" ] && LLAMA_ARGS=(--gguf "$GGUF" --llamacpp)
LD_PRELOAD="$OPENBLAS" "$VENV/bin/python" "$ROOT/scripts/bench/compare.py" run \
  --out "$OUT/compare.json" --rounds "$ROUNDS" --threads "$THREADS" \
  --ollmlx "http://127.0.0.1:$PORT_OLLMLX" --ollmlx-model smollm2 \
  --mlx-server "http://127.0.0.1:$PORT_MLX" --mlx-model "$MLX_DIR" --mlx-default-blas \
  "${LLAMA_ARGS[@]}" ${COMPARE_ARGS:-} | tee "$OUT/compare.md"
[ -n "${NO_BENCH:-}" ] && exit 0

echo "== ollmlx bench (its own report, JSON and plots)"
OLLAMA_HOST="127.0.0.1:$PORT_OLLMLX" "$OLLMLX" bench smollm2 --runs 2 --decode-tokens 64 \
  --concurrency 1,2,4 --stream-tokens 24 --turns 4 --turn-tokens 16 --long-tokens 1024 \
  --json "$OUT/ollmlx-bench.json" --plot "$OUT/plots" | tee "$OUT/ollmlx-bench.txt"
