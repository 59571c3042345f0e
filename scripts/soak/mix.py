"""The soak's request mix: what each kind of request sends and how its response is checked.

Where it sits: `soak.py` starts `ollmlx serve` and runs worker threads; each worker takes the
next request index, `pick(i)` turns it into one `Kind` (deterministic per index and seed), and
`run_one` sends it over a fresh loopback connection (http.client, stdlib only) and checks the
status and shape of what comes back. A failed check raises `Bad`; the driver counts it.

Greedy and seeded requests repeat from small fixed sets on purpose: `Answers` remembers the first
text each (endpoint, prompt, options) produced and every later repeat -- streamed or not, before
or after cancellations, unloads and prefix-cache evictions -- must produce the same text. That is
the "cancellations never corrupt state" check.
"""

import http.client
import json
import math
import random
import threading
import time

GEN_MODEL = "smollm2:135m"
EMBED_MODEL = "all-minilm"
EMBED_DIM = 384
TIMEOUT_S = 300

PROMPTS = [
    "What is the capital of France?",
    "Name three primary colors.",
    "Say hello in Spanish.",
    "What is two plus two?",
    "Write one word that rhymes with cat.",
    "What colour is the sky on a clear day?",
    "Give me a synonym for happy.",
    "Which planet is closest to the sun?",
    "What do bees make?",
    "Finish the sentence: The quick brown fox",
    "How many legs does a spider have?",
    "What is the opposite of cold?",
]
# A few prompts longer than one KV-cache growth step (256 positions), reused so only the first
# of each pays the long prefill.
LONG_PROMPTS = [
    ("Summarize this list in one word: " + ", ".join(["apples", "pears", "plums", "figs"] * 40)),
    ("Count the animals: " + " ".join(["cat dog bird fish"] * 45)),
]
EMBED_INPUTS = [
    "The cat sits on the mat.",
    "A quick brown fox jumps over the lazy dog.",
    "Memory should stay flat under load.",
    "ollmlx serves models through the Ollama API.",
    "Paris is the capital of France.",
]
SEEDS = [1, 2, 3]
JSON_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city"],
}

# (kind, weight). One request in five runs the generation engine (serial on a CPU box: it sets
# the soak's pace); the rest are embeddings, error paths and metadata, which hit the same server,
# router and (for embed) engine thread.
WEIGHTS = [
    ("generate", 6),
    ("chat", 5),
    ("openai", 3),
    ("format", 2),
    ("disconnect_mid", 2),
    ("disconnect_early", 2),
    ("embed", 15),
    ("bad", 35),
    ("meta", 30),
]


class Bad(Exception):
    """A response that is not what the request must produce."""


def check(cond, what):
    if not cond:
        raise Bad(what)


