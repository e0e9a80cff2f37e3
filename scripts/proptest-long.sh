#!/usr/bin/env bash
# The property test of tests/model.rs with 100,000 cases per policy
# (CI runs 256). Takes a long while; run it before a release.
set -euo pipefail
cd "$(dirname "$0")/.."
PROPTEST_CASES="${PROPTEST_CASES:-100000}" cargo test --release --test model -- --nocapture
