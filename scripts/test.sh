#!/usr/bin/env bash
# The whole ollmlx test suite, from a fresh clone:
#   1. installs what the tests need (system packages for the MLX build, a Python venv with the
#      official clients, the npm client) — idempotent, quick when already done;
#   2. runs every Rust test in the workspace;
#   3. starts the full server over the scripted backend and runs the live-client suites
#      (ollama-python, openai-python, raw Anthropic HTTP, ollama-js) against it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

echo "== installing test dependencies"
scripts/install-deps.sh

echo "== cargo test (workspace)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

echo "== conformance replay and live-client suites against ollmlx-mock-serve"
# The test run above already built both binaries (the CLI's and the conformance crate's
# integration tests need them); building them again with `-p` would resolve features
# differently and recompile the MLX crates.
for bin in ollmlx ollmlx-mock-serve; do
  [ -x "$ROOT/target/debug/$bin" ] || cargo build -q --workspace --bins
done
LOG=$(mktemp)
"$ROOT/target/debug/ollmlx-mock-serve" 127.0.0.1:0 >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" "$LOG" && break; sleep 0.1; done
export OLLMLX_URL=$(sed -n 's/^listening on //p' "$LOG" | head -1)
[ -n "$OLLMLX_URL" ] || { echo "ollmlx-mock-serve did not start:"; cat "$LOG"; exit 1; }
echo "server at $OLLMLX_URL"

run_suites() {
  "$ROOT/target/debug/ollmlx" conformance replay --cassettes golden/cassettes --target "$OLLMLX_URL" | tail -1
  (cd tests/clients/python && "$ROOT/.venv-clients/bin/python" -m pytest -q -p no:cacheprovider)
  (cd tests/clients/js && node --test)
}
run_suites

echo "== the same suites through 'ollmlx serve --upstream' (transparent proxy mode)"
PROXY_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PLOG=$(mktemp)
OLLAMA_HOST=127.0.0.1:$PROXY_PORT "$ROOT/target/debug/ollmlx" serve --upstream "$OLLMLX_URL" >"$PLOG" 2>&1 &
PROXY=$!
trap 'kill $SERVER $PROXY 2>/dev/null || true; rm -f "$LOG" "$PLOG"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PROXY_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
export OLLMLX_URL=http://127.0.0.1:$PROXY_PORT
run_suites

echo "== end to end: ollmlx serve + the MLX engine + a real model (SmolLM2-135M) through the CLI"
kill $PROXY 2>/dev/null || true
E2E_MODELS=$(mktemp -d)
E2E_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ELOG=$(mktemp)
OLLAMA_HOST=127.0.0.1:$E2E_PORT OLLAMA_MODELS=$E2E_MODELS "$ROOT/target/debug/ollmlx" serve >"$ELOG" 2>&1 &
E2E=$!
trap 'kill $SERVER $PROXY $E2E 2>/dev/null || true; rm -rf "$LOG" "$PLOG" "$ELOG" "$E2E_MODELS"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$E2E_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
MF=$(mktemp)
printf 'FROM %s\nPARAMETER temperature 0\n' "$ROOT/.ollmlx-cache/models/SmolLM2-135M-Instruct.Q4_1.gguf" >"$MF"
export OLLAMA_HOST=127.0.0.1:$E2E_PORT
"$ROOT/target/debug/ollmlx" create smollm2:135m -f "$MF" 2>/dev/null
ANSWER=$("$ROOT/target/debug/ollmlx" run smollm2:135m "What is the capital of France?" 2>/dev/null)
echo "answer: $ANSWER"
case "$ANSWER" in
  *Paris*) echo "end-to-end: 1 passed, 0 failed" ;;
  *) echo "end-to-end: 0 passed, 1 failed (expected Paris)"; cat "$ELOG"; exit 1 ;;
esac

echo "== soak (CI variant): 2,000 mixed requests against ollmlx serve + SmolLM2/MiniLM, flat RSS"
# scripts/soak/soak.py starts and stops its own server (temp model store, free port) and cleans
# up on failure too; the full 10,000-request soak is `scripts/soak/soak.py` (docs/performance.md).
kill $E2E 2>/dev/null || true
OLLMLX_BIN="$ROOT/target/debug/ollmlx" SOAK_REQUESTS=2000 python3 scripts/soak/soak.py
