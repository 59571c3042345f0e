#!/usr/bin/env python3
"""Soak test (issue #6): N requests against a real `ollmlx serve`, RSS must stay flat.

Where it sits: outside the server, like any client. It starts `ollmlx serve` on a free loopback
port with a temporary OLLAMA_MODELS, imports the real SmolLM2-135M GGUF and all-MiniLM-L6-v2
with `ollmlx create`, then sends the mix in `mix.py` from a few concurrent client threads while
sampling the server's VmRSS (plus threads and open fds) from /proc. It fails -- exit status 1 --
if any response is wrong, the server dies, the wall-time cap is exceeded, open fds or in-flight
generations do not return to their idle values, or RSS grows after warm-up by more than the bound.

    scripts/soak/soak.py                      # 10,000 requests (the issue's soak)
    SOAK_REQUESTS=2000 scripts/soak/soak.py   # the CI variant (scripts/test.sh)

Environment: OLLMLX_BIN (default target/debug/ollmlx), SOAK_REQUESTS (10000), SOAK_CLIENTS (4),
SOAK_WARMUP (1000), SOAK_SAMPLE_EVERY (200), SOAK_SEED (1), SOAK_UNLOAD_EVERY (1000: unload the
chat model once per this many requests, 0 never), SOAK_PRIME (200: at most this many one-token
requests fill the prefix cache to its byte budget before the clock starts, 0 skips),
SOAK_TIME_CAP_S (default 300 + 0.5 s per request), SOAK_RSS_BOUND_PCT (5) and SOAK_RSS_BOUND_MB
(32): allowed growth is the larger.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mix  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MIB = 1024 * 1024


def env_int(name, default):
    return int(os.environ.get(name, default))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_sample(pid):
    """(VmRSS bytes, threads, open fds) of the server, from /proc."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads, len(os.listdir(f"/proc/{pid}/fd"))


class Server:
    """`ollmlx serve` on a free loopback port with its own model store; always cleaned up."""

    def __init__(self, binary):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="ollmlx-soak-")
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "serve.log")
        self.env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{self.port}",
                        OLLAMA_MODELS=os.path.join(self.dir, "models"),
                        # both models stay resident; unloads are sent on purpose (see mix.py)
                        OLLAMA_MAX_LOADED_MODELS="2",
                        # the safetensors link directory lives (and is removed) with the run
                        OLLMLX_MLX_MODELS_DIR=os.path.join(self.dir, "mlx-models"))
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"ollmlx serve exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("ollmlx serve did not answer within 20 s")

    def create(self, name, source, extra=""):
        mf = os.path.join(self.dir, f"Modelfile.{name.replace(':', '_')}")
        with open(mf, "w") as f:
            f.write(f"FROM {source}\n{extra}")
        subprocess.run([self.binary, "create", name, "-f", mf], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name.split("{")[0]] = float(value)
    return out


def prime_prefix_cache(port, most):
    """Fill the engine's prefix cache to its byte budget before the clock starts: one-token
    generations of unique prompts until the cache evicts (or `most` requests). Afterwards the
    cache's share of RSS is at its bound, so later growth is something else. Returns
    (requests sent, cache bytes, evictions)."""
    m = {}
    for i in range(most):
        body = {"model": mix.GEN_MODEL, "prompt": f"Priming request {i}: say one word.",
                "stream": False, "options": {"num_predict": 1, "temperature": 0}}
        c, resp = mix._send(port, "POST", "/api/generate", body)
        try:
            mix._json(resp)
        finally:
            c.close()
        if i % 8 == 7:
            m = metrics(port)
            if m.get("ollmlx_backend_prefix_cache_evictions_total", 0) > 0:
                return i + 1, m.get("ollmlx_backend_prefix_cache_bytes", 0), 1
    m = metrics(port)
    return (most, m.get("ollmlx_backend_prefix_cache_bytes", 0),
            m.get("ollmlx_backend_prefix_cache_evictions_total", 0))


