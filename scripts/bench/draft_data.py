#!/usr/bin/env python3
"""Training data for a distilled draft model: the target's own greedy continuations.

Asks a running `ollmlx serve` (which already has the target model) for greedy completions of
several hundred generated prompts, several at a time, and writes one JSON line per prompt:
`{"ids": [prompt + output token ids], "prompt_len": n}` (the ids are Ollama's `context`,
`n` its length less `eval_count`). The
output tokens are the target's argmax at each position, so a draft trained to predict them is
trained on exactly what greedy speculative decoding accepts.

The prompts are built from templates (counting, repeating, lists, explanations, stories,
code) and never contain the prompts `speculative_bench` measures with.

    python3 draft_data.py HOST:PORT MODEL OUT.jsonl [N_PROMPTS] [NUM_PREDICT] [PARALLEL]
"""

import json
import random
import sys
import threading
import urllib.request

SENTENCES = [
    "The cat sat on the warm windowsill and watched the rain.",
    "A small boat drifted slowly across the quiet lake.",
    "Every morning the baker opened the shop at six o'clock.",
    "The old clock in the hall struck twelve times.",
    "Green leaves turned gold and red as autumn arrived.",
    "She wrote a letter to her grandmother every Sunday.",
    "The train left the station exactly on time.",
    "Stars filled the night sky above the mountain village.",
    "He planted tomatoes, beans and carrots in the garden.",
    "The library was silent except for the turning of pages.",
    "Bright yellow kites danced in the wind over the beach.",
    "The robot carefully stacked the boxes in neat rows.",
]
WORDS = ["apple", "hello", "river", "blue", "yes", "music", "sun", "data", "green", "stone"]
TOPICS = [
    "photosynthesis", "gravity", "the water cycle", "volcanoes", "the internet", "electricity",
    "the moon", "rainbows", "recycling", "the human heart", "magnets", "earthquakes",
    "democracy", "vaccines", "black holes", "bees", "the printing press", "clouds",
    "computers", "the ocean tides", "dinosaurs", "solar panels", "money", "friendship",
]
THINGS = [
    "fruits", "countries in Europe", "programming languages", "animals that live in the sea",
    "colors", "musical instruments", "vegetables", "sports", "planets", "kitchen tools",
    "birds", "famous scientists", "board games", "flowers", "car brands", "capital cities",
]
TASKS = [
    "reverses a string", "checks whether a number is prime", "sums a list of numbers",
    "counts the vowels in a word", "returns the largest item of a list", "computes a factorial",
    "sorts a list of names", "converts Celsius to Fahrenheit", "finds duplicates in a list",
    "returns the Fibonacci numbers below 100",
]


def prompts(n, rng):
    makers = [
        lambda: f"Count from {(a := rng.randint(1, 60))} to {a + rng.randint(10, 60)}.",
        lambda: f"Count from {(a := rng.randint(1, 40))} to {a + rng.randint(20, 80)} "
        f"separated by {rng.choice(['spaces', 'commas', 'new lines', 'dashes'])}.",
        lambda: f"Count backwards from {rng.randint(20, 90)} to {rng.randint(0, 10)}.",
        lambda: f"List the multiples of {rng.randint(2, 12)} up to {rng.randint(50, 150)}.",
        lambda: f"Write the even numbers between {rng.randint(1, 30)} and {rng.randint(40, 99)}.",
        lambda: f"Repeat this sentence {rng.randint(2, 6)} times: {rng.choice(SENTENCES)}",
        lambda: f"Repeat this text {rng.choice(['twice', 'three times', 'four times'])}: "
        + " ".join(rng.sample(SENTENCES, 2)),
        lambda: f"Write the word '{rng.choice(WORDS)}' {rng.randint(5, 30)} times.",
        lambda: f"Say '{rng.choice(SENTENCES)}' and then say it again.",
        lambda: f"Copy this exactly: {' '.join(rng.sample(SENTENCES, 3))}",
        lambda: f"List {rng.randint(5, 15)} {rng.choice(THINGS)}.",
        lambda: f"Explain {rng.choice(TOPICS)} in simple terms.",
        lambda: f"What is {rng.choice(TOPICS)}?",
        lambda: f"Write a short story about {rng.choice(WORDS)} and {rng.choice(TOPICS)}.",
        lambda: f"Write a poem about {rng.choice(TOPICS)}.",
        lambda: f"Write a Python function that {rng.choice(TASKS)}.",
        lambda: f"Give me {rng.randint(3, 8)} tips about {rng.choice(TOPICS)}.",
        lambda: f"Write the alphabet {rng.choice(['in capitals', 'in lowercase', 'backwards'])}.",
        lambda: f"Write a table of {rng.randint(2, 9)} times 1 to 12.",
        lambda: f"Spell the word '{rng.choice(WORDS)}' letter by letter, {rng.randint(2, 5)} times.",
    ]
    out = []
    for i in range(n):
        out.append(makers[i % len(makers)]())
    return out


def ask(host, model, prompt, num_predict):
    body = json.dumps({
        "model": model,
        "prompt": prompt,
        "stream": False,
        # pure greedy (no repeat penalty): each output token is the argmax
        "options": {"temperature": 0, "repeat_penalty": 1.0, "num_predict": num_predict},
    }).encode()
    req = urllib.request.Request(f"http://{host}/api/generate", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        d = json.load(r)
    # `prompt_eval_count` counts only the tokens the prefix cache did not hold: take the
    # prompt length from the output's length instead.
    ids = d["context"]
    return {"ids": ids, "prompt_len": len(ids) - d["eval_count"]}


def main():
    host, model, out = sys.argv[1], sys.argv[2], sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 400
    num_predict = int(sys.argv[5]) if len(sys.argv) > 5 else 160
    parallel = int(sys.argv[6]) if len(sys.argv) > 6 else 8
    todo = prompts(n, random.Random(7))
    lock = threading.Lock()
    done = [0]
    with open(out, "w") as f:
        def worker(mine):
            for p in mine:
                rec = ask(host, model, p, num_predict)
                with lock:
                    f.write(json.dumps(rec) + "\n")
                    f.flush()
                    done[0] += 1
                    if done[0] % 25 == 0:
                        print(f"{done[0]}/{n}", flush=True)
        threads = [threading.Thread(target=worker, args=(todo[i::parallel],))
                   for i in range(parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


if __name__ == "__main__":
    main()
