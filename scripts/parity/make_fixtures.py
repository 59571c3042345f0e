#!/usr/bin/env python3
"""Generate the mlx-lm parity fixtures used by backends/mlx/models/tests/parity*.rs.

For every model family the engine implements (or will), build a tiny random-weight model with
mlx-lm's own model class (`mlx_lm.models.<arch>`), save it in MLX format (config.json +
model.safetensors, exactly as mlx-lm saves a converted checkpoint), once in bfloat16 and once
4-bit quantized (mlx-lm affine quantization, group 64), reload it through
`mlx_lm.utils.load_model` and record reference outputs into golden.json.

Run with the pinned reference environment (never needed at build or test time):

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install mlx==0.32.2 mlx-cpu==0.32.2 mlx-lm==0.32.2 numpy safetensors
    /tmp/refenv/bin/python scripts/parity/make_fixtures.py [--only FAMILY ...]

The output is deterministic: weights come from numpy's PCG64 with a per-family seed, and a seed
is only accepted when its greedy continuation is robust (see `accept`). See README.md.
"""

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_map, tree_unflatten

PINNED = {"mlx": "0.32.2", "mlx-lm": "0.32.2"}
FORMAT_VERSION = 1
GROUP_SIZE = 64
BITS = 4
TOP_K = 5
GEN_TOKENS = 8
VOCAB = 512
# Two fixed prompts (token ids; no tokenizer involved). The second is longer than the gemma3
# sliding window so the windowed layers really drop positions.
PROMPTS = [
    [1, 17, 243, 5, 388, 90, 411],
    [1, 302, 77, 8, 150, 499, 21, 64, 333, 12, 256, 45, 101, 7],
]
SEED_TRIES = 400

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "backends/mlx/models/tests/fixtures"


def common(**kw):
    base = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "vocab_size": VOCAB,
        "max_position_embeddings": 2048,
        "torch_dtype": "bfloat16",
    }
    base.update(kw)
    return base


# family -> (mlx_lm module, config.json). `seed` is the first seed tried.
FAMILIES = {
    "llama": (
        "llama",
        common(
            architectures=["LlamaForCausalLM"],
            model_type="llama",
            rope_theta=500000.0,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
            tie_word_embeddings=True,
        ),
    ),
    "mistral": (
        "llama",
        common(
            architectures=["MistralForCausalLM"],
            model_type="mistral",
            rope_theta=1000000.0,
            head_dim=16,
            tie_word_embeddings=False,
        ),
    ),
    "qwen2": (
        "qwen2",
        common(
            architectures=["Qwen2ForCausalLM"],
            model_type="qwen2",
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
        ),
    ),
    "qwen3": (
        "qwen3",
        common(
            architectures=["Qwen3ForCausalLM"],
            model_type="qwen3",
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
            head_dim=32,
            tie_word_embeddings=True,
        ),
    ),
    "qwen3_moe": (
        "qwen3_moe",
        common(
            architectures=["Qwen3MoeForCausalLM"],
            model_type="qwen3_moe",
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
            head_dim=16,
            num_experts=4,
            num_experts_per_tok=2,
            decoder_sparse_step=1,
            mlp_only_layers=[],
            moe_intermediate_size=64,
            norm_topk_prob=True,
            tie_word_embeddings=False,
        ),
    ),
    "gemma3_text": (
        "gemma3_text",
        common(
            architectures=["Gemma3ForCausalLM"],
            model_type="gemma3_text",
            num_hidden_layers=4,
            num_key_value_heads=1,
            head_dim=16,
            rms_norm_eps=1e-6,
            rope_theta=1000000.0,
            rope_local_base_freq=10000.0,
            query_pre_attn_scalar=16,
            sliding_window=5,
            sliding_window_pattern=2,
            layer_types=["sliding_attention", "full_attention"] * 2,
            hidden_activation="gelu_pytorch_tanh",
            tie_word_embeddings=True,
        ),
    ),
    "phi3": (
        "phi3",
        common(
            architectures=["Phi3ForCausalLM"],
            model_type="phi3",
            num_key_value_heads=4,
            rope_theta=10000.0,
            partial_rotary_factor=0.5,
            max_position_embeddings=1024,
            original_max_position_embeddings=256,
            rope_scaling={
                "type": "longrope",
                "short_factor": [1.0, 1.5, 2.0, 3.0],
                "long_factor": [1.0, 2.0, 4.0, 8.0],
            },
            tie_word_embeddings=False,
        ),
    ),
}


def family_seed(name):
    # Stable across runs and Python versions (no hash()).
    return 1000 * (sorted(FAMILIES).index(name) + 1)