class Soak:
    def __init__(self, server, cfg):
        self.server = server
        self.cfg = cfg
        self.answers = mix.Answers()
        self.lock = threading.Lock()
        self.next_index = 0
        self.done = 0
        self.counts = {}
        self.failures = []
        self.samples = []  # (requests done, seconds, rss, threads, fds)
        self.stop = threading.Event()
        self.t0 = None
        self.over_time = False

    def sample(self, done):
        rss, threads, fds = proc_sample(self.server.proc.pid)
        try:  # the engine's own account of its prefix-cache snapshots, to attribute RSS
            prefix = metrics(self.server.port).get("ollmlx_backend_prefix_cache_bytes", 0)
        except OSError:
            prefix = float("nan")
        self.samples.append((done, time.monotonic() - self.t0, rss, threads, fds, prefix))
        if os.environ.get("SOAK_VERBOSE"):
            print(f"  sample {done} rss {rss / MIB:.1f} MiB prefix {prefix / MIB:.0f} MiB "
                  f"threads {threads} fds {fds}", flush=True)

    def worker(self):
        port = self.server.port
        while not self.stop.is_set():
            with self.lock:
                i = self.next_index
                if i >= self.cfg["requests"]:
                    return
                self.next_index += 1
            if time.monotonic() - self.t0 > self.cfg["time_cap"]:
                self.over_time = True
                self.stop.set()
                return
            req = mix.pick(i, self.cfg["seed"], self.cfg["unload_every"])
            err = None
            try:
                mix.run_one(port, req, self.answers)
            except mix.Bad as e:
                err = str(e)
            except Exception as e:  # connection refused, reset, timeout, bad JSON...
                err = f"{type(e).__name__}: {e}"
            with self.lock:
                self.counts[req.kind] = self.counts.get(req.kind, 0) + 1
                if err:
                    self.failures.append((i, req.kind, err))
                    print(f"  wrong response #{i} {req.kind}: {err[:300]}", flush=True)
                self.done += 1
                done = self.done
                if done % self.cfg["sample_every"] == 0:
                    if not self.server.alive():
                        self.failures.append((i, "server", "ollmlx serve died"))
                        self.stop.set()
                        return
                    self.sample(done)
            if len(self.failures) > 50:
                self.stop.set()

    def run(self):
        self.t0 = time.monotonic()
        self.sample(0)
        threads = [threading.Thread(target=self.worker, daemon=True)
                   for _ in range(self.cfg["clients"])]
        for t in threads:
            t.start()
        last = 0
        while any(t.is_alive() for t in threads):
            time.sleep(1)
            if self.done - last >= 1000:
                last = self.done - self.done % 1000
                rss = self.samples[-1][2] / MIB
                el = time.monotonic() - self.t0
                print(f"  {self.done:6d} requests  {el:7.1f} s  RSS {rss:7.1f} MiB  "
                      f"wrong {len(self.failures)}", flush=True)
        return time.monotonic() - self.t0


