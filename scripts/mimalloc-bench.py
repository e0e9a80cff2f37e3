#!/usr/bin/env python3
"""Runs the built mimalloc-bench benchmarks under each allocator, interleaved.

Usage: mimalloc-bench.py [--programs] DIR ROUNDS NAME=LIB.so ...   (NAME= is
the system allocator). Called by scripts/mimalloc-bench.sh, which builds DIR,
and with --programs by scripts/programs-bench.sh (DIR is then the repository:
python3, g++ and sqlite3 on the workloads in capi/programs). Prints a
markdown table: per benchmark, each allocator's median time and peak RSS,
fiberalloc's ratio to the best peer, and the geometric means against
mimalloc. Arguments follow the suite's bench.sh, with N = the core count.
"""
import math
import os
import re
import statistics
import subprocess
import sys
import time

args = sys.argv[1:]
programs = args[:1] == ["--programs"]
if programs:
    args = args[1:]
out_dir, rounds = args[0], int(args[1])
allocs = [a.split("=", 1) for a in args[2:]]
n = str(os.cpu_count())
benches = {
    "cfrac": ["./cfrac", "17545186520507317056371138836327483792789528"],
    "espresso": ["./espresso", "largest.espresso"],
    "larsonN": ["./larson", "5", "8", "1000", "5000", "100", "4141", n],
    "mstressN": ["./mstress", n, "50", "25"],
    "xmalloc-testN": ["./xmalloc-test", "-w", n, "-t", "5", "-s", "64"],
    "cache-scratch1": ["./cache-scratch", "1", "1000", "1", "2000000", n],
    "cache-scratchN": ["./cache-scratch", n, "1000", "1", "2000000", n],
    "glibc-simple": ["./glibc-simple"],
    "glibc-thread": ["./glibc-thread", n],
}
if programs:
    benches = {
        "python3 workload.py": ["python3", "capi/programs/workload.py"],
        "g++ -O2 stdlib.cpp": ["g++", "-O2", "-std=c++17", "-S", "-o", "/dev/null", "capi/programs/stdlib.cpp"],
        "sqlite3 workload.sql": ["sh", "-c", "sqlite3 < capi/programs/workload.sql"],
    }


def score(bench, output, wall_ms):
    """Smaller is better: wall time, or the suite's relative time for the
    benchmarks that run for a fixed time and report a rate."""
    if bench.startswith("larson"):
        m = re.search(rb"relative time: ([0-9.]+)s", output)
        return float(m.group(1)) * 1000 if m else None
    if bench.startswith("xmalloc"):
        m = re.search(rb"rtime: ([0-9.]+)", output)
        return float(m.group(1)) * 1000 if m else None
    if bench == "glibc-thread":
        m = re.search(rb"([0-9]+) iterations", output)
        return 1e12 / float(m.group(1)) if m else None
    return wall_ms


times = {b: {a: [] for a, _ in allocs} for b in benches}
peak = {b: {a: [] for a, _ in allocs} for b in benches}
failed = {}
for r in range(rounds):
    order = allocs[r % len(allocs):] + allocs[: r % len(allocs)]
    for bench, cmd in benches.items():
        for name, lib in order:
            env = dict(os.environ)
            if lib:
                env["LD_PRELOAD"] = lib
            rss_file = os.path.join(out_dir, "target", ".rss") if programs else os.path.join(out_dir, ".rss")
            start = time.perf_counter()
            # GNU time reports the benchmark's own peak RSS.
            p = subprocess.run(["/usr/bin/time", "-f", "@@%M", "-o", rss_file, *cmd],
                               cwd=out_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            wall = (time.perf_counter() - start) * 1000
            kib = open(rss_file).read().rsplit("@@", 1)[-1].strip()
            if p.returncode != 0:
                failed[(bench, name)] = f"exit {p.returncode}: " + p.stdout[-300:].decode(errors="replace")
                continue
            v = score(bench, p.stdout, wall)
            if v is None:
                failed[(bench, name)] = "no result: " + p.stdout[-200:].decode(errors="replace")
                continue
            times[bench][name].append(v)
            peak[bench][name].append(int(kib) / 1024 if kib.isdigit() else 0)
    print(f"round {r + 1} of {rounds} done", file=sys.stderr)

names = [a for a, _ in allocs]
med = lambda xs: statistics.median(xs) if xs else float("nan")
rates = "" if programs else " (larson, xmalloc-test, glibc-thread: relative time from their rate)"
print(f"median of {rounds} interleaved rounds on {os.cpu_count()} cores; time in ms{rates}, peak RSS in MiB\n")
print("| benchmark | " + " | ".join(names) + " | fiberalloc / best peer | RSS / mimalloc |")
print("|---|" + "---:|" * len(names) + "---:|---:|")
geo_t, geo_m, worst = [], [], (0, "")
for bench in benches:
    t = {a: med(times[bench][a]) for a in names}
    m = {a: med(peak[bench][a]) for a in names}
    peers = [a for a in names if a != "fiberalloc" and not math.isnan(t[a])]
    best = min(peers, key=lambda a: t[a]) if peers else None
    ratio = t["fiberalloc"] / t[best] if best else float("nan")
    if not math.isnan(ratio) and ratio > worst[0]:
        worst = (ratio, bench)
    if not math.isnan(t["fiberalloc"]) and not math.isnan(t["mimalloc"]):
        geo_t.append(t["fiberalloc"] / t["mimalloc"])
        geo_m.append(m["fiberalloc"] / max(m["mimalloc"], 1e-9))
    cells = " | ".join(f"{t[a]:.0f} / {m[a]:.0f}" for a in names)
    print(f"| {bench} | {cells} | {ratio:.2f}x ({best}) | {m['fiberalloc'] / max(m['mimalloc'], 1e-9):.2f}x |")
gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")
print(f"\ngeometric mean against mimalloc: time {gm(geo_t):.2f}x, peak RSS {gm(geo_m):.2f}x; "
      f"slowest against the best peer: {worst[1]} at {worst[0]:.2f}x")
for (bench, name), msg in failed.items():
    print(f"FAILED {bench} under {name}: {msg!r}")
sys.exit(1 if any(name == "fiberalloc" for _, name in failed) else 0)
