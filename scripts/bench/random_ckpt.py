#!/usr/bin/env python3
"""Write a llama-architecture checkpoint with random weights and a real tokenizer, for timing
engines on a machine that cannot receive real weights (a GPU box with no registry access).

Part of the side-by-side benchmark (scripts/bench/cuda.sh with BUNDLE=...); never used at run
time. Speed depends on the shapes and dtype, not on the values, so both engines loading this
checkpoint time the same work as with the real model; the text they produce is meaningless.

  random_ckpt.py SRC_DIR OUT_DIR [--shape smollm2-135m|smollm2-1.7b] [--dtype bfloat16] [--seed 0]

SRC_DIR holds a Hugging Face llama checkpoint's config.json, tokenizer.json and
tokenizer_config.json (scripts/bench/gguf_to_hf.py writes them from the SmolLM2 GGUF); its
weights are not read. `--shape` keeps the vocabulary and changes the layer sizes to those of the
named model. Weights are N(0, 0.02) (norms 1.0); the embedding rows of the special tokens
(ids below 17 in SmolLM2's vocabulary, end-of-turn and end-of-text among them) are zero, so with
tied embeddings their logits are exactly 0 while the others are not, and greedy streams never
stop early: every run produces the tokens it asks for.

Uses torch when present (on the GPU, seconds for 1.7B parameters), else numpy.
"""

import argparse
import json
import os
import shutil
import struct

SHAPES = {
    "smollm2-135m": {},  # the source config as it is
    "smollm2-1.7b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
                     "num_attention_heads": 32, "num_key_value_heads": 32, "head_dim": 64},
}
SPECIAL_ROWS = 17


def tensor_shapes(c):
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    d = c.get("head_dim") or h // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * d, c["num_key_value_heads"] * d
    out = [("model.embed_tokens.weight", (v, h)), ("model.norm.weight", (h,))]
    if not c.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", (v, h)))
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        out += [
            (p + "input_layernorm.weight", (h,)),
            (p + "post_attention_layernorm.weight", (h,)),
            (p + "self_attn.q_proj.weight", (q, h)),
            (p + "self_attn.k_proj.weight", (kv, h)),
            (p + "self_attn.v_proj.weight", (kv, h)),
            (p + "self_attn.o_proj.weight", (h, q)),
            (p + "mlp.gate_proj.weight", (i, h)),
            (p + "mlp.up_proj.weight", (i, h)),
            (p + "mlp.down_proj.weight", (h, i)),
        ]
    return out


def make_torch(name, shape, dtype, gen):
    import torch
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if name.endswith("norm.weight"):
        t = torch.ones(shape, device=dev)
    else:
        t = torch.randn(shape, generator=gen, device=dev) * 0.02
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            t[:SPECIAL_ROWS] = 0
    t = t.to({"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[dtype])
    if dtype == "bfloat16":
        return t.view(torch.int16).cpu().numpy().tobytes()
    return t.cpu().numpy().tobytes()


def make_numpy(name, shape, dtype, rng):
    import numpy as np
    if name.endswith("norm.weight"):
        a = np.ones(shape, dtype=np.float32)
    else:
        a = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            a[:SPECIAL_ROWS] = 0
    if dtype == "bfloat16":  # round to nearest even on the upper 16 bits
        u = a.view(np.uint32)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        return u.astype(np.uint16).tobytes()
    return a.astype({"float16": np.float16, "float32": np.float32}[dtype]).tobytes()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--shape", default="smollm2-135m", choices=sorted(SHAPES))
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    with open(os.path.join(a.src, "config.json")) as f:
        cfg = json.load(f)
    cfg.update(SHAPES[a.shape])
    cfg["torch_dtype"] = a.dtype
    os.makedirs(a.out, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(a.src, name), os.path.join(a.out, name))
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)

    try:
        import torch
        gen = torch.Generator(device="cuda" if torch.cuda.is_available() else "cpu")
        gen.manual_seed(a.seed)
        make = lambda n, s: make_torch(n, s, a.dtype, gen)
    except ImportError:
        import numpy as np
        rng = np.random.default_rng(a.seed)
        make = lambda n, s: make_numpy(n, s, a.dtype, rng)

    width = {"bfloat16": 2, "float16": 2, "float32": 4}[a.dtype]
    tag = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}[a.dtype]
    shapes = tensor_shapes(cfg)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes:
        size = width
        for s in shape:
            size *= s
        header[name] = {"dtype": tag, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path = os.path.join(a.out, "model.safetensors")
    with open(path + ".part", "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name, shape in shapes:
            f.write(make(name, shape))
    os.replace(path + ".part", path)
    params = offset // width
    print(f"wrote {a.out}: {a.shape} shape, {params / 1e6:.0f}M parameters, {a.dtype}, random weights")


if __name__ == "__main__":
    main()
