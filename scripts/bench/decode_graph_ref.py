#!/usr/bin/env python3
"""mlx-lm's side of backends/mlx/models/examples/decode_graph.rs: the MLX graph of one decode
step (a one-token forward pass after a prompt, then the argmax) for the same checkpoint, its
node count by primitive, and the host time to build it (nothing evaluated).

  decode_graph_ref.py CKPT_DIR [PROMPT_TOKENS] [out.dot]

Needs mlx and mlx-lm 0.32.2 (the bench venv of compare.sh). Never used at run time.
"""

import collections
import copy
import os
import re
import sys
import tempfile
import time

import mlx.core as mx
from mlx_lm import load
from mlx_lm.models.cache import make_prompt_cache


def main():
    ckpt = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    keep = sys.argv[3] if len(sys.argv) > 3 else None
    model, _ = load(ckpt)
    vocab = model.args.vocab_size
    ids = mx.array([[(i * 7919 + 11) % vocab for i in range(n)]])
    cache = make_prompt_cache(model)
    logits = model(ids, cache=cache)[:, -1, :]
    tok = mx.argmax(logits, axis=-1)
    mx.eval(tok, [c.state for c in cache])

    reps = 200
    t = time.perf_counter()
    for _ in range(reps):
        c = copy.deepcopy(cache)
        lg = model(tok[:, None], cache=c)[:, -1, :]
        mx.argmax(lg, axis=-1)
    build_ms = (time.perf_counter() - t) * 1e3 / reps
    t = time.perf_counter()
    for _ in range(reps):
        copy.deepcopy(cache)
    build_ms -= (time.perf_counter() - t) * 1e3 / reps  # the copies are not graph work

    c = copy.deepcopy(cache)
    nxt = mx.argmax(model(tok[:, None], cache=c)[:, -1, :], axis=-1)
    path = keep or os.path.join(tempfile.gettempdir(), f"decode_graph_ref_{os.getpid()}.dot")
    mx.export_to_dot(path, nxt)
    text = open(path).read()
    if not keep:
        os.remove(path)
    labels = re.findall(r'label\s*=\s*"([^"]*)"', text)
    print(f"mlx-lm, prompt {n}: {len(labels)} nodes in one decode step, graph built in {build_ms:.3f} ms")
    for k, v in collections.Counter(labels).most_common(25):
        print(f"  {v:5} {k}")


if __name__ == "__main__":
    main()
