#!/usr/bin/env python3
"""Generate backends/store/tests/data/ggml_blocks.json: reference (de)quantization vectors for the
store's GGML block codecs (backends/store/src/quantize/ggml.rs), computed with the `gguf` package.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install gguf==0.19.0 numpy
    /tmp/v/bin/python scripts/gen-ggml-block-fixture.py > backends/store/tests/data/ggml_blocks.json

Dequantization cases: random block bytes whose f16/f32 scale fields are replaced by small finite
values, and the floats `gguf.quants.dequantize` makes of them. Quantization cases: random floats
and the bytes `gguf.quants.quantize` writes (Q8_0, Q4_0, Q4_1).
"""
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES

rng = np.random.default_rng(7)


def f16_bytes(v):
    return np.array([v], dtype=np.float16).tobytes()


# byte offsets of the f16 scale fields (f32 for Q8_K) inside one block
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}

cases = []
for t, blocks in [(T.Q4_0, 4), (T.Q4_1, 4), (T.Q5_0, 4), (T.Q5_1, 4), (T.Q8_0, 4),
                  (T.Q2_K, 2), (T.Q3_K, 2), (T.Q4_K, 2), (T.Q5_K, 2), (T.Q6_K, 2)]:
    per, size = GGML_QUANT_SIZES[t]
    raw = bytearray(rng.integers(0, 256, size * blocks, dtype=np.uint8).tobytes())
    for b in range(blocks):
        base = b * size
        if t == T.Q8_K:
            raw[base:base + 4] = np.array([rng.uniform(0.001, 0.05)], dtype=np.float32).tobytes()
            continue
        for off in SCALE_FIELDS[t]:
            sign = -1.0 if (t in (T.Q4_1, T.Q5_1) and off == 2) else 1.0
            raw[base + off:base + off + 2] = f16_bytes(sign * rng.uniform(0.001, 0.05))
    data = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(blocks, size)
    deq = quants.dequantize(data, t).reshape(-1).astype(np.float32)
    cases.append({"type": int(t), "name": t.name, "blocks": bytes(raw).hex(),
                  "values": [float(v) for v in deq]})

qcases = []
for t in (T.Q8_0, T.Q4_0, T.Q4_1):
    x = rng.normal(0, 0.05, 32 * 8).astype(np.float32)
    x[5] = 0.3  # one outlier per tensor
    q = quants.quantize(x.reshape(8, 32), t)
    qcases.append({"type": int(t), "name": t.name, "input": [float(v) for v in x],
                   "blocks": q.tobytes().hex()})

json.dump({"generator": "scripts/gen-ggml-block-fixture.py (gguf==0.19.0)",
           "dequantize": cases, "quantize": qcases}, sys.stdout, indent=None)
sys.stdout.write("\n")