def random_params(model, cfg, rng):
    """Fresh float32 weights, scaled so logits spread out (see README.md)."""
    gemma = cfg["model_type"].startswith("gemma")
    new = []
    for name, p in tree_flatten(model.parameters()):
        shape = p.shape
        leaf = name.split(".")[-2] if name.endswith((".weight", ".bias")) else name
        if name.endswith("norm.weight") or leaf.endswith("layernorm") or leaf == "norm":
            # Gemma norms scale by (1 + w): keep w small so the gain stays near 1.
            v = rng.normal(0.0, 0.1, shape) + (0.0 if gemma else 1.0)
            if gemma and ("post_attention" in name or "post_feedforward" in name):
                v += 2.0  # gain 3 on each normalised block output: blocks outweigh the embedding
        elif "embed_tokens" in name:
            # Gemma multiplies embeddings by sqrt(hidden) and normalises every block output, so
            # a unit-variance table would drown the blocks (greedy then copies the last token).
            v = rng.normal(0.0, 1.0 / math.sqrt(shape[-1]) if gemma else 1.0, shape)
        elif name.endswith(".bias"):
            v = rng.normal(0.0, 0.5, shape)
        elif name == "lm_head.weight":
            v = rng.normal(0.0, 1.0, shape)
        else:
            fan_in = shape[-1]
            gain = 1.0
            if any(s in name for s in ("q_proj", "k_proj", "qkv_proj")):
                gain = 2.0  # peaked attention
            elif any(s in name for s in ("o_proj", "down_proj")):
                gain = 4.0  # blocks outweigh the residual embedding (else: copy the last token)
            if name.endswith("mlp.gate.weight"):
                gain = 3.0  # router: make expert choice decisive
            v = rng.normal(0.0, gain / math.sqrt(fan_in), shape)
        new.append((name, mx.array(v.astype(np.float32))))
    model.update(tree_unflatten(new))


def build(family, seed):
    from mlx_lm.utils import quantize_model

    module, cfg = FAMILIES[family]
    arch = __import__(f"mlx_lm.models.{module}", fromlist=["Model", "ModelArgs"])
    cfg = json.loads(json.dumps(cfg))
    model = arch.Model(arch.ModelArgs.from_dict(cfg))
    random_params(model, cfg, np.random.default_rng(seed))
    if not cfg.get("tie_word_embeddings", False) and family == "gemma3_text":
        raise SystemExit("gemma3 fixtures are tied")
    if family == "gemma3_text":
        model.pop("lm_head")
        model.tie_word_embeddings = True
    model.set_dtype(mx.bfloat16)
    mx.eval(model.parameters())
    return model, cfg, quantize_model


def save(model, cfg, path):
    from mlx_lm.utils import save_config, save_model

    if path.exists():
        shutil.rmtree(path)
    save_model(path, model)
    save_config(dict(cfg), path / "config.json")


def load(path):
    from mlx_lm.utils import load_model

    model, _ = load_model(path)
    return model


def upcast(model):
    """The float32 reference: every floating parameter (weights, quantization scales/biases)
    upcast to float32; packed quantized weights stay as they are."""
    model.update(
        tree_map(
            lambda p: p.astype(mx.float32) if mx.issubdtype(p.dtype, mx.floating) else p,
            model.parameters(),
        )
    )
    mx.eval(model.parameters())
    return model


def greedy_cached(model, prompt):
    """Greedy continuation through mlx_lm.generate.generate_step (its own KV cache, prefill of
    prompt[:-1] then the last token). Returns tokens and the top1-top2 margin per step."""
    from mlx_lm.generate import generate_step
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    tokens, margins = [], []
    for tok, logprobs in generate_step(
        mx.array(prompt), model, max_tokens=GEN_TOKENS, prompt_cache=cache
    ):
        lp = np.array(logprobs.astype(mx.float32))
        top2 = np.sort(lp)[-2:]
        tokens.append(int(tok))
        margins.append(float(top2[1] - top2[0]))
    return tokens, margins


def full_logits(model, seq):
    """Uncached forward over the whole sequence: float32 numpy [L, vocab]."""
    out = model(mx.array(seq)[None])
    return np.array(out[0].astype(mx.float32))


def topk(row, k=TOP_K):
    # Stable order: by value descending, ties by id ascending.
    ids = sorted(range(len(row)), key=lambda i: (-float(row[i]), i))[:k]
    return ids, [float(row[i]) for i in ids]


def bf16_ulp(x):
    x = abs(x)
    if x == 0:
        return 2.0**-133
    return 2.0 ** (math.floor(math.log2(x)) - 7)


def record(model, prompt):
    tokens, margins = greedy_cached(model, prompt)
    seq = prompt + tokens[:-1]
    logits = full_logits(model, seq)
    uncached = [int(np.argmax(logits[i])) for i in range(len(prompt) - 1, len(seq))]
    per_pos = [topk(logits[i]) for i in range(len(seq))]
    return {
        "tokens": tokens,
        "margins": margins,
        "uncached_tokens": uncached,
        "top_ids": [p[0] for p in per_pos],
        "top_logits": [p[1] for p in per_pos],
        "max_abs_logit": float(np.abs(logits).max()),
        "_logits": logits,
    }


