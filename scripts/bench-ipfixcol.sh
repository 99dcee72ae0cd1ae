#!/usr/bin/env bash
# ipfixcol benchmark: flow records/s decoded into UniRec, from a file of
# recorded IPFIX messages (flow_meter's export of a generated capture) and
# from the same messages replayed over UDP at full rate, next to nfcapd
# (nfdump) receiving the same replay. One run of each; nothing asserted.
#
#   scripts/bench-ipfixcol.sh                      1M packets, 200k flows
#   PACKETS=3000000 FLOWS=300000 scripts/bench-ipfixcol.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PACKETS=${PACKETS:-1000000}
FLOWS=${FLOWS:-200000}
LOOPS=${LOOPS:-5}
cargo build --release -q -p flow_meter -p ipfixcol
R=$PWD/target/release
if ! command -v nfcapd > /dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nfdump > /dev/null || true
fi
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'kill $(jobs -p) 2> /dev/null || true; rm -rf "$work"' EXIT
cd "$work"
export TRAP_SOCKET_DIR=$work
"$R/pcap_generator" -n "$PACKETS" -f "$FLOWS" -w gen.pcap

# Record flow_meter's IPFIX over TCP: the stream is a file of messages.
python3 - 47391 flows.ipfix <<'EOF' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
c, _ = s.accept()
with open(sys.argv[2], "wb") as f:
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        f.write(b)
EOF
rec=$!
sleep 0.5
"$R/flow_meter" -r gen.pcap -i b: -x 127.0.0.1:47391 2> /dev/null
wait $rec
records=$(python3 - flows.ipfix <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read(); at = 0; msgs = 0
while at + 16 <= len(d):
    l = struct.unpack(">H", d[at + 2:at + 4])[0]; msgs += 1; at += l
print(msgs)
EOF
)
n=$("$R/ipfixcol" -r flows.ipfix -i b: 2>&1 | sed -n 's/.* \([0-9]*\) flow records.*/\1/p')
echo "recorded: $records IPFIX messages, $n flow records ($(du -h flows.ipfix | cut -f1))"

rate() { python3 -c "import sys; print(f'{int(sys.argv[1])/float(sys.argv[2])/1e6:.2f} M records/s')" "$1" "$2"; }

# From the file (decoding and UniRec conversion; one core).
/usr/bin/time -f "%e" -o t.txt "$R/ipfixcol" -r flows.ipfix -i b: 2> /dev/null
echo "ipfixcol -r file -i b:              $(cat t.txt) s  $(rate "$n" "$(cat t.txt)")"

# UDP replay at full rate, LOOPS times over (sequence numbers restart each
# loop: a jump back is not counted as loss).
replay() {
    python3 - flows.ipfix "$1" "$LOOPS" <<'EOF'
import socket, struct, sys, time
d = open(sys.argv[1], "rb").read(); msgs = []; at = 0
while at + 16 <= len(d):
    l = struct.unpack(">H", d[at + 2:at + 4])[0]; msgs.append(d[at:at + l]); at += l
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
dst = ("127.0.0.1", int(sys.argv[2])); t = time.time()
for _ in range(int(sys.argv[3])):
    for m in msgs:
        s.sendto(m, dst)
print(f"{time.time() - t:.2f}")
EOF
}
"$R/ipfixcol" --udp 127.0.0.1:47392 -i b: 2> col.txt &
col=$!
sleep 0.5
secs=$(replay 47392)
sleep 1
kill -INT $col; wait $col || true
got=$(sed -n 's/.* \([0-9]*\) flow records.*/\1/p' col.txt)
offered=$((n * LOOPS))
echo "ipfixcol --udp (replay ${secs} s)      received $got of $offered records: $(rate "$got" "$secs")"
if command -v nfcapd > /dev/null; then
    mkdir -p nf
    nfcapd -w nf -p 47393 -b 127.0.0.1 > /dev/null 2>&1 &
    nf=$!
    sleep 0.5
    secs=$(replay 47393)
    sleep 1
    kill -TERM $nf; wait $nf || true
    got=$(nfdump -R nf -q -o "fmt:%pkt" 2> /dev/null | wc -l)
    echo "nfcapd (replay ${secs} s)                received $got of $offered records: $(rate "$got" "$secs")"
fi
