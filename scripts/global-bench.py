#!/usr/bin/env python3
"""The global-allocator comparison: benches/global/ workloads on GlobalArena,
mimalloc, jemalloc and the System allocator.

Usage: scripts/global-bench.py [ROUNDS] [WORKLOAD...]   (default 7, all)

Builds the four `global-*` binaries (release), then runs every workload on
every allocator once per round, round-robin (the order of the allocators
rotates each round), so that all contenders see the same machine
conditions. Prints the median wall time and the median peak RSS (VmHWM)
per workload and allocator, fiberalloc's time against the best of the
three peers, and its peak RSS against the System allocator's.
"""
import os
import statistics
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ALLOCATORS = ["fiberalloc", "mimalloc", "jemalloc", "system"]
WORKLOADS = [
    ("strings", "(i) 2M strings in a Vec<String>"),
    ("btree", "(ii) 1M BTreeMap<u64, Vec<u8>> inserts"),
    ("json", "(iii) parse 50 MB of JSON"),
    ("channel", "(iv) 5M Box<[u8; 64]> across threads"),
    ("churn", "(v) 2 threads, random-size churn"),
    # Not one of the workloads: (iv) through a bounded channel,
    # which shows the allocators' own cost of cross-thread traffic without
    # the unbounded queue's two modes (see benches/README.md).
    ("bounded", "(iv-b) the same through sync_channel(100k)"),
    # Not one of the either: thread start and exit.
    ("threads", "64 short-lived threads, churn each"),
    # Nor this: blocks freed on another thread, one in 1,000 kept a while.
    ("stragglers", "(iv-b) keeping 1 box in 1,000 a while"),
]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    chosen = [w for w in WORKLOADS if len(sys.argv) <= 2 or w[0] in sys.argv[2:]]
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "fiberalloc-benches"]
        + [a for x in ALLOCATORS for a in ("--bin", "global-" + x)],
        cwd=ROOT,
        check=True,
    )
    times = {(w, a): [] for w, _ in WORKLOADS for a in ALLOCATORS}
    rss = {(w, a): [] for w, _ in WORKLOADS for a in ALLOCATORS}
    for r in range(rounds):
        order = ALLOCATORS[r % len(ALLOCATORS):] + ALLOCATORS[: r % len(ALLOCATORS)]
        for w, _ in chosen:
            for a in order:
                exe = os.path.join(ROOT, "target", "release", "global-" + a)
                out = subprocess.run([exe, w], capture_output=True, text=True, check=True).stdout.split()
                times[(w, a)].append(float(out[0]))
                rss[(w, a)].append(int(out[1]) / 1024)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    print(f"Medians over {rounds} interleaved rounds (ms; peak RSS in MiB):\n")
    print("| workload | fiberalloc | mimalloc | jemalloc | System | vs best peer | peak RSS f / m / j / s | RSS vs System |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for w, title in chosen:
        t = {a: statistics.median(times[(w, a)]) for a in ALLOCATORS}
        m = {a: statistics.median(rss[(w, a)]) for a in ALLOCATORS}
        best = min(ALLOCATORS[1:], key=lambda a: t[a])
        print(
            f"| {title} | {t['fiberalloc']:.0f} | {t['mimalloc']:.0f} | {t['jemalloc']:.0f} | {t['system']:.0f} "
            f"| {t['fiberalloc'] / t[best]:.2f}x ({best}) "
            f"| {m['fiberalloc']:.0f} / {m['mimalloc']:.0f} / {m['jemalloc']:.0f} / {m['system']:.0f} "
            f"| {m['fiberalloc'] / m['system']:.2f}x |"
        )


if __name__ == "__main__":
    main()
