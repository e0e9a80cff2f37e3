#!/usr/bin/env python3
"""Checks the crate's layering against the table in docs/architecture.md.

Every `crate::NAME` path in src/ (in code, not in comments) must name a
module of a lower layer than the module it is written in. Items re-exported
at the crate root count as the module that defines them. Exits 1 with one
line per broken rule; silent and 0 when the layers hold.

Usage: python3 scripts/check-layers.py [REPO]   (REPO defaults to ..)
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
SRC = os.path.join(ROOT, "src")
TABLE = os.path.join(ROOT, "docs", "architecture.md")

# Root names that belong to another crate (allocator-api2's error type).
EXTERNAL = {"AllocError"}


def read_table():
    layers = {}
    row = re.compile(r"^\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|")
    with open(TABLE) as f:
        for line in f:
            m = row.match(line)
            if m:
                layers[m.group(2)] = int(m.group(1))
    if not layers:
        sys.exit(f"check-layers: no layer table found in {TABLE}")
    return layers


def strip_comments(text):
    # Block comments, then line comments (doc comments included); string
    # literals holding `//` are rare enough here to ignore.
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def module_of(path):
    rel = os.path.relpath(path, SRC)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def root_reexports(lib_text):
    """`pub use module::{A, B};` at the crate root: A and B belong to module."""
    owners = {}
    for m in re.finditer(r"pub use (\w+)::(\{[^}]*\}|\w+);", lib_text):
        names = re.findall(r"\w+", m.group(2))
        for n in names:
            owners[n] = m.group(1)
    return owners


def crate_paths(code):
    """(line, first segment) of every crate:: path, groups included."""
    for m in re.finditer(r"\bcrate::(\{|\w+)", code):
        line = code.count("\n", 0, m.start()) + 1
        if m.group(1) != "{":
            yield line, m.group(1)
            continue
        depth, i = 1, m.end()
        while depth and i < len(code):
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        inner = code[m.end() : i - 1]
        # Drop nested groups (`chunk::{self, X}` leaves `chunk::`).
        while re.search(r"\{[^{}]*\}", inner):
            inner = re.sub(r"\{[^{}]*\}", "", inner)
        top = [w.group(1) for w in (re.match(r"\s*(\w+)", part) for part in inner.split(",")) if w]
        for name in top:
            yield line, name


def main():
    layers = read_table()
    errors = []
    files = []
    for dirpath, _, names in os.walk(SRC):
        files += [os.path.join(dirpath, n) for n in names if n.endswith(".rs")]
    with open(os.path.join(SRC, "lib.rs")) as f:
        owners = root_reexports(strip_comments(f.read()))
    present = {module_of(p) for p in files}
    for missing in sorted(present - set(layers)):
        errors.append(f"src/{missing}: module {missing} is not in the table of docs/architecture.md")
    for gone in sorted(set(layers) - present):
        errors.append(f"docs/architecture.md: {gone} is in the table but src/ has no such module")
    for path in sorted(files):
        me = module_of(path)
        if me not in layers:
            continue
        with open(path) as f:
            code = strip_comments(f.read())
        for line, name in crate_paths(code):
            if name in EXTERNAL:
                continue
            target = owners.get(name, name)
            if target == me:
                continue
            rel = os.path.relpath(path, ROOT)
            if target not in layers:
                errors.append(f"{rel}:{line}: crate::{name} is not a module of the table")
            elif layers[target] >= layers[me]:
                errors.append(
                    f"{rel}:{line}: {me} (layer {layers[me]}) uses crate::{name}"
                    + (f" (from {target})" if target != name else "")
                    + f" (layer {layers[target]}): "
                    + ("an arrow runs back up" if layers[target] > layers[me] else "same layer; only lower layers may be used")
                )
    for e in errors:
        print(e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
