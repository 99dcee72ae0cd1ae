#!/usr/bin/env bash
# Runs every fuzz target of fuzz/Cargo.toml, one after the other, for
# SECONDS each (default 60; `scripts/fuzz.sh 600` is the long run), and
# prints each one's executions. Needs the nightly toolchain and cargo-fuzz.
# Stops at the first crash (its input is in fuzz/artifacts/TARGET/).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^nemea-fuzz$')
cargo +nightly fuzz build
for t in $targets; do
    log="fuzz/target/$t.log"
    mkdir -p fuzz/target
    if ! cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 > "$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz: $t crashed (log: $log)" >&2
        exit 1
    fi
    echo "$t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log")"
done
