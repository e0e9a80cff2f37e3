"""A Python workload for the C allocator: threads, dicts, strings, JSON and a
subprocess (fork + exec). Its output is deterministic, so a run on
libfiberalloc_malloc.so is compared with a run on the system allocator."""
import hashlib
import json
import random
import subprocess
import sys
import threading

def records(seed, n):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append({
            "id": i,
            "name": "".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 40))),
            "tags": [rng.randint(0, 1000) for _ in range(rng.randint(0, 12))],
            "nested": {"x": rng.random(), "s": "é" * rng.randint(0, 5)},
        })
    return out

def worker(seed, results):
    data = records(seed, 20000)
    text = json.dumps(data, sort_keys=True)
    back = json.loads(text)
    index = {}
    for r in back:
        index.setdefault(len(r["name"]), []).append(r["id"])
    # Strings built and dropped, dicts grown and shrunk.
    words = {}
    for r in back:
        for t in r["tags"]:
            words[f"w{t}-{r['name'][:3]}"] = words.get(f"w{t}-{r['name'][:3]}", 0) + 1
    for k in list(words)[::2]:
        del words[k]
    digest = hashlib.sha256(text.encode()).hexdigest()
    results[seed] = (len(text), len(index), len(words), digest[:16])

results = {}
threads = [threading.Thread(target=worker, args=(s, results)) for s in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for seed in sorted(results):
    print("thread", seed, *results[seed])

# A child process: fork + exec of another interpreter, talking over pipes.
child = subprocess.run(
    [sys.executable, "-c", "import json,sys; d=json.load(sys.stdin); print(sum(len(v) for v in d.values()))"],
    input=json.dumps({str(k): list(v) for k, v in results.items()}),
    capture_output=True, text=True, check=True)
print("child", child.stdout.strip())

# Big and small blocks: a large bytearray grown, lists of tuples.
buf = bytearray()
for i in range(200):
    buf += bytes([i % 256]) * (i * 1000)
pairs = sorted((hashlib.md5(str(i).encode()).hexdigest(), i) for i in range(100000))
print("bytes", len(buf), "pairs", pairs[0][1], pairs[-1][1])
