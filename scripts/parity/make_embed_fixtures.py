#!/usr/bin/env python3
"""Generate the embedding fixtures used by backends/mlx/models/tests/embed_*.rs and
backends/mlx/engine/tests/embed_families.rs.

Three tiny random-weight embedding models, each as a Hugging Face / sentence-transformers
directory (config.json, model.safetensors in float32, tokenizer.json, tokenizer_config.json,
modules.json, 1_Pooling/config.json) and as a llama.cpp-style GGUF file (float32 tensors,
llama.cpp tensor names and `<arch>.*` keys, `<arch>.pooling_type`) carrying the directory's own
vocabulary the way the converters write it (`tokenizer.ggml.*`: token list and types from
tokenizer.json, special ids and add_*_token flags from gguf's SpecialVocab, the class llama.cpp's
convert_hf_to_gguf.py uses):

- embed-bert-cls:  BertModel, [CLS] pooling + Normalize (mxbai-embed-large style);
                   GGUF arch `bert`, pooling_type 2, in float32 and in Q8_0 (every 2-D tensor
                   incl. the position / token-type tables; reference `gguf_q8_0` computed from
                   the dequantized weights); the Q8_0 file writes the tokenizer keys the way
                   Ollama's converter does (cls_token_id / seperator_token_id, no bos/eos).
- embed-nomic:     NomicBertModel (rotary, fused Wqkv, SwiGLU, no biases), mean pooling, no
                   Normalize module (so raw magnitudes are checked too); GGUF arch `nomic-bert`,
                   pooling_type 1.
- embed-qwen3:     Qwen3 decoder saved the way Qwen3-Embedding is (bare `Qwen3Model` tensor names:
                   `embed_tokens.weight`, `layers.N...`, `norm.weight`), last-token pooling +
                   Normalize; byte-level BPE tokenizer (Qwen2 split, 256 byte symbols + 112
                   learned merges + `<|endoftext|>` = id 368) whose post-processor appends
                   `<|endoftext|>`; GGUF arch `qwen3`, pooling_type 3, tokenizer `gpt2`/`qwen2`
                   with merges, eos = bos = pad = 368, add_eos_token true, add_bos_token false.

BERT and nomic-bert share an uncased WordPiece vocabulary (92 ids, id 9 unused); their GGUFs
store it in llama.cpp's phantom-space form (`▁word`, `##` stripped, `[XXX]` kept, id 9 as
`[PAD9]` UNUSED) with bos = [CLS], eos = seperator = [SEP], unknown, padding, mask ids.

References (reference.json in each directory):
- BERT and nomic-bert: an independent numpy forward written here from the Hugging Face /
  nomic `contrastors` semantics (float64, stored as float32). No MLX reference is installable
  next to mlx 0.32.2 (mlx-embeddings pins another mlx).
- Qwen3: mlx-lm's own `mlx_lm.models.qwen3.Model`; hidden states are `model.model(ids)` (final
  RMSNorm applied), pooled and normalized in numpy.

Each reference entry holds the input text, its token ids (from the fixture's tokenizer.json
through the `tokenizers` package), the raw pooled vector (`pooled`) and, for decoders, the
mean-pooled one too. `truncated` holds the first long text cut to 8 tokens the way the engine
does (first 7 tokens + the final special token).

    /tmp/refenv/bin/pip install mlx==0.32.2 mlx-cpu==0.32.2 mlx-lm==0.32.2 numpy safetensors \
        gguf==0.19.0 tokenizers
    /tmp/refenv/bin/python scripts/parity/make_embed_fixtures.py
"""

