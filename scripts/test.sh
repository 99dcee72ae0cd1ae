#!/usr/bin/env bash
# The project's test command: builds every binary (the integration tests run
# them) and runs all unit, golden and pipeline tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --workspace --bins
cargo test --workspace
