#!/usr/bin/env bash
# Instructions per typed `u64` allocation, per warm-up (Arena::new + one
# allocation + drop) and per `reserve_exact(1)` + push, counted by
# callgrind: stable on a noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example callgrind_probe -q
bin=target/release/examples/callgrind_probe
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 \
        | awk '/refs:/ { gsub(",", "", $NF); print $NF }'
}
for what in typed warm exact; do
    small=$(count "$what" 1000)
    large=$(count "$what" 1001000)
    echo "$what: $(( (large - small) / 1000000 )) instructions per operation"
done