class Answers:
    """First text seen per deterministic request key; later repeats must match it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.texts = {}
        self.vectors = {}
        self.checked = 0

    def same_text(self, key, text):
        with self.lock:
            first = self.texts.setdefault(key, text)
            self.checked += 1
        check(first == text, f"non-deterministic output for {key}: first {first!r}, now {text!r}")

    def same_vector(self, key, vec):
        with self.lock:
            first = self.vectors.setdefault(key, vec)
            self.checked += 1
        cos = sum(a * b for a, b in zip(first, vec))
        check(cos >= 0.9999, f"embedding of {key!r} drifted: cosine {cos:.6f} to the first one")


class Req:
    """One planned request: the kind, the JSON body (or raw bytes) and what to expect."""

    def __init__(self, index, kind, **kw):
        self.index = index
        self.kind = kind
        self.__dict__.update(kw)


def pick(index, seed, unload_every):
    """The request for `index`: same seed, same plan, so runs are comparable."""
    rng = random.Random(seed * 1_000_003 + index)
    if unload_every and index % unload_every == unload_every // 2:
        return Req(index, "unload")
    kinds, weights = zip(*WEIGHTS)
    kind = rng.choices(kinds, weights)[0]
    return globals()["plan_" + kind](index, rng)


def _options(rng):
    n = rng.randint(1, 8)
    if rng.random() < 0.6:
        return n, {"num_predict": n, "temperature": 0}
    return n, {"num_predict": n, "temperature": 0.8, "seed": rng.choice(SEEDS)}


def _prompt(index, rng):
    """A repeated prompt (checked for determinism), a long one, or a unique one (new prefix-cache
    entries, so eviction runs too). Returns (prompt, deterministic?)."""
    r = rng.random()
    if r < 0.02:
        return rng.choice(LONG_PROMPTS), True
    if r < 0.27:
        return f"{rng.choice(PROMPTS)} (request {index})", False
    return rng.choice(PROMPTS), True


def plan_generate(index, rng):
    n, opts = _options(rng)
    prompt, det = _prompt(index, rng)
    body = {"model": GEN_MODEL, "prompt": prompt, "stream": rng.random() < 0.5, "options": opts}
    return Req(index, "generate", path="/api/generate", body=body, n=n, det=det)


def plan_chat(index, rng):
    n, opts = _options(rng)
    prompt, det = _prompt(index, rng)
    msgs = [{"role": "user", "content": prompt}]
    if rng.random() < 0.3:
        msgs = [{"role": "system", "content": "Answer briefly."}] + msgs
    body = {"model": GEN_MODEL, "messages": msgs, "stream": rng.random() < 0.5, "options": opts}
    return Req(index, "chat", path="/api/chat", body=body, n=n, det=det)


def plan_openai(index, rng):
    n, opts = _options(rng)
    prompt, det = _prompt(index, rng)
    body = {
        "model": GEN_MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": n,
        "temperature": opts["temperature"],
        "stream": rng.random() < 0.5,
    }
    if "seed" in opts:
        body["seed"] = opts["seed"]
    return Req(index, "openai", path="/v1/chat/completions", body=body, n=n, det=det)


def plan_format(index, rng):
    n = rng.randint(1, 8)
    fmt = "json" if rng.random() < 0.5 else JSON_SCHEMA
    prompt = rng.choice(["Describe Paris as JSON.", "Give a JSON object about a city."])
    body = {"model": GEN_MODEL, "prompt": prompt, "format": fmt, "stream": rng.random() < 0.5,
            "options": {"num_predict": n, "temperature": 0}}
    return Req(index, "format", path="/api/generate", body=body, n=n, det=True)


def plan_disconnect_mid(index, rng):
    chat = rng.random() < 0.5
    opts = {"num_predict": rng.randint(16, 64), "temperature": 0}
    if chat:
        body = {"model": GEN_MODEL, "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
                "options": opts}
        return Req(index, "disconnect_mid", path="/api/chat", body=body)
    body = {"model": GEN_MODEL, "prompt": rng.choice(PROMPTS), "options": opts}
    return Req(index, "disconnect_mid", path="/api/generate", body=body)


def plan_disconnect_early(index, rng):
    body = {"model": GEN_MODEL, "prompt": f"{rng.choice(PROMPTS)} ({index})",
            "options": {"num_predict": 32, "temperature": 0}}
    return Req(index, "disconnect_early", path="/api/generate", body=body,
               delay=rng.uniform(0.0, 0.05))


def plan_embed(index, rng):
    k = rng.randint(1, 3)
    inputs = rng.sample(EMBED_INPUTS, k)
    body = {"model": EMBED_MODEL, "input": inputs[0] if k == 1 and rng.random() < 0.5 else inputs}
    return Req(index, "embed", path="/api/embed", body=body, inputs=inputs)


# (method, path, raw body, status, exact body, or a predicate on the parsed JSON)
BAD = [
    ("POST", "/api/generate", b'{"model": "smollm2:135m", "prompt": ', 400,
     {"error": "unexpected EOF"}),
    ("POST", "/api/generate", b"x{", 400,
     {"error": "invalid character 'x' looking for beginning of value"}),
    ("POST", "/api/generate", b'{"model":"smollm2:135m","prompt":5}', 400,
     {"error": "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string"}),
    ("POST", "/api/generate", b"", 400, {"error": "missing request body"}),
    ("POST", "/api/generate", b'{"model":"no-such-model","prompt":"hi"}', 404,
     {"error": "model 'no-such-model' not found"}),
    ("POST", "/api/generate", b'{"model":"smollm2:135m","prompt":"hi","options":{"num_predict":"x"}}',
     500, {"error": 'option "num_predict" must be of type integer'}),
    ("POST", "/api/chat", b'{"model":""}', 400, {"error": "model is required"}),
    ("POST", "/api/chat", b'{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}',
     404, {"error": "model 'no-such-model' not found"}),
    ("POST", "/api/embed", b'{"model":"no-such-model","input":"a"}', 404,
     {"error": 'model "no-such-model" not found, try pulling it first'}),
    ("POST", "/api/embed", b'{"model":"all-minilm","input":5}', 400, {"error": "invalid input type"}),
    ("POST", "/v1/chat/completions", b"x{", 400,
     {"error": {"message": "invalid character 'x' looking for beginning of value",
                "type": "invalid_request_error", "param": None, "code": None}}),
    ("POST", "/v1/chat/completions",
     b'{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}', 404,
     {"error": {"message": "model 'no-such-model' not found", "type": "not_found_error",
                "param": None, "code": None}}),
    ("GET", "/api/no-such-route", None, 404, "404 page not found"),
]


def plan_bad(index, rng):
    method, path, raw, status, want = rng.choice(BAD)
    return Req(index, "bad", method=method, path=path, raw=raw, status=status, want=want)


def plan_meta(index, rng):
    return Req(index, "meta", what=rng.choice(["tags", "ps", "show", "version", "models", "root"]))


# ---------------------------------------------------------------------------------------------


def _conn(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)


def _send(port, method, path, body=None, raw=None):
    c = _conn(port)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"} if data is not None else {}
    c.request(method, path, body=data, headers=headers)
    return c, c.getresponse()


def _json(resp, status=200):
    data = resp.read()
    check(resp.status == status, f"status {resp.status}, want {status}: {data[:300]!r}")
    try:
        return json.loads(data)
    except ValueError:
        raise Bad(f"body is not JSON: {data[:300]!r}")


def _ndjson(resp):
    if resp.status != 200:
        raise Bad(f"status {resp.status}: {resp.read()[:300]!r}")
    check(resp.getheader("Content-Type", "").startswith("application/x-ndjson"),
          f"stream content type {resp.getheader('Content-Type')!r}")
    data = resp.read()
    lines = [json.loads(ln) for ln in data.splitlines() if ln.strip()]
    check(lines, f"empty stream: {resp.getheaders()} {data!r}")
    check(all(not ln.get("done") for ln in lines[:-1]), "a chunk before the last says done")
    check(lines[-1].get("done") is True, f"stream did not end with done: {lines[-1]}")
    return lines


def _final(obj, req):
    check("error" not in obj, f"error: {obj.get('error')}")
    check(obj.get("model") == GEN_MODEL, f"model {obj.get('model')!r}")
    check(obj.get("done") is True, "done is not true")
    check(obj.get("done_reason") in ("stop", "length"), f"done_reason {obj.get('done_reason')!r}")
    ev = obj.get("eval_count")
    check(isinstance(ev, int) and 1 <= ev <= req.n, f"eval_count {ev!r} with num_predict {req.n}")
    if obj["done_reason"] == "length":
        check(ev == req.n, f"done_reason length after {ev} of {req.n} tokens")
    check(isinstance(obj.get("total_duration"), int) and obj["total_duration"] > 0, "total_duration")


def _key(req):
    b = dict(req.body)
    b.pop("stream", None)
    return json.dumps([req.path, b], sort_keys=True)


def run_generate(port, req, answers):
    c, resp = _send(port, "POST", req.path, req.body)
    try:
        if req.body["stream"]:
            lines = _ndjson(resp)
            text = "".join(ln.get("response", "") for ln in lines)
            _final(lines[-1], req)
        else:
            obj = _json(resp)
            check(isinstance(obj.get("response"), str), "response is not a string")
            check(isinstance(obj.get("context"), list) and obj["context"], "context missing")
            text = obj["response"]
            _final(obj, req)
    finally:
        c.close()
    if req.kind == "format":
        t = text.lstrip()
        check(t == "" or t.startswith("{"), f"format {req.body['format']!r} gave {text!r}")
    if req.det:
        answers.same_text(_key(req), text)


run_format = run_generate


def run_chat(port, req, answers):
    c, resp = _send(port, "POST", req.path, req.body)
    try:
        if req.body["stream"]:
            lines = _ndjson(resp)
            check(all(ln.get("message", {}).get("role") == "assistant" for ln in lines),
                  "a chunk without an assistant message")
            text = "".join(ln["message"].get("content", "") for ln in lines)
            _final(lines[-1], req)
        else:
            obj = _json(resp)
            msg = obj.get("message") or {}
            check(msg.get("role") == "assistant" and isinstance(msg.get("content"), str),
                  f"message {msg!r}")
            text = msg["content"]
            _final(obj, req)
    finally:
        c.close()
    if req.det:
        answers.same_text(_key(req), text)


def run_openai(port, req, answers):
    c, resp = _send(port, "POST", req.path, req.body)
    try:
        if req.body["stream"]:
            if resp.status != 200:
                raise Bad(f"status {resp.status}: {resp.read()[:300]!r}")
            check(resp.getheader("Content-Type", "").startswith("text/event-stream"),
                  f"content type {resp.getheader('Content-Type')!r}")
            frames = [ln[6:] for ln in resp.read().decode().split("\n") if ln.startswith("data: ")]
            check(frames and frames[-1] == "[DONE]", "SSE stream did not end with [DONE]")
            chunks = [json.loads(f) for f in frames[:-1]]
            check(chunks and all(ch.get("object") == "chat.completion.chunk" for ch in chunks),
                  "SSE chunk of the wrong object type")
            text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks)
            reason = chunks[-1]["choices"][0].get("finish_reason")
        else:
            obj = _json(resp)
            check(obj.get("object") == "chat.completion", f"object {obj.get('object')!r}")
            choice = obj["choices"][0]
            text = choice["message"]["content"]
            reason = choice.get("finish_reason")
            used = obj.get("usage", {}).get("completion_tokens")
            check(isinstance(used, int) and 1 <= used <= req.n, f"completion_tokens {used!r}")
    finally:
        c.close()
    check(reason in ("stop", "length"), f"finish_reason {reason!r}")
    check(isinstance(text, str), "content is not a string")
    if req.det:
        answers.same_text(_key(req), text)


def run_disconnect_mid(port, req, answers):
    c, resp = _send(port, "POST", req.path, req.body)
    try:
        check(resp.status == 200, f"status {resp.status}")
        first = json.loads(resp.readline())
        check(first.get("done") is False, f"first chunk {first}")
    finally:
        c.close()  # hang up mid-stream: the server must cancel the generation


def run_disconnect_early(port, req, answers):
    c = _conn(port)
    try:
        c.request("POST", req.path, body=json.dumps(req.body).encode(),
                  headers={"Content-Type": "application/json"})
        time.sleep(req.delay)
    finally:
        c.close()  # hang up before the first byte (often while still queued)


def run_embed(port, req, answers):
    c, resp = _send(port, "POST", req.path, req.body)
    try:
        obj = _json(resp)
    finally:
        c.close()
    check(obj.get("model") == EMBED_MODEL, f"model {obj.get('model')!r}")
    embs = obj.get("embeddings")
    check(isinstance(embs, list) and len(embs) == len(req.inputs),
          f"{len(embs or [])} embeddings for {len(req.inputs)} inputs")
    for text, vec in zip(req.inputs, embs):
        check(len(vec) == EMBED_DIM, f"dimension {len(vec)}")
        norm = math.sqrt(sum(x * x for x in vec))
        check(abs(norm - 1.0) < 1e-3, f"norm {norm}")
        answers.same_vector(text, vec)


def run_bad(port, req, answers):
    c, resp = _send(port, req.method, req.path, raw=req.raw)
    try:
        data = resp.read()
    finally:
        c.close()
    check(resp.status == req.status, f"{req.path} {req.raw!r}: status {resp.status}, want {req.status}")
    got = data.decode() if isinstance(req.want, str) else json.loads(data)
    check(got == req.want, f"{req.path} {req.raw!r}: body {data[:300]!r}, want {req.want!r}")


def run_meta(port, req, answers):
    what = req.what
    if what == "show":
        c, resp = _send(port, "POST", "/api/show", {"model": GEN_MODEL})
    else:
        path = {"tags": "/api/tags", "ps": "/api/ps", "version": "/api/version",
                "models": "/v1/models", "root": "/"}[what]
        c, resp = _send(port, "GET", path)
    try:
        if what == "root":
            data = resp.read()
            check(resp.status == 200 and data == b"Ollama is running", f"GET / gave {data!r}")
            return
        obj = _json(resp)
    finally:
        c.close()
    if what == "tags":
        names = sorted(m["name"] for m in obj["models"])
        check(names == sorted([GEN_MODEL, EMBED_MODEL + ":latest"]), f"tags {names}")
    elif what == "ps":
        check(isinstance(obj.get("models"), list), "ps without models")
        check(all(m["name"] in (GEN_MODEL, EMBED_MODEL + ":latest") for m in obj["models"]),
              f"ps {obj}")
    elif what == "show":
        check(obj.get("details", {}).get("family") == "llama", f"show details {obj.get('details')}")
    elif what == "version":
        check(isinstance(obj.get("version"), str), f"version {obj}")
    elif what == "models":
        ids = sorted(m["id"] for m in obj.get("data", []))
        check(obj.get("object") == "list" and GEN_MODEL in ids, f"/v1/models {obj}")


def run_unload(port, req, answers):
    c, resp = _send(port, "POST", "/api/generate", {"model": GEN_MODEL, "keep_alive": 0})
    try:
        obj = _json(resp)
    finally:
        c.close()
    check(obj.get("done") is True and obj.get("done_reason") == "unload", f"unload gave {obj}")


def run_one(port, req, answers):
    globals()["run_" + req.kind](port, req, answers)