def report(soak, wall, idle_before, idle_after, m):
    cfg = soak.cfg
    ok = True
    print("\nRSS timeline (requests: MiB; threads, fds at start -> end):")
    row = []
    for done, _, rss, _, _, _ in soak.samples:
        row.append(f"{done}:{rss / MIB:.0f}")
        if len(row) == 10:
            print("  " + "  ".join(row))
            row = []
    if row:
        print("  " + "  ".join(row))
    first, last = soak.samples[0], soak.samples[-1]
    print(f"  threads {first[3]} -> {last[3]}, fds {first[4]} -> {last[4]}; engine prefix-cache "
          f"snapshots (from /metrics) by sample, MiB: "
          + " ".join(f"{s[5] / MIB:.0f}" for s in soak.samples[:: max(1, len(soak.samples) // 10)]))
    total = sum(soak.counts.values())
    print(f"\n{total} requests in {wall:.1f} s = {total / wall:.2f} req/s with "
          f"{cfg['clients']} clients; " + ", ".join(f"{k} {v}" for k, v in
                                                  sorted(soak.counts.items())))
    print(f"determinism: {soak.answers.checked} repeats compared against "
          f"{len(soak.answers.texts)} texts and {len(soak.answers.vectors)} embeddings")

    if soak.over_time:
        ok = False
        print(f"FAIL: time cap of {cfg['time_cap']:.0f} s exceeded after {total} requests")
    if soak.failures:
        ok = False
        print(f"FAIL: {len(soak.failures)} wrong responses; first ones:")
        for i, kind, err in soak.failures[:15]:
            print(f"  #{i} {kind}: {err[:400]}")
    after = [s for s in soak.samples if s[0] >= cfg["warmup"]]
    if total < cfg["requests"]:
        ok = False
        print(f"FAIL: only {total} of {cfg['requests']} requests ran")
    elif len(after) >= 2:
        base, end = after[0][2], after[-1][2]
        peak = max(s[2] for s in after)
        bound = max(base * cfg["bound_pct"] / 100, cfg["bound_mb"] * MIB)
        growth = end - base
        n = len(after)
        mx = sum(s[0] for s in after) / n
        my = sum(s[2] for s in after) / n
        var = sum((s[0] - mx) ** 2 for s in after)
        slope = sum((s[0] - mx) * (s[2] - my) for s in after) / var if var else 0.0
        verdict = "ok" if growth <= bound else "FAIL"
        print(f"RSS after warm-up ({after[0][0]} requests): {base / MIB:.1f} MiB; at the end "
              f"({after[-1][0]}): {end / MIB:.1f} MiB; growth {growth / MIB:+.1f} MiB, bound "
              f"{bound / MIB:.1f} MiB ({cfg['bound_pct']}% or {cfg['bound_mb']} MiB) -> {verdict}; "
              f"peak {peak / MIB:.1f} MiB; trend {slope / 1024:+.2f} KiB/request; prefix cache "
              f"{after[0][5] / MIB:.0f} -> {after[-1][5] / MIB:.0f} MiB")
        ok = ok and growth <= bound
    else:
        ok = False
        print("FAIL: not enough RSS samples after warm-up")
    if idle_after is not None:
        print(f"idle fds before the load {idle_before[2]}, after it {idle_after[2]}; idle threads "
              f"{idle_before[1]} -> {idle_after[1]}")
        if idle_after[2] > idle_before[2] + 8:
            ok = False
            print("FAIL: open fds grew while idle (a connection or file leak)")
    if m is not None:
        fl, wt = m.get("ollmlx_generations_in_flight"), m.get("ollmlx_generations_waiting")
        print(f"/metrics when idle: generations in flight {fl}, waiting {wt}, "
              f"started {m.get('ollmlx_generations_total')}, errors "
              f"{m.get('ollmlx_generation_errors_total')}")
        if fl != 0 or wt != 0:
            ok = False
            print("FAIL: generations still in flight after every client is gone")
    return ok


def main():
    n = env_int("SOAK_REQUESTS", 10000)
    cfg = {
        "requests": n,
        "clients": env_int("SOAK_CLIENTS", 4),
        "warmup": env_int("SOAK_WARMUP", 1000),
        "sample_every": env_int("SOAK_SAMPLE_EVERY", 200),
        "seed": env_int("SOAK_SEED", 1),
        "unload_every": env_int("SOAK_UNLOAD_EVERY", 1000),
        "prime": env_int("SOAK_PRIME", 200),
        "time_cap": float(os.environ.get("SOAK_TIME_CAP_S", 300 + 0.5 * n)),
        "bound_pct": float(os.environ.get("SOAK_RSS_BOUND_PCT", 5)),
        "bound_mb": float(os.environ.get("SOAK_RSS_BOUND_MB", 32)),
    }
    binary = os.environ.get("OLLMLX_BIN", os.path.join(ROOT, "target", "debug", "ollmlx"))
    models = os.environ.get("OLLMLX_MODELS_DIR", os.path.join(ROOT, ".ollmlx-cache", "models"))
    gguf = os.path.join(models, "SmolLM2-135M-Instruct.Q4_1.gguf")
    minilm = os.path.join(models, "all-minilm-l6-v2")
    if not (os.path.exists(gguf) and os.path.exists(os.path.join(minilm, "model.safetensors"))):
        subprocess.run([os.path.join(ROOT, "scripts", "fetch-models.sh")], check=True)
    if not os.access(binary, os.X_OK):
        print(f"soak: no server binary at {binary} (set OLLMLX_BIN)")
        return 1

    print(f"soak: {n} requests, {cfg['clients']} clients, warm-up {cfg['warmup']}, "
          f"time cap {cfg['time_cap']:.0f} s, binary {binary}")
    server = Server(binary)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the server
    ok = False
    soak = None
    try:
        server.start()
        server.create(mix.GEN_MODEL, gguf, "PARAMETER temperature 0\n")
        server.create(mix.EMBED_MODEL, minilm)
        print(f"server pid {server.proc.pid} on 127.0.0.1:{server.port}")
        # Load the embedding model before the clock starts (two concurrent first loads of a
        # safetensors model raced before runner.rs made its link directory atomically).
        mix.run_one(server.port, mix.plan_embed(0, mix.random.Random(0)), mix.Answers())
        if cfg["prime"]:
            t = time.monotonic()
            sent, held, ev = prime_prefix_cache(server.port, cfg["prime"])
            print(f"prefix cache primed: {sent} requests in {time.monotonic() - t:.0f} s, "
                  f"{held / MIB:.0f} MiB of snapshots held, evicting: {'yes' if ev else 'no'}")
        time.sleep(0.5)
        idle_before = proc_sample(server.proc.pid)
        soak = Soak(server, cfg)
        wall = soak.run()
        idle_after = m = None
        time.sleep(1.0)  # let hung-up connections finish closing
        try:
            idle_after = proc_sample(server.proc.pid)
            m = metrics(server.port)
        except OSError as e:
            soak.failures.append((-1, "server", f"server gone after the load: {e}"))
        if not server.alive():
            soak.failures.append((-1, "server", f"ollmlx serve exited ({server.proc.returncode}; "
                                  "0 = shut down by a signal, see its log)"))
        ok = report(soak, wall, idle_before, idle_after, m)
    except Exception:
        traceback.print_exc()
    finally:
        if soak is not None:
            soak.stop.set()  # interrupted: no more requests against a server being stopped
        if not ok:
            print("--- server log (tail) ---\n" + server.log_tail())
        server.stop()
    print("soak: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
