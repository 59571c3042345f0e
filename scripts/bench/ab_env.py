#!/usr/bin/env python3
"""A/B of one environment switch of `ollmlx serve` on concurrent greedy generation.

scripts/bench/ab_env.py OLLMLX_BINARY GGUF [ROUNDS]: starts `ollmlx serve` (OLLAMA_NUM_PARALLEL=8)
with and without the switch in alternating order, sends STREAMS concurrent /api/generate
requests of TOKENS tokens at temperature 0, prints aggregate tok/s (generated tokens / wall) and
whether the greedy texts were identical. Environment: AB_OFF (default `OLLMLX_BLAS_SMALL_M=0`, the
shim's small-M kernel off; e.g. `OLLMLX_HOST_MATH=0`), TOKENS (64), STREAMS ("1 4 8").
Python stdlib only; see docs/performance.md §2.1."""
import json, os, shutil, subprocess, sys, threading, time, urllib.request, tempfile
BIN = sys.argv[1]; GGUF = os.path.abspath(sys.argv[2]); ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
OFF_K, _, OFF_V = os.environ.get("AB_OFF", "OLLMLX_BLAS_SMALL_M=0").partition("=")
TOKENS = int(os.environ.get("TOKENS", "64"))
STREAMS = [int(x) for x in os.environ.get("STREAMS", "1 4 8").split()]
def post(port, path, body):
    r = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(r, timeout=600).read())
def run(env_extra, streams, port):
    d = tempfile.mkdtemp()
    env = dict(os.environ, OLLAMA_MODELS=d, OLLAMA_HOST=f"127.0.0.1:{port}", OLLAMA_NUM_PARALLEL="8", OPENBLAS_NUM_THREADS="2", OLLMLX_PROMPT_LOOKUP=os.environ.get("OLLMLX_PROMPT_LOOKUP", "0"), **env_extra)
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
                out[i] = post(port, "/api/generate", {"model": "m", "prompt": f"Tell me story number {i} about a {['cat','dog','fox','owl','bee','cow','elk','ant'][i]}.", "stream": False, "options": {"num_predict": TOKENS, "temperature": 0}})
            t = time.perf_counter(); ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
            [x.start() for x in ts]; [x.join() for x in ts]; wall = time.perf_counter() - t
            res[n] = (sum(o["eval_count"] for o in out) / wall, [o["response"] for o in out])
        return res
    finally:
        p.terminate(); p.wait()
        shutil.rmtree(d, ignore_errors=True)
for r in range(ROUNDS):
    on, off = ("default", {}), (f"{OFF_K}={OFF_V}", {OFF_K: OFF_V})
    for name, env in ([on, off] if r % 2 == 0 else [off, on]):
        res = run(env, STREAMS, 11700 + r)
        print(f"round {r} {name}: " + "  ".join(f"{n} streams {v[0]:.2f} tok/s" for n, v in res.items()), flush=True)
        if name == "default": on_text = res
        else: off_text = res
    print("  same greedy text with and without the switch:", all(on_text[n][1] == off_text[n][1] for n in on_text), flush=True)
