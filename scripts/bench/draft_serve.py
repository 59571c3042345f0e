#!/usr/bin/env python3
"""Speculative decoding through `ollmlx serve`: the same model with and without speculation.

Sends each prompt (greedy: temperature 0, repeat_penalty 1; NUM_PREDICT tokens) to MODEL
(plain) and to SPEC_MODEL (the same weights with Modelfile `DRAFT`), interleaved over ROUNDS
rounds, one request at a time, and prints the decode rate the server reports (eval_count /
eval_duration) and whether the two answers are identical (they must be: greedy speculative
output is the plain output). With SPEC_MODEL equal to MODEL (a server started with
`OLLMLX_PROMPT_LOOKUP=1`), the plain requests set `draft_num_predict: 0`, which turns
speculation off for them, and the others decode with prompt-lookup drafts.

    python3 draft_serve.py HOST:PORT MODEL SPEC_MODEL [ROUNDS] [NUM_PREDICT]
"""

import json
import statistics
import sys
import urllib.request

PROMPTS = [
    "Count from 1 to 100 separated by commas.",
    "Repeat this paragraph three times: The quick brown fox jumps over the lazy dog. "
    "The lazy dog sleeps in the sun.",
    "Describe a busy market in a small town on a Saturday morning.",
    "Add a docstring to this Python function and return the whole function:\n\n"
    "def mean(values):\n    total = 0\n    for v in values:\n        total += v\n"
    "    return total / len(values)\n",
    # no repetition asked for
    "Write a haiku about autumn leaves.",
    "What is the capital of France? Answer in one paragraph.",
    "Invent a name for a new color and describe it.",
    "Give three reasons to learn to cook.",
]


def generate(host, model, prompt, n, speculate=True):
    options = {"temperature": 0, "repeat_penalty": 1.0, "num_predict": n}
    if not speculate:
        options["draft_num_predict"] = 0
    body = json.dumps({
        "model": model, "prompt": prompt, "stream": False, "options": options,
    }).encode()
    req = urllib.request.Request(f"http://{host}/api/generate", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=900) as r:
        d = json.load(r)
    return d["response"], d["eval_count"] / (d["eval_duration"] / 1e9)


def main():
    host, plain, drafted = sys.argv[1], sys.argv[2], sys.argv[3]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 128
    for m in (plain, drafted):  # load both (and the draft) before timing
        generate(host, m, "Hi", 1)
    results = []
    for prompt in PROMPTS:
        rates = {"plain": [], "spec": []}
        same = True
        for _ in range(rounds):
            a, ra = generate(host, plain, prompt, n, speculate=plain != drafted)
            b, rb = generate(host, drafted, prompt, n)
            rates["plain"].append(ra)
            rates["spec"].append(rb)
            same = same and a == b
        p, d = statistics.median(rates["plain"]), statistics.median(rates["spec"])
        print(f"{prompt[:48]!r:52} plain {p:6.2f} tok/s, speculative {d:6.2f} tok/s = "
              f"{d / p:.2f}x (rounds: {', '.join(f'{x:.1f}' for x in rates['plain'])} vs "
              f"{', '.join(f'{x:.1f}' for x in rates['spec'])}), identical: {same}",
              flush=True)
        results.append({"prompt": prompt, "plain": rates["plain"], "spec": rates["spec"],
                        "identical": same})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
