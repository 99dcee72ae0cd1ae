#!/usr/bin/env bash
# The project's test command: builds every binary (the integration tests run
# them) and runs all unit, golden and pipeline tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ ! -d ../shared/data ]; then
    # The tests themselves print "skipped: …" (shown with --nocapture).
    echo "test: ../shared/data is missing next to the repository: the tests that read it skip" >&2
fi
cargo build --workspace --bins
cargo test --workspace
