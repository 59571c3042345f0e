#!/usr/bin/env python3
"""A/B of the BLAS shim's small-M kernel (OLLMLX_BLAS_SMALL_M=0 turns it off) on batched decode.

scripts/bench/ab_blas.py OLLMLX_BINARY GGUF [ROUNDS]: starts `ollmlx serve` (OLLAMA_NUM_PARALLEL=8)
with the kernel on and off in alternating order, sends 1, 4 and 8 concurrent /api/generate
requests of 64 tokens at temperature 0, prints aggregate tok/s (generated tokens / wall) and
whether the greedy texts were identical. Python stdlib only; see docs/performance.md §2.1."""
import json, os, shutil, subprocess, sys, threading, time, urllib.request, tempfile
BIN = sys.argv[1]; GGUF = sys.argv[2]; ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
def post(port, path, body):
    r = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(r, timeout=600).read())
def run(env_extra, streams, port):
    d = tempfile.mkdtemp()
    env = dict(os.environ, OLLAMA_MODELS=d, OLLAMA_HOST=f"127.0.0.1:{port}", OLLAMA_NUM_PARALLEL="8", OPENBLAS_NUM_THREADS="2", **env_extra)
    p = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1); break
            except Exception: time.sleep(0.2)
        open(d + "/Modelfile", "w").write(f"FROM {GGUF}\n")
        subprocess.run([BIN, "create", "m", "-f", d + "/Modelfile"], env=env, check=True, capture_output=True)
        post(port, "/api/generate", {"model": "m", "prompt": "hi", "stream": False, "options": {"num_predict": 2}})
        res = {}
        for n in streams:
            out = [None] * n
            def go(i):
                out[i] = post(port, "/api/generate", {"model": "m", "prompt": f"Tell me story number {i} about a {['cat','dog','fox','owl','bee','cow','elk','ant'][i]}.", "stream": False, "options": {"num_predict": 64, "temperature": 0}})
            t = time.perf_counter(); ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
            [x.start() for x in ts]; [x.join() for x in ts]; wall = time.perf_counter() - t
            res[n] = (sum(o["eval_count"] for o in out) / wall, [o["response"] for o in out])
        return res
    finally:
        p.terminate(); p.wait()
        shutil.rmtree(d, ignore_errors=True)
for r in range(ROUNDS):
    for name, env in ([("small-M on", {}), ("small-M off", {"OLLMLX_BLAS_SMALL_M": "0"})] if r % 2 == 0 else [("small-M off", {"OLLMLX_BLAS_SMALL_M": "0"}), ("small-M on", {})]):
        res = run(env, [1, 4, 8], 11700 + r)
        print(f"round {r} {name}: " + "  ".join(f"{n} streams {v[0]:.2f} tok/s" for n, v in res.items()), flush=True)
        if name == "small-M on": on_text = res
        else: off_text = res
    print("  same greedy text on/off:", all(on_text[n][1] == off_text[n][1] for n in on_text), flush=True)
