#!/usr/bin/env bash
# session_probe's cost and read rate, in two network namespaces joined by a
# veth pair (root, iperf3 and python3 needed; nothing leaves the namespaces):
#
# 1. packets/s through the veth without a probe, with the eBPF program on
#    TC ingress+egress, and with the user-space (libpcap) mode: iperf3 UDP of
#    64-byte datagrams at full speed for SECONDS, the receiver's rate;
#    then TCP throughput the same three ways.
# 2. records/s read per window: SESSIONS UDP sessions sent within one
#    window, the time the reader takes to drain (and erase) the kernel's map.
#
#   scripts/bench-session-probe.sh [SECONDS] [SESSIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
sessions=${2:-20000}
cargo build --release -q -p session_probe
probe=$PWD/target/release/session_probe
a=eb-bench-$$-a
b=eb-bench-$$-b
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    ip netns del "$a" 2> /dev/null || true
    ip netns del "$b" 2> /dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
for ns in "$a" "$b"; do
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
    ip -n "$ns" link set lo up
done
ip -n "$a" link add ebbena0 type veth peer name ebbenb0 netns "$b"
ip -n "$a" addr add 198.51.100.1/24 dev ebbena0
ip -n "$b" addr add 198.51.100.2/24 dev ebbenb0
ip -n "$a" link set ebbena0 up
ip -n "$b" link set ebbenb0 up
ip netns exec "$a" ping -c 1 -W 2 198.51.100.2 > /dev/null

iperf() { # extra args; prints "pps Gbit/s"
    ip netns exec "$b" iperf3 -s -1 -p 5201 > /dev/null 2>&1 &
    local srv=$!
    sleep 0.3
    ip netns exec "$a" iperf3 -c 198.51.100.2 -p 5201 -t "$secs" -J "$@" > "$tmp/j.json"
    wait "$srv" || true
    python3 - "$tmp/j.json" << 'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
e = j["end"]
s = e.get("sum_received") or e.get("sum")
pk = s.get("packets")
if pk is None:  # TCP: no packet count
    print("- %.2f" % (s["bits_per_second"] / 1e9))
else:
    print("%.0f %.3f" % ((pk - s.get("lost_packets", 0)) / s["seconds"], s["bits_per_second"] / 1e9))
EOF
}

with_probe() { # mode args...
    local mode=$1
    shift
    case $mode in
        none) "$@" ;;
        ebpf | user)
            local extra=()
            [ "$mode" = user ] && extra=(--userspace)
            ip netns exec "$a" "$probe" -I ebbena0 "${extra[@]}" -w 1 -i b:,b: 2> "$tmp/probe.err" &
            local p=$!
            pids+=("$p")
            for _ in $(seq 100); do grep -q probing "$tmp/probe.err" && break; sleep 0.05; done
            "$@"
            kill -INT "$p"
            wait "$p" || true
            ;;
    esac
}

echo "== packets/s through the veth (iperf3 UDP, 64-byte datagrams, ${secs}s) =="
for mode in none ebpf user; do
    r=$(with_probe "$mode" iperf -u -b 0 -l 64)
    printf '%-6s %10s pps  %s Gbit/s\n' "$mode" ${r}
done
echo "== TCP throughput (iperf3, one stream, ${secs}s) =="
for mode in none ebpf user; do
    r=$(with_probe "$mode" iperf)
    printf '%-6s %s Gbit/s\n' "$mode" "${r#- }"
done

echo "== records/s read per window ($sessions UDP sessions in one window) =="
ip netns exec "$a" "$probe" -I ebbena0 -w 4 --sessions $((sessions * 2)) --packets-per-session 1 -i b:,b: 2> "$tmp/probe.err" &
p=$!
pids+=("$p")
for _ in $(seq 100); do grep -q probing "$tmp/probe.err" && break; sleep 0.05; done
ip netns exec "$a" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(1, $sessions + 1):
    s.sendto(b'x', ('198.51.100.2', port))
"
sleep 5
kill -INT "$p"
wait "$p" || true
grep 'read from the kernel' "$tmp/probe.err" | sort -t'(' -k2 -n | tail -1
