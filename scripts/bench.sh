#!/usr/bin/env bash
# Pipeline benchmarks on 1,000,000 generated flow records; prints records/s.
#
#   scripts/bench.sh              our modules only
#   NEMEA_C_BIN=/path/to/bin scripts/bench.sh
#                                 also C NEMEA's logger, logreplay and
#                                 traffic_repeater from that directory, on the
#                                 same data, for comparison
#
# Benchmarks measure; nothing here asserts a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
cargo build --release --workspace --bins -q
R=$PWD/target/release
# In memory when possible, so that disk write-back does not blur the numbers.
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
export TRAP_SOCKET_DIR=$work
cd "$work"

"$R/flow_generator" -n "$N" -i f:flows.trapcap
"$R/logger" -t -i f:flows.trapcap > flows.csv

now() { date +%s.%N; }
rate() { python3 -c "import sys; n,s=int(sys.argv[1]),float(sys.argv[2]); print(f'{s:7.3f} s  {n/s/1e6:6.2f} M records/s')" "$N" "$1"; }

# best_of CMD...: the shortest of three runs, in seconds.
best_of() {
    local best="" t0 t1 d
    for _ in 1 2 3; do
        t0=$(now); "$@"; t1=$(now)
        d=$(echo "$t1 - $t0" | bc)
        if [ -z "$best" ] || [ "$(echo "$d < $best" | bc)" = 1 ]; then best=$d; fi
    done
    echo "$best"
}

socket_pipeline() {
    "$1/logger" -i "u:bench_$2" > /dev/null &
    "$1/traffic_repeater" -i "f:flows.trapcap,u:bench_$2" 2> /dev/null
    wait
}

run_suite() {
    local who=$1 B=$2
    printf '%-4s %-40s %s\n' "$who" "logger -t, f: -> /dev/null" \
        "$(rate "$(best_of sh -c "'$B/logger' -t -i f:flows.trapcap > /dev/null")")"
    printf '%-4s %-40s %s\n' "$who" "f: -> traffic_repeater -> u: -> logger" \
        "$(rate "$(best_of socket_pipeline "$B" "$who")")"
    printf '%-4s %-40s %s\n' "$who" "logreplay CSV -> f:" \
        "$(rate "$(best_of "$B/logreplay" -f flows.csv -i "f:replay_$who.trapcap")")"
    printf '%-4s %-40s %s\n' "$who" "traffic_repeater f: -> f:" \
        "$(rate "$(best_of sh -c "'$B/traffic_repeater' -i f:flows.trapcap,f:copy_$who.trapcap 2> /dev/null")")"
    rm -f "replay_$who.trapcap" "copy_$who.trapcap"
}

echo "$N records of: $(head -1 flows.csv)"
echo "(best of 3 runs, data in $work)"
run_suite rs "$R"
if [ -n "${NEMEA_C_BIN:-}" ]; then
    run_suite c "$NEMEA_C_BIN"
fi
