#!/usr/bin/env bash
# sflow_collector benchmark: samples/s decoded into UniRec records, in
# memory (sflow_bench mem: no sockets) and over UDP on loopback (sflow_bench
# send → sflow_collector --udp -i b:), at full speed and at fixed offered
# rates; the collector's summary tells what arrived and what its sequence
# numbers say was lost. One run of each; nothing asserted.
#
#   scripts/bench-sflow.sh                   500k datagrams in memory, 100k over UDP
#   DATAGRAMS=1000000 UDP=300000 scripts/bench-sflow.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATAGRAMS=${DATAGRAMS:-500000}
UDP=${UDP:-100000}
PORT=${PORT:-16399}

cargo build --release -q -p sflow_collector
R=$PWD/target/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2> /dev/null || true; rm -rf "$work"' EXIT
export TRAP_SOCKET_DIR=$work

echo "8 flow samples of 128-byte headers per datagram"
"$R/sflow_bench" mem "$DATAGRAMS"

udp_run() { # $1 = datagrams/s offered (empty: as fast as possible)
    "$R/sflow_collector" --udp "127.0.0.1:$PORT" -i b: -v 2> "$work/col.log" &
    local col=$!
    sleep 0.3
    local t0 t1
    t0=$(date +%s.%N)
    "$R/sflow_bench" send "127.0.0.1:$PORT" "$UDP" ${1:+"$1"}
    sleep 0.5
    t1=$(date +%s.%N)
    kill -INT $col
    wait $col || true
    local records lost
    records=$(sed -n 's/.* \([0-9]*\) records;.*/\1/p' "$work/col.log")
    lost=$(sed -n 's/.*lost by sequence: \([0-9]*\) datagrams.*/\1/p' "$work/col.log")
    echo "  received $records sample records, $lost datagrams lost (by sequence)"
}
echo "over UDP loopback, as fast as the sender goes:"
udp_run ""
for rate in 50000 100000; do
    echo "over UDP loopback, $rate datagrams/s offered ($((rate * 8)) samples/s):"
    udp_run "$rate"
done
