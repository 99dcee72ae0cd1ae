#!/usr/bin/env bash
# Throughput of libtrap's j: (NATS JetStream) interface beside t: (TCP), on
# N generated flow records (default 1,000,000); prints records/s.
#
#   scripts/bench-jetstream.sh        needs nats-server (scripts/setup.sh)
#
# j: publish   traffic_repeater f: -> j: (every batch acknowledged by the
#              server, file storage in the work directory)
# j: consume   traffic_repeater j: (durable pull consumer) -> b:, to the end
#              of stream
# t:           traffic_repeater f: -> t: -> traffic_repeater -> b:
# Benchmarks measure; nothing here asserts a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
command -v nats-server > /dev/null || { echo "needs nats-server (scripts/setup.sh)" >&2; exit 1; }
cargo build --release -q -p flow_generator -p traffic_repeater
R=$PWD/target/release
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2> /dev/null; wait 2> /dev/null; rm -rf "$work"; }
trap cleanup EXIT
export TRAP_SOCKET_DIR=$work
cd "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
rate() { python3 -c "import sys; n,s=int(sys.argv[1]),float(sys.argv[2]); print(f'{s:7.3f} s  {n/s/1e6:6.2f} M records/s')" "$N" "$1"; }
timed() { local t0 t1; t0=$(now); "$@"; t1=$(now); echo "$t1 - $t0" | bc; }

"$R/flow_generator" -n "$N" -i f:flows.trapcap
port=$(free_port)
nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/js" -l "$work/nats.log" &
server=$!
for _ in $(seq 100); do grep -q "Server is ready" nats.log 2> /dev/null && break; sleep 0.05; done
J="j:bench.flows:server=nats://127.0.0.1:$port"

echo "$N flow records; nats-server $(nats-server --version | awk '{print $NF}'), file storage in $work"
printf '%-44s %s\n' "j: publish (f: -> traffic_repeater -> j:)" \
    "$(rate "$(timed sh -c "'$R/traffic_repeater' -i 'f:flows.trapcap,$J' 2> /dev/null")")"
printf '%-44s %s\n' "j: consume (j: -> traffic_repeater -> b:)" \
    "$(rate "$(timed sh -c "'$R/traffic_repeater' -i '$J:durable=bench,b:' 2> /dev/null")")"
tport=$(free_port)
tcp() {
    "$R/traffic_repeater" -i "t:127.0.0.1:$tport,b:" 2> /dev/null &
    "$R/traffic_repeater" -i "f:flows.trapcap,t:127.0.0.1:$tport" 2> /dev/null
    wait %1
}
printf '%-44s %s\n' "t: (f: -> repeater -> t: -> repeater -> b:)" "$(rate "$(timed tcp)")"
