#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (they need the nightly toolchain and
# cargo-fuzz: `rustup toolchain install nightly`, `cargo install cargo-fuzz`).
#
#   scripts/fuzz.sh                 every target for 10 s (the smoke CI runs)
#   scripts/fuzz.sh 600             every target for 10 minutes
#   scripts/fuzz.sh 600 TARGET...   only these targets
#
# A crash stops the run with libFuzzer's report; the input that crashed is in
# fuzz/artifacts/TARGET/. Corpora grow in fuzz/corpus/TARGET/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-10}
shift || true
if ! rustup run nightly rustc --version > /dev/null 2>&1; then
    echo "fuzz: no nightly toolchain (rustup toolchain install nightly): skipped" >&2
    exit 0
fi
if ! cargo fuzz --version > /dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing (cargo install --locked cargo-fuzz): skipped" >&2
    exit 0
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -O > /dev/null
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log=$(mktemp)
    if ! cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 > "$log" 2>&1 \
        || ! grep -q "^Done" "$log"; then
        echo "fuzz: $t failed (log: $log)" >&2
        tail -30 "$log" >&2
        exit 1
    fi
    # libFuzzer's last line: "Done N runs in S second(s)".
    echo "fuzz: $t: $(grep "^Done" "$log")"
    rm -f "$log"
done
