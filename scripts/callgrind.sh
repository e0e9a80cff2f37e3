#!/usr/bin/env bash
# Instructions per operation, counted by callgrind (stable on a noisy
# machine), for fiberalloc and its peers: a typed `u64` allocation, a
# runtime-layout allocation (sizes 24-200; making the layouts is
# subtracted), a push and a `reserve_exact(1)` + push on each allocator's
# own vector, and a warm-up (new arena + one allocation + drop); then the
# same for `GlobalArena`'s paths (benches/bin/probe_global.rs). Each
# count is per loop iteration, loop and `black_box` included.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p fiberalloc-benches --bin probe --bin probe-global -q
bin=target/release/probe
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" 2>&1 \
        | awk '/refs:/ { gsub(",", "", $NF); print $NF }'
}
printf '| row | fiberalloc | bumpalo | bump-scope | blink-alloc |\n|---|---:|---:|---:|---:|\n'
for row in typed runtime push exact warm; do
    line="| $row"
    for who in fiberalloc bumpalo bump-scope blink-alloc; do
        if [ "$row/$who" = exact/bumpalo ]; then line="$line | quadratic"; continue; fi
        small=$(count "$who" "$row" 1000)
        large=$(count "$who" "$row" 201000)
        if [ "$row" = runtime ]; then
            # Subtract making the layouts and walking them.
            small=$(( small - $(count "$who" runtime-baseline 1000) ))
            large=$(( large - $(count "$who" runtime-baseline 201000) ))
        fi
        line="$line | $(( (large - small) / 200000 ))"
    done
    echo "$line |"
done

# The cost of the Safe and Debug policies on the same rows (Fast is the
# fiberalloc column above).
printf '\n| row | Fast | Safe | Debug |\n|---|---:|---:|---:|\n'
for row in typed exact; do
    line="| $row"
    for who in fiberalloc fiberalloc-safe fiberalloc-debug; do
        small=$(count "$who" "$row" 1000)
        large=$(count "$who" "$row" 201000)
        line="$line | $(( (large - small) / 200000 ))"
    done
    echo "$line |"
done

# GlobalArena as the global allocator: an allocation (48 bytes: the small
# owner; 200: the medium one), a free into the thread cache, a ring step
# (a free and an allocation through the cache), a free of another
# thread's block, and an in-place growth by `realloc`. `free` and `remote`
# have the allocations subtracted.
gbin=target/release/probe-global
gcount() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$gbin" "$@" 2>&1 \
        | awk '/refs:/ { gsub(",", "", $NF); print $NF }'
}
per_op() { echo $(( ($(gcount "$1" 201000) - $(gcount "$1" 1000)) / 200000 )); }
global_rows() { # the rows of "$gbin", under the title "$1"
    local alloc
    alloc=$(per_op alloc)
    printf '\n| %s | instructions |\n|---|---:|\n' "$1"
    printf '| alloc 48 B | %s |\n' "$alloc"
    printf '| free 48 B (to the cache) | %s |\n' "$(( $(per_op free) - alloc ))"
    printf '| ring step (free + alloc) | %s |\n' "$(per_op ring)"
    printf '| alloc 200 B | %s |\n' "$(per_op medium)"
    printf '| remote free 48 B | %s |\n' "$(( $(per_op remote) - alloc ))"
    printf '| free 48 B of an exited thread | %s |\n' "$(( $(per_op exited) - alloc ))"
    printf '| realloc +8 B in place | %s |\n' "$(per_op realloc)"
}
global_rows "GlobalArena row"

# The same rows through the C interface (capi/programs/probe.c), on
# libfiberalloc_malloc.so (the `c-abi` build: 16-byte classes, the class
# table written on every allocation and read by `free`) and on glibc's
# malloc for reference; then GlobalArena's Rust rows in the `c-abi` build,
# to show what the C build costs the Rust path.
cargo build -q -p fiberalloc-malloc --profile capi
cc -O2 -o target/capi/probe capi/programs/probe.c -pthread
so="$PWD/target/capi/libfiberalloc_malloc.so"
ccount() { # preload, row, n
    LD_PRELOAD="$1" valgrind --tool=callgrind --callgrind-out-file=/dev/null target/capi/probe "$2" "$3" 2>&1 \
        | awk '/refs:/ { gsub(",", "", $NF); print $NF }'
}
c_per_op() { echo $(( ($(ccount "$1" "$2" 201000) - $(ccount "$1" "$2" 1000)) / 200000 )); }
c_rows() { # preload: the seven rows' counts
    local a
    a=$(c_per_op "$1" alloc)
    echo "$a $(( $(c_per_op "$1" free) - a )) $(c_per_op "$1" ring) $(c_per_op "$1" medium)" \
        "$(( $(c_per_op "$1" remote) - a )) $(( $(c_per_op "$1" exited) - a )) $(c_per_op "$1" realloc)"
}
read -r -a fa <<<"$(c_rows "$so")"
read -r -a gl <<<"$(c_rows "")"
printf '\n| C row | fiberalloc-malloc | glibc |\n|---|---:|---:|\n'
names=("malloc 48 B" "free 48 B" "ring step (free + malloc)" "malloc 200 B" "remote free 48 B"
    "free 48 B of an exited thread" "realloc +16 B")
for i in 0 1 2 3 4 5 6; do
    printf '| %s | %s | %s |\n' "${names[$i]}" "${fa[$i]}" "${gl[$i]}"
done

# (This rebuilds probe-global with the feature, in place: the next run of
# the script rebuilds the default one first.)
cargo build -q --release -p fiberalloc-benches --bin probe-global --features fiberalloc/c-abi
cp target/release/probe-global target/capi/probe-global-c-abi
gbin=target/capi/probe-global-c-abi
global_rows "GlobalArena row, \`c-abi\` build"