import json
import math
import shutil
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import save_file
from gguf.vocab import SpecialVocab, bytes_to_unicode
from tokenizers import (
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "backends/mlx/models/tests/fixtures"
GGUF_DIR = FIX / "embed-gguf"
TRUNC_CTX = 8

TEXTS = [
    "the cat sat on the mat",
    "a quick brown fox jumps over the lazy dog!",
    "hello world",
    "why is the sky blue? because light scatters in the air, and blue light scatters most.",
]
WORDS = sorted(
    set(
        "the cat sat on mat a quick brown fox jumps over lazy dog hello world why is sky blue "
        "because light scatters in air and most what who how where when".split()
    )
)
PUNCT = [".", ",", "!", "?"]


# ---------------------------------------------------------------- tokenizers


BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_tokenizer(path):
    """An uncased BERT WordPiece tokenizer as `bert-base-uncased` ships it: the five specials
    registered as special added tokens, `tokenizer_config.json` naming them."""
    vocab = BERT_SPECIALS + PUNCT + WORDS
    vocab += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab += ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    ids = {t: i for i, t in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tok.add_special_tokens(BERT_SPECIALS)
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.decoder = decoders.WordPiece()
    tok.save(str(path / "tokenizer.json"))
    config = {
        "do_lower_case": True,
        "model_max_length": 64,
        "tokenizer_class": "BertTokenizer",
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return tok, len(vocab)


# Qwen2 / Qwen3's pre-tokenizer split (tokenizers' `Split` regex; Ollama's converter recognises
# its sha256 as `qwen2`).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
EOT = "<|endoftext|>"


def qwen2_pre_tokenizer():
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )


def byte_level_bpe_tokenizer(path):
    """A byte-level BPE laid out like Qwen3-Embedding's tokenizer.json: NFC, the Qwen2 split +
    ByteLevel pre-tokenizer, a vocabulary of the 256 byte symbols (GPT-2 order) followed by the
    merge results in rank order, `<|endoftext|>` as the last id (special added token) and a
    TemplateProcessing post-processor that appends it. Merges are learned by `tokenizers`'
    BpeTrainer from TEXTS and WORDS (deterministic), so every fixture word is one token."""
    probe = Tokenizer(models.BPE())
    probe.pre_tokenizer = qwen2_pre_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    probe.train_from_iterator(TEXTS + [" ".join(WORDS)] + WORDS, trainer)
    merges = [tuple(m) for m in json.loads(probe.to_str())["model"]["merges"]]
    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    eot = len(vocab)
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = qwen2_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOT])
    assert tok.token_to_id(EOT) == eot
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A:0 {EOT}:0",
        pair=f"$A:0 {EOT}:0 $B:1 {EOT}:1",
        special_tokens=[(EOT, eot)],
    )
    tok.save(str(path / "tokenizer.json"))
    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "bos_token": None,
        "eos_token": EOT,
        "pad_token": EOT,
        "unk_token": None,
        "model_max_length": 64,
        "tokenizer_class": "Qwen2Tokenizer",
    }
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return tok, eot


def sentence_transformers_files(path, mode, normalize):
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        )
    (path / "modules.json").write_text(json.dumps(modules, indent=1))
    (path / "1_Pooling").mkdir(exist_ok=True)
    cfg = {
        "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": mode == "last",
    }
    (path / "1_Pooling/config.json").write_text(json.dumps(cfg, indent=1))


# ---------------------------------------------------------------- numpy reference pieces


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf)


def gelu_erf(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def lin(x, p, name):
    y = x @ p[name + ".weight"].T
    if name + ".bias" in p:
        y = y + p[name + ".bias"]
    return y


def attend(q, k, v, heads):
    """q, k, v: [L, D] (k, v already projected); bidirectional, no padding (one sequence)."""
    L, D = q.shape
    hd = D // heads
    q = q.reshape(L, heads, hd).transpose(1, 0, 2)
    k = k.reshape(L, heads, hd).transpose(1, 0, 2)
    v = v.reshape(L, heads, hd).transpose(1, 0, 2)
    s = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(hd))
    return (s @ v).transpose(1, 0, 2).reshape(L, D)


def rotary_neox(x, dims, base):
    """x: [heads, L, hd]; rotate the first `dims` features, halves layout."""
    L = x.shape[1]
    inv = base ** (-np.arange(0, dims, 2, dtype=np.float64) / dims)
    ang = np.arange(L, dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)
    half = dims // 2
    x1, x2 = x[..., :half], x[..., half:dims]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin, x[..., dims:]], axis=-1)


def pool(h, mode):
    if mode == "cls":
        return h[0]
    if mode == "last":
        return h[-1]
    if mode == "max":
        return h.max(0)
    return h.mean(0)


# ---------------------------------------------------------------- weights


def normal(rng, shape, std):
    return rng.normal(0.0, std, shape)


def dense(rng, p, name, out, inp, bias=True, gain=1.0):
    p[name + ".weight"] = normal(rng, (out, inp), gain / math.sqrt(inp))
    if bias:
        p[name + ".bias"] = normal(rng, (out,), 0.1)


