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
"$R/ipfix_replay" record 47391 flows.ipfix &
rec=$!
sleep 0.3
"$R/flow_meter" -r gen.pcap -i b: -x 127.0.0.1:47391 2> /dev/null
wait $rec
n=$("$R/ipfixcol" -r flows.ipfix -i b: 2>&1 | sed -n 's/.* \([0-9]*\) flow records.*/\1/p')
echo "recorded: $n flow records ($(du -h flows.ipfix | cut -f1))"

rate() { python3 -c "import sys; print(f'{int(sys.argv[1])/float(sys.argv[2])/1e6:.2f} M records/s')" "$1" "$2"; }

# From the file (decoding and UniRec conversion; one core).
/usr/bin/time -f "%e" -o t.txt "$R/ipfixcol" -r flows.ipfix -i b: 2> /dev/null
echo "ipfixcol -r file -i b:      $(cat t.txt) s  $(rate "$n" "$(cat t.txt)")"

# UDP replays of SECS seconds at fixed rates (records/s; 0 = as fast as the
# sender goes). The replay renumbers the messages, so the collector's
# sequence check counts what the network dropped.
SECS=${SECS:-3}
RATES=${RATES:-"1000000 2000000 3000000 0"}
for r in $RATES; do
    flag=()
    [ "$r" != 0 ] && flag=(-r "$r")
    "$R/ipfixcol" --udp 127.0.0.1:47392 -i b: 2> col.txt &
    col=$!
    sleep 0.3
    sent=$("$R/ipfix_replay" send flows.ipfix 127.0.0.1:47392 "${flag[@]}" -s "$SECS")
    sleep 1
    kill -INT $col; wait $col || true
    got=$(sed -n 's/.* \([0-9]*\) flow records.*/\1/p' col.txt)
    lost=$(sed -n 's/.* \([0-9]*\) lost (sequence).*/\1/p' col.txt)
    echo "ipfixcol --udp at ${r/#0/full} rate: $sent; received $got, lost $lost"
    if command -v nfcapd > /dev/null; then
        rm -rf nf && mkdir nf
        nfcapd -w nf -p 47393 -b 127.0.0.1 > /dev/null 2>&1 &
        nf=$!
        sleep 0.3
        sent=$("$R/ipfix_replay" send flows.ipfix 127.0.0.1:47393 "${flag[@]}" -s "$SECS")
        sleep 1
        kill -TERM $nf; wait $nf || true
        got=$(nfdump -R nf -q -o "fmt:%pkt" 2> /dev/null | wc -l)
        echo "nfcapd          at ${r/#0/full} rate: $sent; received $got"
    fi
done
