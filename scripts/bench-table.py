#!/usr/bin/env python3
"""Prints the side-by-side table of the latest criterion run.

Usage: scripts/bench-table.py [--summary] [GROUP_PREFIX ...]

Reads target/criterion/<group>/<contender>/new/estimates.json (median) and
prints, per group (row), each contender's median in ns per operation (the
group's throughput elements, else per iteration), the best peer, and
fiberalloc's ratio to it (below 1.00 means fiberalloc is faster).
"""
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "criterion")
OURS = "fiberalloc"


def per_op(group, name):
    d = os.path.join(ROOT, group, name, "new")
    try:
        with open(os.path.join(d, "estimates.json")) as f:
            median = json.load(f)["median"]["point_estimate"]
        with open(os.path.join(d, "benchmark.json")) as f:
            tp = json.load(f).get("throughput") or {}
    except (OSError, KeyError, ValueError):
        return None
    elements = tp.get("Elements") or tp.get("Bytes") or 1
    return median / elements


def main():
    args = sys.argv[1:]
    summary = "--summary" in args
    prefixes = [a for a in args if a != "--summary"]
    if not os.path.isdir(ROOT):
        sys.exit("no criterion results under target/criterion: run cargo bench first")
    groups = sorted(g for g in os.listdir(ROOT) if g != "report" and (not prefixes or any(g.startswith(p) for p in prefixes)))
    rows = []
    for g in groups:
        names = sorted(n for n in os.listdir(os.path.join(ROOT, g)) if n != "report")
        vals = {n: per_op(g, n) for n in names}
        vals = {n: v for n, v in vals.items() if v is not None}
        ours = {n: v for n, v in vals.items() if n.startswith(OURS)}
        peers = {n: v for n, v in vals.items() if not n.startswith(OURS)}
        rows.append((g, ours, peers))
    if summary:
        print("| row | fiberalloc | best peer | ratio |")
        print("|---|---:|---|---:|")
        for g, ours, peers in rows:
            if OURS not in ours or not peers:
                continue
            name, best = min(peers.items(), key=lambda kv: kv[1])
            print(f"| {g} | {ours[OURS]:.3f} | {name} {best:.3f} | {ours[OURS] / best:.2f}x |")
        return
    print("| row | contender | ns/op (median) | vs best peer |")
    print("|---|---|---:|---:|")
    for g, ours, peers in rows:
        best = min(peers.items(), key=lambda kv: kv[1]) if peers else None
        for n, v in sorted(ours.items()) + sorted(peers.items(), key=lambda kv: kv[1]):
            ratio = f"{v / best[1]:.2f}x" if best and n.startswith(OURS) else ("best peer" if best and n == best[0] else "")
            print(f"| {g} | {n} | {v:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