def norm(rng, p, name, d):
    p[name + ".weight"] = 1.0 + normal(rng, (d,), 0.1)
    p[name + ".bias"] = normal(rng, (d,), 0.1)


def f32(p):
    return {k: np.ascontiguousarray(v.astype(np.float32)) for k, v in p.items()}


def f64(p):
    return {k: v.astype(np.float64) for k, v in p.items()}


# ---------------------------------------------------------------- BERT (CLS)

BERT = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
}


def bert_params(rng, cfg):
    d, f = cfg["hidden_size"], cfg["intermediate_size"]
    p = {}
    p["embeddings.word_embeddings.weight"] = normal(rng, (cfg["vocab_size"], d), 1.0)
    p["embeddings.position_embeddings.weight"] = normal(rng, (cfg["max_position_embeddings"], d), 0.5)
    p["embeddings.token_type_embeddings.weight"] = normal(rng, (2, d), 0.5)
    norm(rng, p, "embeddings.LayerNorm", d)
    for i in range(cfg["num_hidden_layers"]):
        l = f"encoder.layer.{i}"
        for n in ("query", "key", "value"):
            dense(rng, p, f"{l}.attention.self.{n}", d, d, gain=2.0 if n != "value" else 1.0)
        dense(rng, p, f"{l}.attention.output.dense", d, d)
        norm(rng, p, f"{l}.attention.output.LayerNorm", d)
        dense(rng, p, f"{l}.intermediate.dense", f, d)
        dense(rng, p, f"{l}.output.dense", d, f)
        norm(rng, p, f"{l}.output.LayerNorm", d)
    return p


def bert_forward(p, cfg, ids):
    eps = cfg["layer_norm_eps"]
    L = len(ids)
    h = (
        p["embeddings.word_embeddings.weight"][ids]
        + p["embeddings.position_embeddings.weight"][:L]
        + p["embeddings.token_type_embeddings.weight"][0]
    )
    h = layer_norm(h, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        l = f"encoder.layer.{i}"
        q = lin(h, p, f"{l}.attention.self.query")
        k = lin(h, p, f"{l}.attention.self.key")
        v = lin(h, p, f"{l}.attention.self.value")
        a = lin(attend(q, k, v, cfg["num_attention_heads"]), p, f"{l}.attention.output.dense")
        n = f"{l}.attention.output.LayerNorm"
        h = layer_norm(h + a, p[n + ".weight"], p[n + ".bias"], eps)
        m = lin(gelu_erf(lin(h, p, f"{l}.intermediate.dense")), p, f"{l}.output.dense")
        n = f"{l}.output.LayerNorm"
        h = layer_norm(h + m, p[n + ".weight"], p[n + ".bias"], eps)
    return h


BERT_TO_GGUF = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.LayerNorm": "token_embd_norm",
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}

# ---------------------------------------------------------------- nomic-bert (mean)

NOMIC = {
    "architectures": ["NomicBertModel"],
    "model_type": "nomic_bert",
    "n_embd": 32,
    "n_head": 4,
    "n_layer": 2,
    "n_inner": 48,
    "activation_function": "swiglu",
    "rotary_emb_fraction": 1.0,
    "rotary_emb_base": 1000,
    "rotary_emb_interleaved": False,
    "rotary_emb_scale_base": None,
    "rotary_scaling_factor": None,
    "max_trained_positions": 64,
    "n_positions": 64,
    "layer_norm_epsilon": 1e-12,
    "prenorm": False,
    "qkv_proj_bias": False,
    "mlp_fc1_bias": False,
    "mlp_fc2_bias": False,
    "type_vocab_size": 2,
    "use_rms_norm": False,
    "parallel_block": False,
}


def nomic_params(rng, cfg):
    d, f = cfg["n_embd"], cfg["n_inner"]
    p = {}
    p["embeddings.word_embeddings.weight"] = normal(rng, (cfg["vocab_size"], d), 1.0)
    p["embeddings.token_type_embeddings.weight"] = normal(rng, (2, d), 0.5)
    norm(rng, p, "emb_ln", d)
    for i in range(cfg["n_layer"]):
        l = f"encoder.layers.{i}"
        dense(rng, p, f"{l}.attn.Wqkv", 3 * d, d, bias=False, gain=2.0)
        dense(rng, p, f"{l}.attn.out_proj", d, d, bias=False)
        norm(rng, p, f"{l}.norm1", d)
        dense(rng, p, f"{l}.mlp.fc11", f, d, bias=False)
        dense(rng, p, f"{l}.mlp.fc12", f, d, bias=False)
        dense(rng, p, f"{l}.mlp.fc2", d, f, bias=False, gain=2.0)
        norm(rng, p, f"{l}.norm2", d)
    return p