def accept(native, f32):
    """Why a seed is rejected (None = accepted)."""
    for n, f in zip(native, f32):
        if n is None:
            n = f
        if n["tokens"] != n["uncached_tokens"]:
            return "cached != uncached greedy"
        if f["tokens"] != n["tokens"]:
            return "float32 upcast greedy differs"
        if f["tokens"] != f["uncached_tokens"]:
            return "float32 cached != uncached"
        if len(set(n["tokens"])) < 3:
            return "degenerate continuation"
        for step, (mn, mf) in enumerate(zip(n["margins"], f["margins"])):
            top = max(abs(v) for v in n["top_logits"][len(n["top_ids"]) - GEN_TOKENS + step])
            need = 2 * bf16_ulp(top)
            if mn < need or mf < need:
                return f"margin {min(mn, mf):.4f} < {need:.4f} at step {step}"
    return None


def variant(family, quant):
    seed0 = family_seed(family) + (500 if quant else 0)
    last_reason = None
    for seed in range(seed0, seed0 + SEED_TRIES):
        model, cfg, quantize_model = build(family, seed)
        if quant:
            model, cfg = quantize_model(model, cfg, GROUP_SIZE, BITS)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m"
            save(model, cfg, path)
            f32 = [record(upcast(load(path)), p) for p in PROMPTS]
            try:
                native_model = load(path)
                native = [record(native_model, p) for p in PROMPTS]
                native_error = None
            except RuntimeError as e:
                # e.g. MoE: MLX's CPU GatherMM only runs float32, so mlx-lm cannot run a bf16
                # MoE checkpoint as saved on this device. The fixture then has only the f32 record.
                native, native_error = [None] * len(PROMPTS), str(e)
            reason = accept(native, f32)
            if reason is not None:
                last_reason = reason
                continue
            out = OUT / f"{family}-{'q4' if quant else 'bf16'}"
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(path, out)
        # bf16 vs f32 logit gap seen by mlx-lm itself: documents the tolerance the Rust test needs.
        gap = max(
            (float(np.abs(n["_logits"] - f["_logits"]).max()) for n, f in zip(native, f32) if n),
            default=None,
        )
        for r in native + f32:
            if r:
                del r["_logits"]
        golden = {
            "format": FORMAT_VERSION,
            "generator": "scripts/parity/make_fixtures.py",
            "versions": {"mlx": mx.__version__, "mlx-lm": mlx_lm_version()},
            "family": family,
            "variant": "q4" if quant else "bf16",
            "architecture": cfg["architectures"][0],
            "model_type": cfg["model_type"],
            "weights_dtype": "bfloat16",
            "quantization": {"group_size": GROUP_SIZE, "bits": BITS} if quant else None,
            "seed": seed,
            "top_k": TOP_K,
            "gen_tokens": GEN_TOKENS,
            "max_abs_diff_native_vs_f32": gap,
            "native_unavailable": native_error,
            "prompts": [
                {"prompt": p, "native": n, "f32": f}
                for p, n, f in zip(PROMPTS, native, f32)
            ],
        }
        with open(out / "golden.json", "w") as fh:
            json.dump(golden, fh, indent=1)
            fh.write("\n")
        size = sum(f.stat().st_size for f in out.iterdir())
        print(
            f"{out.name}: seed {seed}, tokens {[f['tokens'] for f in f32]}, "
            f"min margin {min(min(n['margins']) for n in (native if native[0] else f32)):.3f}, "
            f"bf16-vs-f32 gap {gap}, {size // 1024} KiB"
            + (f" (no native record: {native_error})" if native_error else "")
        )
        return
    raise SystemExit(f"{family}: no acceptable seed in {SEED_TRIES} tries ({last_reason})")


def mlx_lm_version():
    import mlx_lm

    return mlx_lm.__version__


def check_versions():
    got = {"mlx": mx.__version__, "mlx-lm": mlx_lm_version()}
    if got != PINNED:
        raise SystemExit(f"pinned {PINNED}, found {got}: install the pinned versions")


def shim_gather_qmm():
    """mlx-lm 0.32.2's QuantizedSwitchLinear (MoE experts) passes `global_scale=` to
    mx.gather_qmm, which mlx 0.32.2 does not accept. Drop the argument when it is None (always,
    for affine quantization): same kernel, same math, just the call mlx 0.32.2 understands."""
    original = mx.gather_qmm

    def gather_qmm(*args, global_scale=None, **kwargs):
        if global_scale is not None:
            raise NotImplementedError("global_scale needs a newer mlx")
        return original(*args, **kwargs)

    mx.gather_qmm = gather_qmm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", choices=sorted(FAMILIES), help="families to regenerate")
    args = ap.parse_args()
    check_versions()
    shim_gather_qmm()
    mx.set_default_device(mx.cpu)
    for family in args.only or sorted(FAMILIES):
        for quant in (False, True):
            variant(family, quant)


if __name__ == "__main__":
    sys.exit(main())
