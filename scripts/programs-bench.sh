#!/usr/bin/env bash
# Real programs on fiberalloc and its peers: wall time and peak RSS.
#
#   scripts/programs-bench.sh [ROUNDS]
#
# Runs python3 (capi/programs/workload.py: threads, dicts, strings, JSON, a
# subprocess), g++ (compiling capi/programs/stdlib.cpp, much of the standard
# library, to assembly) and sqlite3 (capi/programs/workload.sql) under
# libfiberalloc_malloc.so, glibc, jemalloc, tcmalloc and mimalloc (Debian's
# packages, installed when missing) by LD_PRELOAD, one run per allocator per
# round with the order rotating (ROUNDS, default 5), and prints medians and
# ratios as scripts/mimalloc-bench.sh does. scripts/capi-programs.sh checks
# that the same programs give the same output; this one only times them.
set -euo pipefail
rounds=${1:-5}
cd "$(dirname "$0")/.."
root=$PWD
peer() { ldconfig -p | awk -v n="$1" '$1 == n { print $NF; exit }'; }
if [ -z "$(peer libjemalloc.so.2)" ] || [ -z "$(peer libmimalloc.so.2)" ] \
    || [ -z "$(peer libtcmalloc_minimal.so.4)" ] || ! [ -x /usr/bin/time ]; then
    echo "installing the peers (libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4) and GNU time"
    apt-get update -qq && apt-get install -y -qq libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 time >/dev/null
fi
cargo build -q -p fiberalloc-malloc --profile capi
exec python3 "$root/scripts/mimalloc-bench.py" --programs "$root" "$rounds" \
    "fiberalloc=$root/target/capi/libfiberalloc_malloc.so" \
    "glibc=" \
    "jemalloc=$(peer libjemalloc.so.2)" \
    "tcmalloc=$(peer libtcmalloc_minimal.so.4)" \
    "mimalloc=$(peer libmimalloc.so.2)"