def nomic_forward(p, cfg, ids):
    eps = cfg["layer_norm_epsilon"]
    d, heads = cfg["n_embd"], cfg["n_head"]
    hd = d // heads
    dims = int(hd * cfg["rotary_emb_fraction"])
    L = len(ids)
    h = p["embeddings.word_embeddings.weight"][ids] + p["embeddings.token_type_embeddings.weight"][0]
    h = layer_norm(h, p["emb_ln.weight"], p["emb_ln.bias"], eps)
    for i in range(cfg["n_layer"]):
        l = f"encoder.layers.{i}"
        qkv = lin(h, p, f"{l}.attn.Wqkv")
        q, k, v = qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :]
        split = lambda x: x.reshape(L, heads, hd).transpose(1, 0, 2)
        q = rotary_neox(split(q), dims, cfg["rotary_emb_base"])
        k = rotary_neox(split(k), dims, cfg["rotary_emb_base"])
        v = split(v)
        s = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(hd))
        o = (s @ v).transpose(1, 0, 2).reshape(L, d)
        h = layer_norm(h + lin(o, p, f"{l}.attn.out_proj"), p[f"{l}.norm1.weight"], p[f"{l}.norm1.bias"], eps)
        y = lin(h, p, f"{l}.mlp.fc11") * silu(lin(h, p, f"{l}.mlp.fc12"))
        h = layer_norm(h + lin(y, p, f"{l}.mlp.fc2"), p[f"{l}.norm2.weight"], p[f"{l}.norm2.bias"], eps)
    return h


NOMIC_TO_GGUF = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.token_type_embeddings": "token_types",
    "emb_ln": "token_embd_norm",
    "attn.Wqkv": "attn_qkv",
    "attn.out_proj": "attn_output",
    "norm1": "attn_output_norm",
    "mlp.fc11": "ffn_up",
    "mlp.fc12": "ffn_gate",
    "mlp.fc2": "ffn_down",
    "norm2": "layer_output_norm",
}

# ---------------------------------------------------------------- Qwen3 decoder (last token)

QWEN3 = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 64,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
}

