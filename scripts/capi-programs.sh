#!/usr/bin/env bash
# Real programs on libfiberalloc_malloc.so (LD_PRELOAD), each checked against
# the same run on the system allocator: same output, exit status 0.
#   - python3: capi/programs/workload.py (threads, dicts, strings, JSON, a
#     subprocess), then a part of CPython's own test suite (when the
#     interpreter has its `test` package);
#   - sqlite3: capi/programs/workload.sql (80,000 rows, indexes, joins,
#     updates, deletes, VACUUM);
#   - g++: compiles capi/programs/stdlib.cpp (much of the standard library)
#     to assembly, which must be byte-identical, then links and runs it.
# Usage: scripts/capi-programs.sh   (builds the library with --profile capi)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p fiberalloc-malloc --profile capi
so="$PWD/target/capi/libfiberalloc_malloc.so"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

both() { # name, command...: run on the system allocator and on fiberalloc, compare
    local name=$1
    shift
    local t0=$(date +%s)
    "$@" >"$out/$name.sys" 2>&1 || { echo "FAIL $name: failed on the system allocator" >&2; cat "$out/$name.sys" >&2; exit 1; }
    LD_PRELOAD="$so" "$@" >"$out/$name.fa" 2>&1 || { echo "FAIL $name: exit status $? on fiberalloc" >&2; tail -20 "$out/$name.fa" >&2; exit 1; }
    if ! cmp -s "$out/$name.sys" "$out/$name.fa"; then
        echo "FAIL $name: output differs from the system allocator's" >&2
        diff "$out/$name.sys" "$out/$name.fa" | head -20 >&2
        exit 1
    fi
    echo "ok   $name: same output as on the system allocator, exit 0 ($(( $(date +%s) - t0 )) s for both runs, $(wc -l <"$out/$name.fa") lines)"
}

# The library really is loaded (a wrong path would only make ld.so warn).
LD_PRELOAD="$so" grep -q libfiberalloc_malloc /proc/self/maps \
    || { echo "FAIL $so is not loaded by LD_PRELOAD" >&2; exit 1; }

both python-workload python3 capi/programs/workload.py
if python3 -c 'import test.support' 2>/dev/null; then
    # Summaries differ in timing only: compare the verdict lines.
    tests="test_json test_dict test_set test_list test_unicode test_re test_subprocess"
    both python-tests sh -c "python3 -m test -j2 $tests 2>&1 | grep -E '^(Result|Total tests|Total test files):'"
    grep -q "Result: SUCCESS" "$out/python-tests.fa" || { echo "FAIL python-tests did not pass" >&2; exit 1; }
else
    echo "skip python-tests: this python3 has no test package (Debian: libpython3-testsuite)"
fi
both sqlite3 sh -c "sqlite3 < capi/programs/workload.sql"
both g++-asm sh -c "g++ -O2 -std=c++17 -S -o - capi/programs/stdlib.cpp"
both g++-run sh -c "g++ -O2 -std=c++17 -pthread -o $out/stdlib capi/programs/stdlib.cpp && $out/stdlib"
