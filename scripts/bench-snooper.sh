#!/usr/bin/env bash
# The Traffic Snooper's binaries on N generated frames (distinct UDP frames
# of 60-1514 bytes, every tenth sent twice as a mirror would): prints
# packets/s from wall time (of the whole pipeline, the measured module
# started first) and from that module's CPU time (user + system).
#
#   scripts/bench-snooper.sh            N=200000 frames
#   N=1000000 scripts/bench-snooper.sh
#
#   1. packet_capture -r FILE → b:                 (reading and encoding)
#   2. packet_capture -r FILE → packet_dedup → b:  (dedup's rate)
#   3. packet_capture -r FILE → packet_store SQLite (WAL), batches of 1000
#   4. the same into PostgreSQL (a server the script starts, if installed)
#   5. live: tcpreplay --topspeed onto a veth, packet_capture -I on its peer
#      into b: (with and without packet_dedup): frames captured, kernel drops
#      (needs root; skipped otherwise)
#
# Benchmarks measure; nothing here asserts a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
cargo build --release -q -p packet_capture -p packet_dedup -p packet_store
R=$PWD/target/release
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
chmod 755 "$work"
ns=snbench$$
pg=""
cleanup() {
    [ -n "$pg" ] && runuser -u postgres -- "$pg/pg_ctl" -D "$work/pgdata" -m immediate stop > /dev/null 2>&1 || true
    ip netns del "$ns" 2> /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export TRAP_SOCKET_DIR=$work
cd "$work"

python3 - "$N" <<'PY'
import struct, sys, random
n = int(sys.argv[1]); random.seed(7)
with open("frames.pcap", "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    i = 0; out = 0
    while out < n:
        size = random.choice([60, 60, 66, 100, 590, 1514])
        eth = bytes([2,0,0,0,0,2, 2,0,0,0,0,1]) + b"\x08\x00"
        iplen = size - 14
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, iplen, i & 0xffff, 0, 64, 17, 0,
                         bytes([198,51,100,1]), bytes([203,0,113,(i % 250) + 1]))
        udp = struct.pack("!HHHH", 1024 + i % 60000, 53, iplen - 20, 0) + struct.pack("!I", i)
        frame = (eth + ip + udp).ljust(size, b"\xa5")
        sec, us = 1764770400 + i // 100000, (i % 100000) * 10
        for _ in range(2 if i % 10 == 0 else 1):
            f.write(struct.pack("<IIII", sec, us, len(frame), len(frame)) + frame)
            out += 1
        i += 1
PY
frames=$(python3 -c "
import struct
b=open('frames.pcap','rb').read(); at=24; n=0
while at < len(b): at += 16 + struct.unpack_from('<I', b, at+8)[0]; n += 1
print(n)")
echo "frames: $frames ($(du -h frames.pcap | cut -f1)) in $work"

TIMEFORMAT='%R %U %S'
rate() { # name wall user sys
    python3 -c "
w,u,s=$2,$3,$4
print(f'{\"$1\":<44} {$frames/w:>12,.0f} pkt/s wall {$frames/max(u+s,1e-9):>12,.0f} pkt/s CPU')"
}
timed() { # name cmd... : times the command, prints its rate
    local name=$1; shift
    local t
    t=$( { time "$@" > /dev/null 2> "$work/err"; } 2>&1 ) || { cat "$work/err" >&2; return 1; }
    rate "$name" $t
}

timed "packet_capture -r → b:" "$R/packet_capture" -r frames.pcap -i b:

# Dedup measured on its own while the capture feeds it.
sink() { "$R/packet_dedup" -i u:raw,b: ; }
( sleep 0.05; "$R/packet_capture" -r frames.pcap -i u:raw 2> /dev/null ) &
timed "packet_capture -r → packet_dedup → b: (dedup)" "$R/packet_dedup" -i u:raw,b:
wait

store() { # label db...
    local label=$1; shift
    ( sleep 0.05; "$R/packet_capture" -r frames.pcap -i u:raw 2> /dev/null ) &
    timed "$label" "$R/packet_store" --db "$@" --batch 1000 -i u:raw
    wait
}
store "packet_store SQLite (WAL, dedup)" "$work/snoop.sqlite"
rm -f "$work"/nodedup.sqlite*
store "packet_store SQLite (WAL, --no-dedup)" "$work/nodedup.sqlite" --no-dedup

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -1 || true)
if [ -n "$pgbin" ] && [ "$(id -u)" = 0 ]; then
    mkdir pgdata && chown postgres:postgres pgdata
    runuser -u postgres -- "$pgbin/initdb" -D "$work/pgdata" -A trust -U postgres --no-sync > /dev/null
    port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pgdata" -l "$work/pgdata/log" -w \
        -o "-p $port -k $work/pgdata -c listen_addresses=127.0.0.1" start > /dev/null
    pg=$pgbin
    store "packet_store PostgreSQL (dedup)" "postgres://postgres@127.0.0.1:$port/postgres"
else
    echo "PostgreSQL: skipped (needs Debian's postgresql and root)"
fi

if [ "$(id -u)" = 0 ] && command -v tcpreplay > /dev/null; then
    ip netns add "$ns"
    ip -n "$ns" link add snbr0 type veth peer name snbr1
    ip -n "$ns" link set snbr0 mtu 9000 up
    ip -n "$ns" link set snbr1 mtu 9000 up
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
    live() { # label dedup(0/1): the capture into b:, or through packet_dedup into b:
        local out=b: dd=""
        if [ "$2" = 1 ]; then
            out=u:live
            "$R/packet_dedup" -i u:live,b: 2> /dev/null &
            dd=$!
        fi
        ip netns exec "$ns" "$R/packet_capture" -I snbr1 -B 256 -i "$out" 2> "$work/cap.err" &
        local cap=$!
        sleep 1
        local rated
        rated=$(ip netns exec "$ns" tcpreplay --topspeed -i snbr0 frames.pcap 2>&1 | grep -E "Rated:" | head -1)
        sleep 1
        kill -INT $cap; wait $cap || true
        [ -n "$dd" ] && { wait "$dd" || true; }
        local sent dropped
        sent=$(grep "Packets sent" "$work/cap.err" | awk '{print $NF}')
        dropped=$(grep "Kernel dropped" "$work/cap.err" | awk '{print $NF}')
        echo "$1 — tcpreplay ${rated#*Rated: }; captured $sent of $frames, kernel dropped $dropped"
    }
    live "veth, packet_capture → b:" 0
    live "veth, packet_capture → packet_dedup → b:" 1
else
    echo "live veth: skipped (needs root and tcpreplay)"
fi