QWEN_TO_GGUF = {
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


# The Qwen3 fixture first had a 96-token word-level vocabulary; its embedding rows 0..95 and
# every other tensor are still drawn from seed 3003 in the same order, the rows the byte-level
# vocabulary added come from seed 3004.
QWEN3_FIRST_ROWS = 96


def qwen3_model(rng, cfg):
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_lm.models import qwen3

    model = qwen3.Model(qwen3.ModelArgs.from_dict(cfg))
    new = []
    for name, prm in tree_flatten(model.parameters()):
        shape = prm.shape
        if name.endswith("norm.weight"):
            v = 1.0 + normal(rng, shape, 0.1)
        elif name.endswith("embed_tokens.weight"):
            first = normal(rng, (QWEN3_FIRST_ROWS, shape[1]), 1.0)
            rest = normal(np.random.default_rng(3004), (shape[0] - QWEN3_FIRST_ROWS, shape[1]), 1.0)
            v = np.concatenate([first, rest])
        else:
            gain = 2.0 if ("q_proj" in name or "k_proj" in name) else 1.0
            v = normal(rng, shape, gain / math.sqrt(shape[-1]))
        new.append((name, mx.array(v.astype(np.float32))))
    model.update(tree_unflatten(new))
    mx.eval(model.parameters())
    return model


def qwen3_hidden(model, ids):
    import mlx.core as mx

    h = model.model(mx.array(ids)[None])
    return np.array(h[0].astype(mx.float32)).astype(np.float64)


# ---------------------------------------------------------------- writing


def gguf_layer_name(hf, table, layer_prefix):
    stem, suffix = hf.rsplit(".", 1)
    if stem in table:
        return f"{table[stem]}.{suffix}"
    assert stem.startswith(layer_prefix + "."), hf
    n, rest = stem[len(layer_prefix) + 1 :].split(".", 1)
    return f"blk.{n}.{table[rest]}.{suffix}"


def q8_0_roundtrip(params):
    """Which tensors a Q8_0 file quantizes (2-D, rows a multiple of 32 wide; llama.cpp keeps
    norms and biases in float32), and the weights as the engine will see them after
    dequantization (the reference for the Q8_0 GGUF)."""
    quantized, seen = {}, {}
    for k, v in params.items():
        if v.ndim == 2 and v.shape[1] % 32 == 0:
            q = gguf.quants.quantize(v.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
            quantized[k] = q
            seen[k] = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0).reshape(v.shape)
        else:
            seen[k] = v
    return quantized, seen


def gguf_token_list(tok_dir):
    """The token list and types the converters read from a tokenizer.json (llama.cpp's
    `get_vocab_base`, Ollama's `parseVocabularyFromTokenizer`): ids in order, special added
    tokens CONTROL, other added tokens USER_DEFINED, the rest NORMAL, gaps `[PAD<id>]` UNUSED."""
    doc = json.loads((tok_dir / "tokenizer.json").read_text())
    by_id = {i: (t, gguf.TokenType.NORMAL) for t, i in doc["model"]["vocab"].items()}
    for a in doc["added_tokens"]:
        kind = gguf.TokenType.CONTROL if a["special"] else gguf.TokenType.USER_DEFINED
        by_id[a["id"]] = (a["content"], kind)
    n = max(by_id) + 1
    entries = [by_id.get(i, (f"[PAD{i}]", gguf.TokenType.UNUSED)) for i in range(n)]
    return [t for t, _ in entries], [int(k) for _, k in entries]


def phantom_space(token):
    """BERT WordPiece → the GGUF `bert` form (llama.cpp BertModel.set_vocab, Ollama
    convert_bert.go): `[XXX]` specials kept, `##` continuations stripped, word starts `▁`."""
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def bert_vocab(tok_dir):
    """`tokenizer.ggml.*` of a BERT WordPiece model: model `bert`, phantom-space tokens, token
    types, two token types, and the special ids gguf's SpecialVocab (what llama.cpp's converter
    runs) takes from tokenizer_config.json: bos = [CLS], eos = sep = [SEP], unk, pad, mask."""

    def write(w):
        tokens, types = gguf_token_list(tok_dir)
        w.add_tokenizer_model("bert")
        w.add_tokenizer_pre("default")
        w.add_token_list([phantom_space(t) for t in tokens])
        w.add_token_types(types)
        w.add_token_type_count(2)
        SpecialVocab(tok_dir, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)

    return write


def bert_vocab_ollama(tok_dir):
    """The same vocabulary with the key set of Ollama's converter (convert_bert.go +
    ModelParameters.KV + parseTokenizer): scores (the ids), `token_type_count`, and special ids
    only for the `<typ>_token` entries tokenizer_config.json names — `cls_token_id`,
    `seperator_token_id`, `unknown_token_id`, `padding_token_id`, `mask_token_id`, no bos/eos —
    plus `bert.normalize_embeddings`. (Ollama's converter would also drop the vocabulary's
    unused id 9 and shift later ids; real BERT vocabularies have no gaps, so it stays filled.)"""

    def write(w):
        tokens, types = gguf_token_list(tok_dir)
        w.add_tokenizer_model("bert")
        w.add_tokenizer_pre("default")
        w.add_token_list([phantom_space(t) for t in tokens])
        w.add_token_scores([float(i) for i in range(len(tokens))])
        w.add_token_types(types)
        w.add_token_type_count(2)
        config = json.loads((tok_dir / "tokenizer_config.json").read_text())
        doc = json.loads((tok_dir / "tokenizer.json").read_text())
        added = {a["content"]: a["id"] for a in doc["added_tokens"]}
        keys = [
            ("unk", "unknown"),
            ("sep", "seperator"),
            ("pad", "padding"),
            ("cls", "cls"),
            ("mask", "mask"),
        ]
        for typ, key in keys:
            if config.get(f"{typ}_token") in added:
                w.add_uint32(f"tokenizer.ggml.{key}_token_id", added[config[f"{typ}_token"]])
        w.add_bool("bert.normalize_embeddings", True)

    return write


def gpt2_vocab(tok_dir, pre):
    """`tokenizer.ggml.*` of a byte-level BPE model: model `gpt2`, `pre`, tokens as stored, token
    types, merges, and SpecialVocab's special ids and add_*_token flags (for Qwen3-Embedding:
    eos = `<|endoftext|>`, add_eos_token true from the TemplateProcessing, add_bos_token false,
    bos from config.json)."""

    def write(w):
        tokens, types = gguf_token_list(tok_dir)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types(types)
        SpecialVocab(tok_dir, load_merges=True, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)

    return write


def write_gguf(path, arch, params, names, meta, vocab, quantized=None):
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"ollmlx embed fixture {arch}")
    w.add_context_length(meta["context"])
    w.add_embedding_length(meta["hidden"])
    w.add_block_count(meta["layers"])
    w.add_feed_forward_length(meta["ffn"])
    w.add_head_count(meta["heads"])
    if "kv_heads" in meta:
        w.add_head_count_kv(meta["kv_heads"])
    if "ln_eps" in meta:
        w.add_layer_norm_eps(meta["ln_eps"])
    if "rms_eps" in meta:
        w.add_layer_norm_rms_eps(meta["rms_eps"])
    if "rope_base" in meta:
        w.add_rope_freq_base(meta["rope_base"])
    if "key_length" in meta:
        w.add_key_length(meta["key_length"])
        w.add_value_length(meta["key_length"])
    if "causal" in meta:
        w.add_causal_attention(meta["causal"])
    w.add_pooling_type(gguf.PoolingType(meta["pooling"]))
    vocab(w)
    for hf in sorted(params):
        if quantized and hf in quantized:
            w.add_tensor(names(hf), quantized[hf], raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(names(hf), params[hf])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def entries(tok, texts, forward, mode, extra_mean=False):
    out = []
    for t in texts:
        ids = tok.encode(t).ids
        h = forward(ids)
        e = {"text": t, "ids": ids, "pooled": [float(x) for x in pool(h, mode).astype(np.float32)]}
        if extra_mean:
            e["mean"] = [float(x) for x in pool(h, "mean").astype(np.float32)]
        out.append(e)
    long_ids = tok.encode(texts[-1]).ids
    assert len(long_ids) > TRUNC_CTX
    cut = long_ids[: TRUNC_CTX - 1] + [long_ids[-1]]
    trunc = {
        "text": texts[-1],
        "ctx": TRUNC_CTX,
        "ids": cut,
        "pooled": [float(x) for x in pool(forward(cut), mode).astype(np.float32)],
    }
    return out, trunc


def q8_reference(refs, forward, mode):
    """Pooled vectors of the dequantized Q8_0 weights, one per reference input."""
    return [[float(x) for x in pool(forward(e["ids"]), mode).astype(np.float32)] for e in refs]


def fresh(name):
    path = FIX / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def write_reference(path, kind, mode, normalize, refs, trunc, source, q8_0=None):
    doc = {
        "kind": kind,
        "pooling": mode,
        "normalize": normalize,
        "reference": source,
        "inputs": refs,
        "truncated": trunc,
    }
    if q8_0 is not None:
        doc["gguf_q8_0"] = q8_0
    (path / "reference.json").write_text(json.dumps(doc, indent=1))


def make_bert():
    path = fresh("embed-bert-cls")
    tok, vocab = wordpiece_tokenizer(path)
    cfg = dict(BERT, vocab_size=vocab)
    p = bert_params(np.random.default_rng(1001), cfg)
    save_file(f32(p), str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(cfg, indent=1))
    sentence_transformers_files(path, "cls", normalize=True)
    p64 = f64(f32(p))
    refs, trunc = entries(tok, TEXTS, lambda ids: bert_forward(p64, cfg, ids), "cls")
    quantized, seen = q8_0_roundtrip(f32(p))
    q8 = q8_reference(refs, lambda ids: bert_forward(f64(seen), cfg, ids), "cls")
    write_reference(
        path, "bert", "cls", True, refs, trunc, "numpy BertModel forward (this script)", q8
    )
    bert_meta = {
        "context": cfg["max_position_embeddings"],
        "hidden": cfg["hidden_size"],
        "layers": cfg["num_hidden_layers"],
        "ffn": cfg["intermediate_size"],
        "heads": cfg["num_attention_heads"],
        "ln_eps": cfg["layer_norm_eps"],
        "causal": False,
        "pooling": gguf.PoolingType.CLS,
    }
    names = lambda hf: gguf_layer_name(hf, BERT_TO_GGUF, "encoder.layer")
    write_gguf(GGUF_DIR / "bert-cls.gguf", "bert", f32(p), names, bert_meta, bert_vocab(path))
    # The Q8_0 file carries the vocabulary with Ollama's key set instead of llama.cpp's.
    write_gguf(
        GGUF_DIR / "bert-cls-q8_0.gguf",
        "bert",
        f32(p),
        names,
        bert_meta,
        bert_vocab_ollama(path),
        quantized,
    )


def make_nomic():
    path = fresh("embed-nomic")
    tok, vocab = wordpiece_tokenizer(path)
    cfg = dict(NOMIC, vocab_size=vocab)
    p = nomic_params(np.random.default_rng(2002), cfg)
    save_file(f32(p), str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(cfg, indent=1))
    sentence_transformers_files(path, "mean", normalize=False)
    p64 = f64(f32(p))
    refs, trunc = entries(tok, TEXTS, lambda ids: nomic_forward(p64, cfg, ids), "mean")
    write_reference(
        path, "nomic_bert", "mean", False, refs, trunc, "numpy NomicBertModel forward (this script)"
    )
    write_gguf(
        GGUF_DIR / "nomic-bert.gguf",
        "nomic-bert",
        f32(p),
        lambda hf: gguf_layer_name(hf, NOMIC_TO_GGUF, "encoder.layers"),
        {
            "context": cfg["max_trained_positions"],
            "hidden": cfg["n_embd"],
            "layers": cfg["n_layer"],
            "ffn": cfg["n_inner"],
            "heads": cfg["n_head"],
            "ln_eps": cfg["layer_norm_epsilon"],
            "rope_base": float(cfg["rotary_emb_base"]),
            "causal": False,
            "pooling": gguf.PoolingType.MEAN,
        },
        bert_vocab(path),
    )


def make_qwen3():
    from mlx.utils import tree_flatten

    path = fresh("embed-qwen3")
    tok, eot = byte_level_bpe_tokenizer(path)
    cfg = dict(QWEN3, vocab_size=tok.get_vocab_size(), bos_token_id=eot, eos_token_id=eot)
    model = qwen3_model(np.random.default_rng(3003), cfg)
    params = {
        k: np.array(v) for k, v in tree_flatten(model.parameters()) if k.startswith("model.")
    }
    bare = {k[len("model.") :]: v for k, v in params.items()}
    save_file(f32(bare), str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(cfg, indent=1))
    sentence_transformers_files(path, "last", normalize=True)
    refs, trunc = entries(tok, TEXTS, lambda ids: qwen3_hidden(model, ids), "last", extra_mean=True)
    write_reference(
        path, "qwen3", "last", True, refs, trunc, "mlx-lm 0.32.2 qwen3.Model.model(ids), numpy pooling"
    )

    def names(hf):
        stem, suffix = hf.rsplit(".", 1)
        if stem == "model.embed_tokens":
            return f"token_embd.{suffix}"
        if stem == "model.norm":
            return f"output_norm.{suffix}"
        return gguf_layer_name(hf, QWEN_TO_GGUF, "model.layers")

    write_gguf(
        GGUF_DIR / "qwen3-embed.gguf",
        "qwen3",
        f32(params),
        names,
        {
            "context": cfg["max_position_embeddings"],
            "hidden": cfg["hidden_size"],
            "layers": cfg["num_hidden_layers"],
            "ffn": cfg["intermediate_size"],
            "heads": cfg["num_attention_heads"],
            "kv_heads": cfg["num_key_value_heads"],
            "key_length": cfg["head_dim"],
            "rms_eps": cfg["rms_norm_eps"],
            "rope_base": cfg["rope_theta"],
            "pooling": gguf.PoolingType.LAST,
        },
        gpt2_vocab(path, "qwen2"),
    )


def main():
    from importlib.metadata import version

    for pkg, want in [("mlx", "0.32.2"), ("mlx-lm", "0.32.2"), ("gguf", "0.19.0")]:
        if version(pkg) != want:
            raise SystemExit(f"pinned {pkg} {want}, found {version(pkg)}")
    if GGUF_DIR.exists():
        shutil.rmtree(GGUF_DIR)
    GGUF_DIR.mkdir(parents=True)
    make_bert()
    make_nomic()
    make_qwen3()
    for p in sorted(FIX.glob("embed-*")):
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        print(f"{p.relative_to(ROOT)}: {size // 1024} KiB")


if __name__ == "__main__":
    main()
