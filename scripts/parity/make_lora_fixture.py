#!/usr/bin/env python3
"""Generate the LoRA parity fixture used by backends/mlx/models/tests/lora.rs.

Builds a LoRA adapter for the tiny `llama-bf16` fixture with mlx-lm's own
`mlx_lm.tuner.utils.linear_to_lora_layers` (rank 4, scale 2.0, every Linear of both blocks),
fills `lora_a` / `lora_b` with random NON-zero values (a freshly initialised adapter has
`lora_b = 0` and would change nothing), saves it in mlx-lm's adapter format
(`adapter_config.json` + `adapters.safetensors` holding the trainable `lora_a` / `lora_b`
tensors, as `mlx_lm.lora` writes them), and records what mlx-lm computes with the adapter
loaded the way `mlx_lm.load(base, adapter_path=...)` does it (`load_model`, then
`load_adapters`, then `eval()`; `mlx_lm.load` itself also wants a tokenizer, which the
fixture has none of).

Output: `backends/mlx/models/tests/fixtures/llama-lora/`:
- `config.json`, `model.safetensors`, `model.safetensors.index.json`: relative symlinks to the
  base fixture (the directory is exactly the layout the runner assembles for a model with an
  ADAPTER: base files + `adapters/`);
- `adapters/adapter_config.json`, `adapters/adapters.safetensors`;
- `golden.json` in the format of make_fixtures.py (family `llama`, variant `lora`).

The script asserts that the adapted greedy continuation differs from the base golden's for
every prompt (otherwise the test could not tell an ignored adapter from an applied one).

    /tmp/refenv/bin/python scripts/parity/make_lora_fixture.py
"""

import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (shared recording helpers, pinned versions)

RANK = 4
SCALE = 2.0
NUM_LAYERS = 2
FIRST_SEED = 7000
SEED_TRIES = 200

BASE = mf.OUT / "llama-bf16"
OUT = mf.OUT / "llama-lora"


def adapter_config():
    # What mlx_lm.lora saves, minus the training-only fields (the loader reads only these).
    return {
        "fine_tune_type": "lora",
        "num_layers": NUM_LAYERS,
        "lora_parameters": {"rank": RANK, "scale": SCALE, "dropout": 0.0},
    }


def make_adapter(seed, path):
    """LoRA layers from mlx-lm, random non-zero lora_a / lora_b, saved as mlx-lm saves them."""
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model = mf.load(BASE)
    model.freeze()
    cfg = adapter_config()
    linear_to_lora_layers(model, cfg["num_layers"], cfg["lora_parameters"])
    rng = np.random.default_rng(seed)
    new = []
    for name, p in tree_flatten(model.trainable_parameters()):
        if name.endswith(".lora_a"):
            bound = 1.0 / math.sqrt(p.shape[0])  # mlx-lm's own init range for lora_a
            v = rng.uniform(-bound, bound, p.shape)
        elif name.endswith(".lora_b"):
            v = rng.normal(0.0, 0.5 / math.sqrt(p.shape[0]), p.shape)
        else:
            raise SystemExit(f"unexpected trainable parameter {name}")
        new.append((name, mx.array(v.astype(np.float32))))
    model.update(tree_unflatten(new))
    path.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(
        str(path / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters()))
    )
    with open(path / "adapter_config.json", "w") as fh:
        json.dump(cfg, fh, indent=4)
        fh.write("\n")
    return len(new)


def load_adapted(adapter_path):
    """What mlx_lm.load(BASE, adapter_path=...) builds (minus the tokenizer)."""
    from mlx_lm.tuner.utils import load_adapters

    model = mf.load(BASE)
    model = load_adapters(model, str(adapter_path))
    model.eval()
    return model


def main():
    mf.check_versions()
    mx.set_default_device(mx.cpu)
    base = json.loads((BASE / "golden.json").read_text())
    base_tokens = [p["f32"]["tokens"] for p in base["prompts"]]
    last = None
    for seed in range(FIRST_SEED, FIRST_SEED + SEED_TRIES):
        with tempfile.TemporaryDirectory() as tmp:
            adir = Path(tmp) / "adapters"
            n = make_adapter(seed, adir)
            f32 = [mf.record(mf.upcast(load_adapted(adir)), p) for p in mf.PROMPTS]
            native_model = load_adapted(adir)
            native = [mf.record(native_model, p) for p in mf.PROMPTS]
            reason = mf.accept(native, f32)
            if reason is None and any(
                f["tokens"] == b for f, b in zip(f32, base_tokens)
            ):
                reason = "adapter does not change the greedy continuation"
            if reason is not None:
                last = reason
                continue
            if OUT.exists():
                shutil.rmtree(OUT)
            OUT.mkdir(parents=True)
            for f in ("config.json", "model.safetensors", "model.safetensors.index.json"):
                os.symlink(os.path.join("..", BASE.name, f), OUT / f)
            shutil.copytree(adir, OUT / "adapters")
        gap = max(float(np.abs(a["_logits"] - b["_logits"]).max()) for a, b in zip(native, f32))
        for r in native + f32:
            del r["_logits"]
        for f, b in zip(f32, base_tokens):
            assert f["tokens"] != b, "the adapted record must differ from the base model's"
        golden = {
            "format": mf.FORMAT_VERSION,
            "generator": "scripts/parity/make_lora_fixture.py",
            "versions": {"mlx": mx.__version__, "mlx-lm": mf.mlx_lm_version()},
            "family": "llama",
            "variant": "lora",
            "architecture": base["architecture"],
            "model_type": base["model_type"],
            "weights_dtype": "bfloat16",
            "quantization": None,
            "base": BASE.name,
            "adapter": dict(adapter_config(), lora_tensors=n),
            "seed": seed,
            "top_k": mf.TOP_K,
            "gen_tokens": mf.GEN_TOKENS,
            "max_abs_diff_native_vs_f32": gap,
            "native_unavailable": None,
            "prompts": [
                {"prompt": p, "native": nr, "f32": fr}
                for p, nr, fr in zip(mf.PROMPTS, native, f32)
            ],
        }
        with open(OUT / "golden.json", "w") as fh:
            json.dump(golden, fh, indent=1)
            fh.write("\n")
        print(
            f"{OUT.name}: seed {seed}, {n} lora tensors, tokens {[f['tokens'] for f in f32]} "
            f"(base {base_tokens}), bf16-vs-f32 gap {gap}"
        )
        return
    raise SystemExit(f"no acceptable adapter seed in {SEED_TRIES} tries ({last})")


if __name__ == "__main__":
    sys.exit(main())
