#!/usr/bin/env bash
# flow_meter benchmark: packets/s, flows/s and peak memory on a generated
# capture, next to the flow exporters a user could pick instead (Debian's
# softflowd and nfdump's nfpcapd, installed here if missing), one thread each;
# the app plugin (nDPI) next to nDPI's own ndpiReader (libndpi-bin).
#
#   scripts/bench-flow-meter.sh                 3M packets, 300k flows
#   PACKETS=2000000 FLOWS=100000 scripts/bench-flow-meter.sh
#   IPFIXPROBE=/path/to/ipfixprobe scripts/bench-flow-meter.sh   (also ipfixprobe -p basic, blackhole output)
#
# Benchmarks measure; nothing here asserts a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKETS=${PACKETS:-3000000}
FLOWS=${FLOWS:-300000}
cargo build --release -q -p flow_meter
R=$PWD/target/release
if ! command -v softflowd > /dev/null || ! command -v nfpcapd > /dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softflowd nfdump > /dev/null || true
fi
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$R/pcap_generator" -n "$PACKETS" -f "$FLOWS" -w big.pcap
echo "capture: $PACKETS packets, $FLOWS flows, $(du -h big.pcap | cut -f1) (in $work)"

# measure NAME CMD...: wall time and peak RSS of the best of 3 runs (the
# time is left in $best for the per-plugin costs).
best=""
measure() {
    local name=$1 rss=""
    best=""
    shift
    for _ in 1 2 3; do
        /usr/bin/time -f "%e %M" -o t.txt "$@" > /dev/null 2> err.txt || { echo "$name failed: $(tail -1 err.txt)"; return; }
        read -r s kb < t.txt
        if [ -z "$best" ] || [ "$(echo "$s < $best" | bc)" = 1 ]; then best=$s; rss=$kb; fi
    done
    python3 -c "import sys; n,s,kb=int(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]); print(f'{sys.argv[4]:<34} {s:6.2f} s  {n/s/1e6:6.2f} M packets/s  peak RSS {kb/1024:6.1f} MiB')" "$PACKETS" "$best" "$rss" "$name"
}

measure "flow_meter -r big.pcap -i b:" "$R/flow_meter" -r big.pcap -i b: -v
basic_s=$best
measure "flow_meter -i b: -x (IPFIX, UDP)" "$R/flow_meter" -r big.pcap -i b: -x 127.0.0.1:9 -u -v
measure "flow_meter -p http,dns,tls" "$R/flow_meter" -r big.pcap -p http,dns,tls -i b: -v
measure "flow_meter -p app (nDPI)" "$R/flow_meter" -r big.pcap -p app -i b: -v
python3 -c "import sys; b,a=float(sys.argv[1]),float(sys.argv[2]); print(f'  app costs {(a-b)/b*100:.0f} % over -p basic ({(a-b)/int(sys.argv[3])*1e9:.0f} ns/packet)')" "$basic_s" "$best" "$PACKETS"
if command -v ndpiReader > /dev/null; then
    measure "ndpiReader -i big.pcap" ndpiReader -i big.pcap -q
fi
all=$("$R/flow_meter" -p list | awk '$1 != "basic" {print $1}' | paste -sd, -)
measure "flow_meter -p (all $(echo "$all" | tr , '\n' | wc -l) plugins)" "$R/flow_meter" -r big.pcap -p "$all" -i b: -v
if [ -n "${IPFIXPROBE:-}" ]; then
    measure "ipfixprobe -p basic (blackhole)" "$IPFIXPROBE" -i "pcap;file=big.pcap" -o "unirec;i=b:"
    measure "ipfixprobe -p http -p dns -p tls" "$IPFIXPROBE" -i "pcap;file=big.pcap" -p http -p dns -p tls -o "unirec;i=b:;p=(http,dns,tls)"
fi
if [ "${PER_PLUGIN:-1}" = 1 ]; then
    echo "cost of each plugin alone (time over -p basic, per packet of the capture):"
    for p in $(echo "$all" | tr , ' '); do
        measure "  -p $p" "$R/flow_meter" -r big.pcap -p "$p" -i b: -v > /dev/null
        python3 -c "import sys; print(f'  {sys.argv[1]:<12} {max(0.0, (float(sys.argv[2]) - float(sys.argv[3])) / int(sys.argv[4]) * 1e9):7.1f} ns/packet')" "$p" "$best" "$basic_s" "$PACKETS"
    done
fi
if command -v softflowd > /dev/null; then
    measure "softflowd -r big.pcap" softflowd -r big.pcap -n 127.0.0.1:9 -d
fi
if command -v nfpcapd > /dev/null; then
    mkdir -p nf
    measure "nfpcapd -r big.pcap" nfpcapd -r big.pcap -w nf
fi
