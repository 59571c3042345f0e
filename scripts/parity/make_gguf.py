#!/usr/bin/env python3
"""Re-package parity fixtures as llama.cpp-style GGUF files (tests of the GGUF load path).

Reads backends/mlx/models/tests/fixtures/<family>-bf16/model.safetensors (written by
make_fixtures.py) and writes backends/mlx/models/tests/fixtures/gguf/<family>-bf16.gguf with the
tensor names, metadata keys and layout llama.cpp's converter uses:

- names: token_embd / blk.N.attn_q|attn_k|attn_v|attn_output (+ .bias) / attn_q_norm /
  attn_k_norm / attn_norm / ffn_norm / ffn_gate|ffn_up|ffn_down / output_norm / output;
- `llama`: q/k rows permuted for adjacent-pair RoPE, llama3 scaling as a `rope_freqs` tensor
  (per-pair divisors of the frequencies);
- `qwen2` / `qwen3`: no permutation (llama.cpp runs them with NeoX half-split RoPE);
- tensors stay bfloat16 (bit-identical to the safetensors), norms and rope_freqs float32;
- a dummy vocabulary (`tok<i>`) so the vocab size is known, as in every real GGUF.

The Rust test `gguf_parity.rs` loads these and must reproduce the same golden.json.

    /tmp/refenv/bin/pip install gguf==0.19.0
    /tmp/refenv/bin/python scripts/parity/make_gguf.py
"""

import json
import math
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file  # noqa: F401  (bf16 is not a numpy dtype; see below)

PINNED_GGUF = "0.19.0"
FAMILIES = ["llama", "qwen2", "qwen3"]
ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "backends/mlx/models/tests/fixtures"

HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def read_bf16_safetensors(path):
    """name -> (uint16 array of bf16 bits, shape). safetensors.numpy cannot represent bf16."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "BF16":
            raise SystemExit(f"{path}: {name} is {meta['dtype']}, expected BF16")
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype=np.uint16).reshape(meta["shape"])
    return out


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def permute(w, n_head):
    """llama.cpp's q/k row permutation (half-split -> adjacent pairs)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf):
    stem, suffix = hf.rsplit(".", 1)
    if stem == "model.embed_tokens":
        return f"token_embd.{suffix}"
    if stem == "model.norm":
        return f"output_norm.{suffix}"
    if stem == "lm_head":
        return f"output.{suffix}"
    parts = stem.split(".")
    n, rest = parts[2], ".".join(parts[3:])
    return f"blk.{n}.{HF_TO_GGUF[rest]}.{suffix}"


def llama3_rope_factors(cfg, head_dim):
    rs = cfg["rope_scaling"]
    base = cfg["rope_theta"]
    factor = rs["factor"]
    low, high = rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old = rs.get("original_max_position_embeddings", 8192)
    low_wavelen, high_wavelen = old / low, old / high
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / base ** (i / head_dim)
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def convert(family):
    src = FIX / f"{family}-bf16"
    cfg = json.loads((src / "config.json").read_text())
    tensors = read_bf16_safetensors(src / "model.safetensors")
    arch = cfg["model_type"]
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    out = FIX / "gguf" / f"{family}-bf16.gguf"
    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out), arch)
    w.add_name(f"ollmlx parity {family}")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    if "head_dim" in cfg:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if arch == "llama":
        w.add_rope_dimension_count(head_dim)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"tok{i}" for i in range(cfg["vocab_size"])])
    for hf in sorted(tensors):
        bits = tensors[hf]
        name = gguf_name(hf)
        if arch == "llama" and (".attn_q." in name or ".attn_k." in name):
            bits = permute(bits, heads if ".attn_q." in name else kv)
        if bits.ndim == 1:
            w.add_tensor(name, bf16_to_f32(bits))
        else:
            w.add_tensor(name, np.ascontiguousarray(bits).view(np.uint8).reshape(
                bits.shape[0], -1), raw_dtype=gguf.GGMLQuantizationType.BF16)
    if arch == "llama" and (cfg.get("rope_scaling") or {}).get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg, head_dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{out.relative_to(ROOT)}: {out.stat().st_size // 1024} KiB")


def main():
    from importlib.metadata import version

    if version("gguf") != PINNED_GGUF:
        raise SystemExit(f"pinned gguf {PINNED_GGUF}, found {version('gguf')}")
    for f in FAMILIES:
        convert(f)


if __name__ == "__main__":
    main()
