#!/usr/bin/env python3
"""Reference sentence embeddings for all-MiniLM-L6-v2 with a plain numpy BERT forward.

No torch: the encoder is written out here (embeddings + LayerNorm, N post-LN layers of
biased multi-head self-attention and an exact-erf GELU MLP), followed by mean pooling over the
tokens and L2 normalization, as the model's sentence-transformers modules describe.

    pip install numpy safetensors tokenizers
    python3 scripts/reference/minilm_embed.py .ollmlx-cache/models/all-minilm-l6-v2 \
        > backends/mlx/engine/tests/fixtures/minilm_reference.json
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "The sky is blue because of Rayleigh scattering.",
    "Why is the sky blue?",
    "ollmlx serves models through an in-process MLX engine.",
    "hello",
]

_erf = np.vectorize(math.erf)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def dense(x, t, name):
    return x @ t[name + ".weight"].T + t[name + ".bias"]


def encode(t, cfg, ids):
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    n = len(ids)
    h = (
        t["embeddings.word_embeddings.weight"][ids]
        + t["embeddings.position_embeddings.weight"][:n]
        + t["embeddings.token_type_embeddings.weight"][0]
    )
    h = layer_norm(h, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    d = h.shape[-1] // heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        split = lambda y: y.reshape(n, heads, d).transpose(1, 0, 2)
        q = split(dense(h, t, p + "attention.self.query"))
        k = split(dense(h, t, p + "attention.self.key"))
        v = split(dense(h, t, p + "attention.self.value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, heads * d)
        a = dense(a, t, p + "attention.output.dense")
        h = layer_norm(h + a, t[p + "attention.output.LayerNorm.weight"],
                       t[p + "attention.output.LayerNorm.bias"], eps)
        m = dense(h, t, p + "intermediate.dense")
        m = 0.5 * m * (1.0 + _erf(m / math.sqrt(2.0)))
        m = dense(m, t, p + "output.dense")
        h = layer_norm(h + m, t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"], eps)
    return h


def main():
    model = sys.argv[1]
    cfg = json.load(open(f"{model}/config.json"))
    t = {k.removeprefix("bert."): v.astype(np.float64) for k, v in load_file(f"{model}/model.safetensors").items()}
    tok = Tokenizer.from_file(f"{model}/tokenizer.json")
    tok.no_padding()
    tok.no_truncation()
    out = []
    for s in SENTENCES:
        ids = tok.encode(s).ids
        v = encode(t, cfg, np.array(ids)).mean(0)
        v /= np.linalg.norm(v)
        out.append({"input": s, "tokens": len(ids), "embedding": [round(float(x), 7) for x in v]})
    json.dump({"model": "all-minilm-l6-v2", "pooling": "mean", "normalized": True,
               "command": "python3 scripts/reference/minilm_embed.py .ollmlx-cache/models/all-minilm-l6-v2",
               "vectors": out}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
