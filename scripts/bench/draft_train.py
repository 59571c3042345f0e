#!/usr/bin/env python3
"""Distil a small same-family draft model from a target MLX checkpoint (for speculative decoding).

The draft is the target's own architecture cut to a few layers: it shares the target's
tokenizer and (frozen, tied) token embeddings, starts from copies of chosen target layers, and
its layers and final norm are trained to predict the target's greedy tokens on the data
written by `draft_data.py` (cross-entropy on the output positions only). The result is saved as
an mlx-community style checkpoint (affine quantized, so ollmlx keeps packed twins of it on the
CPU), loadable by ollmlx (`FROM dir` or Modelfile `DRAFT dir`) and by mlx-lm.

    python3 draft_train.py TARGET_DIR DATA.jsonl OUT_DIR [--init-layers 0,1,29] [--epochs 3]
        [--lr 1e-3] [--batch 4] [--vocab N] [--bits 8] [--group 32]

Prints the held-out greedy agreement (the share of output positions where the draft's argmax
is the target's token: roughly the per-token acceptance of greedy speculative decoding) before
training, after each epoch, and after quantization.
"""

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten
from mlx_lm import load
from mlx_lm.models.llama import Model, ModelArgs


def batches(records, batch, rng=None, vocab=None):
    order = sorted(range(len(records)), key=lambda i: len(records[i]["ids"]))
    groups = [order[i:i + batch] for i in range(0, len(order), batch)]
    if rng is not None:
        rng.shuffle(groups)
    for g in groups:
        width = max(len(records[i]["ids"]) for i in g) - 1
        x, y, m = [], [], []
        for i in g:
            ids, p = records[i]["ids"], records[i]["prompt_len"]
            n = len(ids) - 1
            if vocab is not None:
                # as the engine feeds a draft with a smaller vocabulary: ids past its end
                # become its last id; they cannot be predicted, so they carry no loss
                ids = [min(t, vocab - 1) for t in ids]
                p_ok = [t < vocab for t in records[i]["ids"]]
            else:
                p_ok = [True] * len(ids)
            x.append(ids[:-1] + [0] * (width - n))
            y.append(ids[1:] + [0] * (width - n))
            # position t predicts ids[t + 1]: count only the output tokens (t + 1 >= p)
            m.append([1.0 if p - 1 <= t < n and p_ok[t + 1] else 0.0 for t in range(width)])
        yield mx.array(x), mx.array(y), mx.array(m)


def loss_fn(model, x, y, m):
    ce = nn.losses.cross_entropy(model(x), y) * m
    return ce.sum() / m.sum()


def agreement(model, records, vocab=None):
    """Share of output positions where the draft's argmax is the target's token (a token the
    draft's vocabulary lacks counts as a miss)."""
    hit = total = 0
    for x, y, m in batches(records, 8, vocab=vocab):
        pred = mx.argmax(model(x), axis=-1)
        hit += ((pred == y) * m).sum().item()
    total = sum(len(r["ids"]) - r["prompt_len"] for r in records)
    return hit / max(total, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--init-layers", default="0,1,29")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--group", type=int, default=32)
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--vocab", type=int, default=None,
                    help="keep only the first VOCAB token ids (a smaller output head)")
    a = ap.parse_args()

    mx.random.seed(0)
    rng = random.Random(0)
    records = [json.loads(line) for line in open(a.data)]
    records = [r for r in records if len(r["ids"]) > r["prompt_len"] + 1]
    rng.shuffle(records)
    n_hold = max(1, int(len(records) * a.holdout))
    held, train = records[:n_hold], records[n_hold:]
    print(f"{len(train)} training and {len(held)} held-out sequences, "
          f"{sum(len(r['ids']) - r['prompt_len'] for r in train)} training output tokens")

    target, _ = load(a.target)
    config = json.loads((Path(a.target) / "config.json").read_text())
    init = [int(s) for s in a.init_layers.split(",")]
    config["num_hidden_layers"] = len(init)
    vocab = a.vocab
    if vocab is not None:
        config["vocab_size"] = vocab
    draft = Model(ModelArgs.from_dict(config))
    embed = target.model.embed_tokens.weight
    draft.model.embed_tokens.weight = embed if vocab is None else embed[:vocab]
    for i, src in enumerate(init):
        draft.model.layers[i].update(target.model.layers[src].parameters())
    draft.model.norm.update(target.model.norm.parameters())
    del target
    draft.model.embed_tokens.freeze()
    mx.eval(draft.parameters())
    print(f"draft: layers {init} of the target, held-out agreement before training "
          f"{agreement(draft, held, vocab):.3f}", flush=True)

    steps = a.epochs * ((len(train) + a.batch - 1) // a.batch)
    sched = optim.cosine_decay(a.lr, steps, a.lr * 0.05)
    opt = optim.AdamW(learning_rate=sched, weight_decay=0.0)
    step = nn.value_and_grad(draft, loss_fn)
    for epoch in range(a.epochs):
        t0, total, count = time.time(), 0.0, 0
        for x, y, m in batches(train, a.batch, rng, vocab):
            loss, grads = step(draft, x, y, m)
            opt.update(draft, grads)
            mx.eval(draft.parameters(), opt.state, loss)
            total += loss.item()
            count += 1
        print(f"epoch {epoch + 1}: train loss {total / count:.3f}, held-out agreement "
              f"{agreement(draft, held, vocab):.3f} ({time.time() - t0:.0f} s)", flush=True)

    nn.quantize(draft, group_size=a.group, bits=a.bits)
    mx.eval(draft.parameters())
    print(f"after {a.bits}-bit quantization (group {a.group}): held-out agreement "
          f"{agreement(draft, held, vocab):.3f}")

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out / "model.safetensors"), dict(tree_flatten(draft.parameters())),
                        metadata={"format": "mlx"})
    config["quantization"] = {"group_size": a.group, "bits": a.bits}
    config["quantization_config"] = config["quantization"]
    config["torch_dtype"] = "float32"
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                 "special_tokens_map.json", "generation_config.json"]:
        if (Path(a.target) / name).exists():
            shutil.copy(Path(a.target) / name, out / name)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
