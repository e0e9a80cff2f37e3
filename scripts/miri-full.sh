#!/usr/bin/env bash
# Miri with strict provenance over every test binary that runs under it:
# the library's unit tests, the arena tests, the shared-arena tests, the
# model tests and GlobalArena's checks (tests/global.rs). About 25 minutes
# on the 2-core machine (global ~11, lib ~6, shared ~3, model ~2.5), so
# .ci/run runs only the quick arena binaries; run this before changing
# unsafe code in shared/, global/ or the chunk layer.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo +nightly miri setup
MIRIFLAGS="-Zmiri-strict-provenance" PROPTEST_CASES=4 \
    cargo +nightly miri test -p fiberalloc --lib \
        --test alignment --test errors --test realloc --test scope \
        --test reset --test collections --test model --test vec --test shared --test global
