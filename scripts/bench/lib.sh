# Shared steps of the side-by-side benchmark scripts (compare.sh on the CPU, cuda.sh on an
# NVIDIA GPU); sourced by them, not run. They set ROOT, OUT, VENV, OLLMLX, GGUF, PORT_OLLMLX,
# PORT_MLX and PARALLEL before calling these.

# A Python venv at $VENV with MLX 0.32.2 (the wheel named by $1: mlx-cpu or mlx-cuda-13) and
# mlx-lm 0.32.2, plus what gguf_to_hf.py needs; the SmolLM2 GGUF fetched when missing.
bench_setup() {
  [ -f "$GGUF" ] || "$ROOT/scripts/fetch-models.sh"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q mlx==0.32.2 "$1" mlx-lm==0.32.2 gguf==0.19.0 \
      transformers tokenizers safetensors numpy
  fi
}

# Every server started below is stopped when the script exits.
PIDS=()
bench_cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap bench_cleanup EXIT

# `ollmlx serve` of binary $1 on port $2 with a fresh store $OUT/$3 and log $OUT/ollmlx-$3.log
# (`store`: $OUT/ollmlx.log), in the background (prompt-lookup speculation off unless
# OLLMLX_PROMPT_LOOKUP says otherwise).
bench_serve_ollmlx() {
  local log="$OUT/ollmlx-$3.log"
  [ "$3" = store ] && log="$OUT/ollmlx.log"
  echo "== starting $1 on :$2 (fresh store in $OUT/$3)"
  rm -rf "${OUT:?}/$3"
  OLLAMA_MODELS="$OUT/$3" OLLAMA_HOST="127.0.0.1:$2" OLLAMA_KEEP_ALIVE=30m \
    OLLAMA_NUM_PARALLEL="$PARALLEL" OLLMLX_PROMPT_LOOKUP="${OLLMLX_PROMPT_LOOKUP:-0}" \
    "$1" serve >"$log" 2>&1 &
  PIDS+=($!)
}

# `ollmlx serve` on $PORT_OLLMLX with a fresh store in $OUT/store (prompt-lookup speculation off
# unless OLLMLX_PROMPT_LOOKUP says otherwise: the engines compared do not speculate, so the
# ratios compare decoding itself), and mlx_lm.server on
# $PORT_MLX serving checkpoint $1 (any further arguments: environment assignments for it, such
# as LD_PRELOAD=...); returns when both answer. MLX_SERVER_CMD replaces the venv's
# mlx_lm.server (cuda_bundle.sh: `python3 -m mlx_lm server`).
bench_start_servers() {
  local ckpt="$1"
  shift
  bench_serve_ollmlx "$OLLMLX" "$PORT_OLLMLX" store
  echo "== starting mlx_lm.server on :$PORT_MLX ${*:-}"
  env "$@" ${MLX_SERVER_CMD:-"$VENV/bin/mlx_lm.server"} --model "$ckpt" --host 127.0.0.1 --port "$PORT_MLX" \
    >"$OUT/mlx_server.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT_OLLMLX/" >/dev/null 2>&1 &&
      curl -sf "http://127.0.0.1:$PORT_MLX/v1/models" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the servers did not answer within 120 s (logs in $OUT)" >&2
  return 1
}

# Import $1 (a GGUF file or an MLX checkpoint directory) into ollmlx as `smollm2`.
bench_create_model() {
  printf 'FROM %s\n' "$1" >"$OUT/Modelfile"
  OLLAMA_HOST="127.0.0.1:$PORT_OLLMLX" "$OLLMLX" create smollm2 -f "$OUT/Modelfile" >/dev/null
}

# The lines of machine.txt both GPU scripts write first: date, card ($CARD), the NVIDIA driver
# and memory (when nvidia-smi is there), the CPU.
bench_machine_lines() {
  echo "date: $(date -u +%FT%TZ)"
  echo "card: $CARD"
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "driver / memory: $(nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader | head -1)"
    echo "nvidia-smi: $(nvidia-smi | sed -n 3p | tr -s ' ')"
  fi
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
}
