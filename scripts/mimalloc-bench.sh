#!/usr/bin/env bash
# mimalloc-bench on fiberalloc and its peers.
#
#   scripts/mimalloc-bench.sh PATH [ROUNDS]
#
# PATH is a mimalloc-bench checkout (https://github.com/daanx/mimalloc-bench;
# its benchmarks are in PATH/bench). This builds the self-contained ones
# (larson, mstress, xmalloc-test, cache-scratch, glibc-bench's simple and
# thread, cfrac, espresso) with gcc/g++ into target/mimalloc-bench, builds
# libfiberalloc_malloc.so (--profile capi), and runs every benchmark under
# fiberalloc, glibc, jemalloc, tcmalloc and mimalloc (Debian's libjemalloc2,
# libtcmalloc-minimal4 and libmimalloc2.0, installed when missing), one run
# per allocator per round, the allocators' order rotating each round
# (ROUNDS, default 5). It prints the median wall time (for larson,
# xmalloc-test and glibc-thread, the suite's "relative time" from their own
# rates) and peak RSS of each, each one's ratio to the best peer, and the
# geometric means against mimalloc.
set -euo pipefail
src=${1:?usage: scripts/mimalloc-bench.sh PATH-TO-MIMALLOC-BENCH [ROUNDS]}
rounds=${2:-5}
[ -d "$src/bench" ] || { echo "$src/bench is not there: PATH must be a mimalloc-bench checkout" >&2; exit 1; }
src=$(cd "$src" && pwd)
cd "$(dirname "$0")/.."
root=$PWD
out="$root/target/mimalloc-bench"
mkdir -p "$out"

peer() { # soname: its path, from ldconfig
    ldconfig -p | awk -v n="$1" '$1 == n { print $NF; exit }'
}
if [ -z "$(peer libjemalloc.so.2)" ] || [ -z "$(peer libmimalloc.so.2)" ] \
    || [ -z "$(peer libtcmalloc_minimal.so.4)" ] || ! [ -x /usr/bin/time ]; then
    echo "installing the peers (libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4) and GNU time"
    apt-get update -qq && apt-get install -y -qq libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 time >/dev/null
fi

b="$src/bench"
w="-w -O2"
echo "building the benchmarks into $out"
g++ $w -DCPP=1 "$b/larson/larson.cpp" -o "$out/larson" -lpthread
gcc $w "$b/mstress/mstress.c" -o "$out/mstress" -lpthread
gcc $w "$b/xmalloc-test/xmalloc-test.c" -o "$out/xmalloc-test" -lpthread
g++ $w "$b/cache-scratch/cache-scratch.cpp" -o "$out/cache-scratch" -lpthread
gcc $w "$b/glibc-bench/bench-malloc-simple.c" -o "$out/glibc-simple" -lpthread
gcc $w "$b/glibc-bench/bench-malloc-thread.c" -o "$out/glibc-thread" -lpthread -lm
(cd "$b/cfrac" && gcc $w -std=gnu89 -DNOMEMOPT=1 cfrac.c pops.c pconst.c pio.c pabs.c pneg.c pcmp.c \
    podd.c phalf.c padd.c psub.c pmul.c pdivmod.c psqrt.c ppowmod.c atop.c ptoa.c itop.c utop.c \
    ptou.c errorp.c pfloat.c pidiv.c pimod.c picmp.c primes.c pcfrac.c pgcd.c -o "$out/cfrac" -lm)
(cd "$b/espresso" && gcc $w -std=gnu89 ./*.c -o "$out/espresso" -lm)
cp "$b/espresso/largest.espresso" "$out/"

cargo build -q -p fiberalloc-malloc --profile capi
exec python3 "$root/scripts/mimalloc-bench.py" "$out" "$rounds" \
    "fiberalloc=$root/target/capi/libfiberalloc_malloc.so" \
    "glibc=" \
    "jemalloc=$(peer libjemalloc.so.2)" \
    "tcmalloc=$(peer libtcmalloc_minimal.so.4)" \
    "mimalloc=$(peer libmimalloc.so.2)"
