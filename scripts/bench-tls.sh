#!/usr/bin/env bash
# Throughput of T: (TLS) beside t: (TCP) and u: on loopback: 1,000,000
# generated flow records (N=...), traffic_repeater f: → IFC → traffic_repeater
# IFC → b:, best of 5; prints records/s. Certificates: a throwaway CA with a
# server and a client certificate (EC P-256 for the client, RSA 2048 for the
# server), made by openssl in the work directory.
#
#   scripts/bench-tls.sh
#   NEMEA_C_BIN=/path/to/bin scripts/bench-tls.sh
#                        also C NEMEA's traffic_repeater (libtrap's u:, t:, T:)
#
# Benchmarks measure; nothing here asserts a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
cargo build --release -q -p traffic_repeater -p flow_generator
R=$PWD/target/release
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
export TRAP_SOCKET_DIR=$work
cd "$work"

ssl() { openssl "$@" 2> /dev/null; }
ssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
    -out ca.crt -days 1 -subj /CN=bench-ca -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' > leaf.ext
ssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=server
ssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key \
    -out client.csr -subj /CN=client
for who in server client; do
    ssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -set_serial $RANDOM -days 1 \
        -out $who.crt -extfile leaf.ext
done

"$R/flow_generator" -n "$N" -i f:flows.trapcap

now() { date +%s.%N; }
rate() { python3 -c "import sys; n,s=int(sys.argv[1]),float(sys.argv[2]); print(f'{s:7.3f} s  {n/s/1e6:6.2f} M records/s')" "$N" "$1"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
hexport=$(printf '%04X ' "$port")
# listening OUT: waits until the output's socket or TCP port is there.
listening() {
    for _ in $(seq 500); do
        case $1 in
            u:*) [ -S "trap-${1#u:}.sock" ] && return ;;
            *) grep -q ":$hexport.* 0A " /proc/net/tcp && return ;;
        esac
        sleep 0.01
    done
    echo "the output $1 never listened" >&2; exit 1
}
# transfer OUT IN: the output starts first and waits (WAIT) for its reader;
# the time runs from the reader's start until both have finished.
# A run that fails (C libtrap's T: input ends quietly when a connect fails)
# is stopped after 60 s and stands out as such.
transfer() {
    timeout 60 "$B/traffic_repeater" -i "f:flows.trapcap,$1" > /dev/null 2>&1 &
    listening "$1"
    local t0 t1
    t0=$(now)
    timeout 60 "$B/traffic_repeater" -i "$2,b:" > /dev/null 2>&1 || true
    wait || true
    t1=$(now)
    echo "$t1 - $t0" | bc
}
best_of() {
    local best="" d
    for _ in 1 2 3 4 5; do
        d=$("$@")
        if [ -z "$best" ] || [ "$(echo "$d < $best" | bc)" = 1 ]; then best=$d; fi
    done
    echo "$best"
}
echo "$N records, traffic_repeater f: -> IFC -> traffic_repeater -> b: (best of 5, data in $work)"
suite() {
    local who=$1 B=$2
    printf '%-3s %-4s %s\n' "$who" "u:" "$(rate "$(best_of transfer "u:bench_$who" "u:bench_$who")")"
    printf '%-3s %-4s %s\n' "$who" "t:" "$(rate "$(best_of transfer "t:$port" "t:127.0.0.1:$port")")"
    printf '%-3s %-4s %s\n' "$who" "T:" "$(rate "$(best_of transfer "T:$port:server.key:server.crt:ca.crt" \
        "T:127.0.0.1:$port:client.key:client.crt:ca.crt")")"
}
suite rs "$R"
if [ -n "${NEMEA_C_BIN:-}" ]; then
    suite c "$NEMEA_C_BIN"
fi
