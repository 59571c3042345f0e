#!/usr/bin/env python3
"""Turn a llama-architecture GGUF (e.g. SmolLM2-135M-Instruct Q4_1) into a Hugging Face
checkpoint that `mlx_lm.convert` accepts, so mlx-lm can run the same weights as ollmlx.

Part of the side-by-side benchmark (scripts/bench/compare.sh); never used at run time.

What it does:
- dequantizes every tensor to float32 with the `gguf` package;
- renames tensors to Hugging Face llama names;
- un-permutes the q/k projections (llama.cpp stores their rows interleaved for adjacent-pair
  rotary; Hugging Face llama uses half-split rotary);
- writes config.json from the GGUF metadata, model.safetensors, and a tokenizer.json rebuilt
  from the GGUF vocabulary and merges (byte-level BPE), with the chat template kept in
  tokenizer_config.json.

Usage: gguf_to_hf.py MODEL.gguf OUT_DIR
"""

import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import save_file


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    if len(f.data) == 1:
        part = f.parts[f.data[0]]
        if part.dtype == np.uint8:
            return bytes(part).decode("utf-8")
        return part.tolist()[0]
    out = []
    for i in f.data:
        part = f.parts[i]
        out.append(bytes(part).decode("utf-8") if part.dtype == np.uint8 else part.tolist()[0])
    return out


def unpermute(w, n_head):
    """Inverse of llama.cpp's q/k permutation: rows (head, pair, half) -> (head, half, pair)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def hf_name(name):
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        return "lm_head.weight"
    parts = name.split(".")
    if parts[0] == "blk" and parts[2] in NAMES:
        return f"model.layers.{parts[1]}.{NAMES[parts[2]]}.{parts[3]}"
    raise SystemExit(f"unexpected tensor {name}")


def build_tokenizer(reader, out_dir):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers import AddedToken

    tokens = field(reader, "tokenizer.ggml.tokens")
    merges = field(reader, "tokenizer.ggml.merges")
    types = field(reader, "tokenizer.ggml.token_type", [1] * len(tokens))
    vocab = {t: i for i, t in enumerate(tokens)}
    bpe = models.BPE(
        vocab=vocab,
        merges=[tuple(m.split(" ", 1)) for m in merges],
        fuse_unk=False,
        byte_fallback=False,
    )
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    special = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(special)
    tok.save(os.path.join(out_dir, "tokenizer.json"))

    bos = field(reader, "tokenizer.ggml.bos_token_id")
    eos = field(reader, "tokenizer.ggml.eos_token_id")
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": tokens[bos] if bos is not None else None,
        "eos_token": tokens[eos] if eos is not None else None,
        "add_bos_token": bool(field(reader, "tokenizer.ggml.add_bos_token", False)),
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(field(reader, "llama.context_length", 2048)),
    }
    template = field(reader, "tokenizer.chat_template")
    if template:
        cfg["chat_template"] = template
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return len(tokens), bos, eos


def main():
    src, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    reader = GGUFReader(src)
    arch = field(reader, "general.architecture")
    if arch != "llama":
        raise SystemExit(f"only llama GGUFs are supported, got {arch}")
    n_head = int(field(reader, "llama.attention.head_count"))
    n_kv = int(field(reader, "llama.attention.head_count_kv", n_head))
    tensors = {}
    for t in reader.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        # GGUF dims are innermost-first; numpy/HF shapes are the reverse.
        w = w.reshape([int(d) for d in reversed(t.shape.tolist())])
        name = hf_name(t.name)
        if t.name.endswith("attn_q.weight"):
            w = unpermute(w, n_head)
        elif t.name.endswith("attn_k.weight"):
            w = unpermute(w, n_kv)
        tensors[name] = np.ascontiguousarray(w)
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    vocab_size, bos, eos = build_tokenizer(reader, out_dir)
    hidden = int(field(reader, "llama.embedding_length"))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": int(field(reader, "llama.feed_forward_length")),
        "num_hidden_layers": int(field(reader, "llama.block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": hidden // n_head,
        "max_position_embeddings": int(field(reader, "llama.context_length", 2048)),
        "rms_norm_eps": float(field(reader, "llama.attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": float(field(reader, "llama.rope.freq_base", 10000.0)),
        "vocab_size": vocab_size,
        "tie_word_embeddings": "lm_head.weight" not in tensors,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": "float32",
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"wrote {out_dir}: {len(tensors)} tensors, vocab {vocab_size}")


if __name__ == "__main__":
    main()
