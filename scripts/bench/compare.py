#!/usr/bin/env python3
"""Side-by-side benchmark driver: ollmlx vs mlx-lm (in-process and mlx_lm.server) vs llama.cpp.

Started by scripts/bench/compare.sh, which builds/starts the servers and sets the environment.
Nothing here is used by ollmlx at run time.

Engines
- ollmlx:        a running `ollmlx serve` (native /api/generate, raw prompt, streamed).
- mlx_lm.server: a running `mlx_lm.server` (/v1/completions, streamed).
- mlx-lm:        `mlx_lm.stream_generate` in a worker process (this file, `worker mlxlm`).
- llama.cpp:     llama-cpp-python in a worker process (`worker llamacpp`), same GGUF.
Workers keep their model loaded and read one JSON job per line on stdin, so the driver can
interleave engines run by run: each round runs every workload on every engine, in a rotated
order, and the report takes medians over rounds.

Every figure is measured the same way for every engine, client-side:
  ttft        = time from sending the request to the first generated text
  prefill tps = prompt tokens / ttft   (includes one decode step; long prompts dominate)
  decode tps  = (output tokens - 1) / (time of last token - time of first token)
The engines' own counters are kept next to them (`server_*`) where an engine reports them.

Usage: compare.py run --out results.json [--rounds 3] ...   (see compare.sh)
       compare.py worker mlxlm|llamacpp MODEL [THREADS]
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

WORDS = ("the quick brown fox jumps over a lazy dog while birds sing in green trees and rivers "
         "run to sea under blue sky at noon people walk home from work with friends").split()


def prompt(tokens, tag):
    """About `tokens` tokens of common words. Two capitalised words spelling `tag` come first,
    so consecutive runs never share a prefix (a prefix cache would skip their prefill); no
    digits, whose pre-tokenization differs between tokenizer implementations."""
    n = len(WORDS)
    out = [WORDS[tag % n].capitalize(), WORDS[(tag // n) % n].capitalize()]
    for i in range(max(tokens - 2, 0)):
        out.append(WORDS[(i * 7 + tag) % n])
    return " ".join(out)


def rates(n_prompt, n_out, t0, t_first, t_last):
    ttft = (t_first - t0) if t_first else None
    r = {"prompt_tokens": n_prompt, "output_tokens": n_out, "ttft_ms": ttft * 1e3 if ttft else None}
    r["prefill_tps"] = n_prompt / ttft if ttft and n_prompt else None
    span = (t_last - t_first) if t_first and t_last else 0
    r["decode_tps"] = (n_out - 1) / span if n_out > 1 and span > 0 else None
    return r


# ---------------------------------------------------------------- HTTP engines

def post_stream(base, path, body):
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"{base}{path}: {resp.status} {resp.read()[:300]!r}")
    return conn, resp


def ollmlx_job(base, model, text, max_tokens, seed):
    t0 = time.perf_counter()
    conn, resp = post_stream(base, "/api/generate", {
        "model": model, "prompt": text, "raw": True, "stream": True,
        "options": {"temperature": 0, "seed": seed, "num_predict": max_tokens, "num_ctx": 4096},
    })
    t_first = t_last = None
    final = {}
    for line in resp:
        if not line.strip():
            continue
        obj = json.loads(line)
        if "error" in obj:
            raise RuntimeError(obj["error"])
        if obj.get("response"):
            now = time.perf_counter()
            t_first = t_first or now
            t_last = now
        if obj.get("done"):
            final = obj
    conn.close()
    r = rates(final.get("prompt_eval_count", 0), final.get("eval_count", 0), t0, t_first, t_last)
    ns = lambda k: final.get(k, 0) / 1e9
    if final.get("prompt_eval_duration"):
        r["server_prefill_tps"] = final["prompt_eval_count"] / ns("prompt_eval_duration")
    if final.get("eval_duration") and final.get("eval_count"):
        r["server_decode_tps"] = final["eval_count"] / ns("eval_duration")
    return r


def mlxserver_job(base, model, text, max_tokens, seed):
    t0 = time.perf_counter()
    conn, resp = post_stream(base, "/v1/completions", {
        "model": model, "prompt": text, "max_tokens": max_tokens, "temperature": 0.0,
        "seed": seed, "stream": True, "stream_options": {"include_usage": True},
    })
    t_first = t_last = None
    chunks = 0
    usage = {}
    for line in resp:
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        obj = json.loads(data)
        if obj.get("usage"):
            usage = obj["usage"]
        for ch in obj.get("choices", []):
            if ch.get("text"):
                now = time.perf_counter()
                t_first = t_first or now
                t_last = now
                chunks += 1
    conn.close()
    n_out = usage.get("completion_tokens", chunks)
    return rates(usage.get("prompt_tokens", 0), n_out, t0, t_first, t_last)


# ---------------------------------------------------------------- in-process workers

def worker(kind, model, threads):
    if kind == "mlxlm":
        import mlx.core as mx
        from mlx_lm import load, stream_generate
        from mlx_lm.sample_utils import make_sampler
        # The CPU comparison pins mlx-lm to the CPU; cuda.sh sets COMPARE_MLX_DEVICE=gpu.
        dev = os.environ.get("COMPARE_MLX_DEVICE", "cpu")
        mx.set_default_device(mx.gpu if dev == "gpu" else mx.cpu)
        m, tok = load(model)
        sampler = make_sampler(temp=0.0)

        def job(text, max_tokens, seed):
            mx.random.seed(seed)
            ids = tok.encode(text, add_special_tokens=False)
            t0 = time.perf_counter()
            t_first = t_last = None
            n = 0
            last = None
            for resp in stream_generate(m, tok, ids, max_tokens=max_tokens, sampler=sampler):
                now = time.perf_counter()
                t_first = t_first or now
                t_last = now
                n += 1
                last = resp
            r = rates(len(ids), n, t0, t_first, t_last)
            if last is not None:
                r["server_prefill_tps"] = last.prompt_tps
                r["server_decode_tps"] = last.generation_tps
            return r
        info = {"mlx": mx.__version__, "device": str(mx.default_device())}
    elif kind == "llamacpp":
        import llama_cpp
        llm = llama_cpp.Llama(model_path=model, n_threads=threads, n_threads_batch=threads,
                              n_ctx=4096, n_batch=512, verbose=False, seed=42)

        def job(text, max_tokens, seed):
            llm.reset()  # no prompt-cache reuse between runs
            ids = llm.tokenize(text.encode(), add_bos=False, special=False)
            t0 = time.perf_counter()
            t_first = t_last = None
            n = 0
            for _ in llm.create_completion(ids, max_tokens=max_tokens, temperature=0.0,
                                           top_k=1, seed=seed, stream=True):
                now = time.perf_counter()
                t_first = t_first or now
                t_last = now
                n += 1
            return rates(len(ids), n, t0, t_first, t_last)
        info = {"llama_cpp_python": llama_cpp.__version__}
    else:
        raise SystemExit(f"unknown worker {kind}")
    print(json.dumps({"ready": True, **info}), flush=True)
    for line in sys.stdin:
        spec = json.loads(line)
        try:
            out = job(spec["prompt"], spec["max_tokens"], spec["seed"])
        except Exception as e:  # report, keep serving
            out = {"error": repr(e)}
        print(json.dumps(out), flush=True)


class Worker:
    def __init__(self, kind, model, threads, env):
        self.p = subprocess.Popen([sys.executable, __file__, "worker", kind, model, str(threads)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = json.loads(self.p.stdout.readline())

    def __call__(self, text, max_tokens, seed):
        self.p.stdin.write(json.dumps({"prompt": text, "max_tokens": max_tokens, "seed": seed}) + "\n")
        self.p.stdin.flush()
        out = json.loads(self.p.stdout.readline())
        if "error" in out:
            raise RuntimeError(out["error"])
        return out

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


# ---------------------------------------------------------------- driver

def concurrent(job, n, tokens, max_tokens, seed, tag0):
    results, errors = [None] * n, []

    def one(i):
        try:
            results[i] = job(prompt(tokens, tag0 + i), max_tokens, seed)
        except Exception as e:
            errors.append(e)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    total = sum(r["output_tokens"] for r in results)
    ttfts = [r["ttft_ms"] for r in results if r["ttft_ms"] is not None]
    return {"streams": n, "output_tokens": total, "wall_s": wall, "aggregate_tps": total / wall,
            "ttft_p50_ms": statistics.median(ttfts) if ttfts else None, "per_stream": results}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run(a):
    env_blas = dict(os.environ)
    engines = {}
    if a.ollmlx:
        engines["ollmlx"] = lambda t, n, s: ollmlx_job(a.ollmlx, a.ollmlx_model, t, n, s)
    if a.ollmlx_base:
        engines["ollmlx-base"] = lambda t, n, s: ollmlx_job(a.ollmlx_base, a.ollmlx_model, t, n, s)
    if a.mlx_server:
        engines["mlx_lm.server"] = lambda t, n, s: mlxserver_job(a.mlx_server, a.mlx_model, t, n, s)
    workers = []
    if a.mlx_model and not a.no_inproc:
        w = Worker("mlxlm", a.mlx_model, a.threads, env_blas)
        workers.append(w)
        engines["mlx-lm"] = w
        if a.mlx_default_blas:
            env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
            w2 = Worker("mlxlm", a.mlx_model, a.threads, env)
            workers.append(w2)
            engines["mlx-lm (bundled BLAS)"] = w2
    if a.gguf and a.llamacpp:
        w = Worker("llamacpp", a.gguf, a.threads, env_blas)
        workers.append(w)
        engines["llama.cpp"] = w
    info = {w_name: getattr(e, "info", {}) for w_name, e in engines.items()}
    workloads = [(f"prefill-{p}", p, 1) for p in a.prefill] + [(f"decode-{a.decode}", 16, a.decode)]
    names = list(engines)
    results = {n: {w[0]: [] for w in workloads} for n in names}
    tag = a.tag
    # Warm-up: one short run each (loads models, JIT paths).
    for n in names:
        engines[n](prompt(8, tag), 2, a.seed)
        tag += 1
    for rnd in range(a.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for wname, ptoks, max_tokens in workloads:
            for n in order:
                if "bundled" in n and ptoks > 64:
                    continue  # ~2.5 tok/s prefill: a 512-token prompt would take minutes
                r = engines[n](prompt(ptoks, tag), max_tokens, a.seed)
                tag += 1
                results[n][wname].append(r)
                print(f"round {rnd + 1} {wname:12s} {n:22s} ttft {r['ttft_ms'] or 0:8.0f} ms  "
                      f"prefill {r['prefill_tps'] or 0:7.1f}  decode {r['decode_tps'] or 0:6.2f} tok/s",
                      file=sys.stderr, flush=True)
    servers = [x for x in names if x in ("ollmlx", "ollmlx-base", "mlx_lm.server")]
    if a.warm_streams:
        # Untimed: the first batch of each size compiles kernels on a GPU (MLX's JIT, whose
        # disk cache the servers share, so without this whoever runs a size first pays).
        for n in servers:
            for c in sorted({c for c in a.concurrency if c <= a.warm_streams} | {a.warm_streams}):
                concurrent(engines[n], c, 32, a.stream_tokens, a.seed, tag)
                tag += c
    conc = {n: [] for n in servers}
    for i, c in enumerate(a.concurrency if servers else []):
        # Rotated like the rounds above, so no server always goes first.
        k = i % len(servers)
        for n in servers[k:] + servers[:k]:
            r = concurrent(engines[n], c, 32, a.stream_tokens, a.seed, tag)
            tag += c
            conc[n].append(r)
            print(f"concurrency {c} {n:22s} aggregate {r['aggregate_tps']:6.2f} tok/s  "
                  f"ttft p50 {r['ttft_p50_ms'] or 0:8.0f} ms", file=sys.stderr, flush=True)
    for w in workers:
        w.close()
    summary = {}
    for n in names:
        summary[n] = {}
        for wname, _, _ in workloads:
            rs = results[n][wname]
            if not rs:
                continue
            summary[n][wname] = {k: med([r.get(k) for r in rs]) for k in
                                 ("prompt_tokens", "output_tokens", "ttft_ms", "prefill_tps", "decode_tps",
                                  "server_prefill_tps", "server_decode_tps")}
    out = {"info": info, "settings": vars(a), "summary": summary, "concurrency": conc, "runs": results}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=2)
    print(markdown(out, workloads, a.baseline))


def markdown(out, workloads, base):
    s = out["summary"]
    lines = ["| engine | workload | prompt tok | out tok | TTFT ms | prefill tok/s | decode tok/s | "
             "ollmlx ÷ engine (prefill / decode / TTFT) |", "|---|---|---|---|---|---|---|---|"]
    f = lambda v, p=1: "-" if v is None else f"{v:.{p}f}"
    for n in s:
        for wname, _, _ in workloads:
            if wname not in s[n]:
                continue
            r = s[n][wname]
            o = s.get(base, {}).get(wname, {})
            ratio = lambda k: (f"{o[k] / r[k]:.2f}" if o.get(k) and r.get(k) else "-")
            rat = "" if n == base else f"{ratio('prefill_tps')} / {ratio('decode_tps')} / {ratio('ttft_ms')}"
            lines.append(f"| {n} | {wname} | {f(r['prompt_tokens'], 0)} | {f(r['output_tokens'], 0)} | "
                         f"{f(r['ttft_ms'], 0)} | {f(r['prefill_tps'])} | {f(r['decode_tps'], 2)} | {rat} |")
    if out["concurrency"]:
        lines += ["", "| engine | streams | aggregate tok/s | TTFT p50 ms | ollmlx ÷ mlx_lm.server |",
                  "|---|---|---|---|---|"]
        ref = {r["streams"]: r for r in out["concurrency"].get("mlx_lm.server", [])}
        for n, rs in out["concurrency"].items():
            for r in rs:
                ratio = "-"
                if n == base and r["streams"] in ref:
                    ratio = f"{r['aggregate_tps'] / ref[r['streams']]['aggregate_tps']:.2f}"
                lines.append(f"| {n} | {r['streams']} | {r['aggregate_tps']:.2f} | {f(r['ttft_p50_ms'], 0)} | {ratio} |")
    return "\n".join(lines)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 2)
        return
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["run"])
    p.add_argument("--out", required=True)
    p.add_argument("--ollmlx", help="ollmlx base URL")
    p.add_argument("--ollmlx-model", default="smollm2")
    p.add_argument("--ollmlx-base", help="a second ollmlx (an A/B baseline build), same model name")
    p.add_argument("--warm-streams", type=int, default=0,
                   help="untimed concurrent warm-up (1, 2 and N streams) before the sweep")
    p.add_argument("--mlx-server", help="mlx_lm.server base URL")
    p.add_argument("--mlx-model", help="MLX checkpoint directory")
    p.add_argument("--gguf")
    p.add_argument("--llamacpp", action="store_true")
    p.add_argument("--no-inproc", action="store_true")
    p.add_argument("--mlx-default-blas", action="store_true",
                   help="also run mlx-lm without LD_PRELOAD (the wheel's bundled reference BLAS)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--prefill", type=int, nargs="+", default=[32, 512])
    p.add_argument("--decode", type=int, default=64)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--stream-tokens", type=int, default=24)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--tag", type=int, default=1000,
                   help="first prompt tag: runs against one server with different tags share no prefix")
    p.add_argument("--baseline", default="ollmlx")
    run(p.parse_args())


if __name__ == "__main__":
    main()
