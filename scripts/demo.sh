#!/usr/bin/env bash
# The demo: the main job first (packets -> flows -> a detector -> an IDEA
# alert, on a capture the project generates; live capture when run as root),
# then the NEMEA tutorial with our modules (files, sockets, rotation, the
# supervisor) and a detection chain on bundled flows, in a temporary
# directory (own TRAP_SOCKET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --workspace --bins -q
R=$PWD/target/release
REPO=$PWD
DATA=$PWD/tutorial-data
work=$(mktemp -d)
netns=nrs-demo-$$
cleanup() {
    ip netns del "$netns-a" 2> /dev/null || true
    ip netns del "$netns-b" 2> /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export TRAP_SOCKET_DIR=$work
cd "$work"

echo "== 1. Packets to flows: a capture of web and DNS traffic and a port scan"
echo "\$ pcap_generator --demo -w web-and-scan.pcap"
"$R/pcap_generator" --demo -w web-and-scan.pcap
echo "\$ flow_meter -r web-and-scan.pcap -i u:flows   &   logger -t -i u:flows"
"$R/logger" -t -i u:flows > flows.csv &
logger_pid=$!
"$R/flow_meter" -r web-and-scan.pcap -i u:flows
wait "$logger_pid"
# The client's flows (DNS, three HTTP connections) and the scanner's first probes.
head -1 flows.csv
grep -F '198.51.100.10,' flows.csv
grep -F ',203.0.113.66,' flows.csv | head -3
echo "... $(($(wc -l < flows.csv) - 1)) flows: $(grep -cF ',203.0.113.66,' flows.csv) from the scanner 203.0.113.66"

echo
echo "== 2. The flows to a port-scan detector, its aggregator and IDEA, over unix sockets"
echo "\$ flow_meter -r web-and-scan.pcap -i u:flows  |  vportscan_detector -i u:flows,u:alerts  |  vportscan_aggregator -i u:alerts,u:events  |  vportscan2idea -D -i u:events"
# Consumers first: an output waits for its reader (timeout=WAIT loses nothing).
"$R/vportscan2idea" -D -i u:events > idea.json &
reporter_pid=$!
"$R/vportscan_aggregator" -i u:alerts,u:events &
"$R/vportscan_detector" -i u:flows,u:alerts &
"$R/flow_meter" -r web-and-scan.pcap -i u:flows
wait "$reporter_pid"
wait
python3 -m json.tool idea.json

echo
echo "== 3. Live capture on a quiet link (root only: two network namespaces joined by a veth pair)"
if [ "$(id -u)" = 0 ] && ip netns add "$netns-a" 2> /dev/null && ip netns add "$netns-b"; then
    for ns in "$netns-a" "$netns-b"; do   # IPv4 only: no IPv6 router solicitations in the capture
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip link add veth-demo-a netns "$netns-a" type veth peer name veth-demo-b netns "$netns-b"
    ip -n "$netns-a" addr add 198.51.100.1/24 dev veth-demo-a
    ip -n "$netns-b" addr add 198.51.100.2/24 dev veth-demo-b
    ip -n "$netns-a" link set veth-demo-a up
    ip -n "$netns-b" link set veth-demo-b up
    echo "\$ flow_meter -I veth-demo-a -t 300:2 -S -i u:live   &   logger -t -i u:live   &   ping -c 3 198.51.100.1"
    "$R/logger" -t -i u:live > live.csv &
    logger_pid=$!
    ip netns exec "$netns-a" "$R/flow_meter" -I veth-demo-a -t 300:2 -S -i u:live > live-stats.txt &
    meter_pid=$!
    sleep 1
    ip netns exec "$netns-b" ping -q -c 3 -i 0.2 198.51.100.1 > /dev/null
    # No more traffic: the flow leaves the cache on its 2 s inactive timeout.
    for _ in $(seq 50); do
        grep -q ',198.51.100.2,' live.csv && break
        sleep 0.1
    done
    cat live.csv
    kill -INT "$meter_pid"
    wait "$meter_pid" "$logger_pid"
    echo "flow_meter -S, every 2 s:"
    cat live-stats.txt
else
    echo "(skipped: needs root and network namespaces)"
fi

echo
echo "== 4. CSV -> UniRec file -> unix socket -> CSV"
echo "\$ logreplay -i f:outputfile.trapcap -f zwave-sensor.csv"
"$R/logreplay" -i f:outputfile.trapcap -f "$DATA/zwave-sensor.csv"
echo "\$ logger -i u:mysocket -t   &   traffic_repeater -i f:outputfile.trapcap,u:mysocket:buffer=off"
"$R/logger" -i u:mysocket -t > section1.csv &
"$R/traffic_repeater" -i f:outputfile.trapcap,u:mysocket:buffer=off 2> /dev/null
wait
head -5 section1.csv
echo "... $(($(wc -l < section1.csv) - 1)) records"

echo
echo "== 5. A generator on a socket, read by logger"
echo "\$ zwave_generator -n 5 -p 0.2 -i u:mysocket   &   logger -i u:mysocket -t"
"$R/zwave_generator" -n 5 -p 0.2 -i u:mysocket &
"$R/logger" -i u:mysocket -t
wait

echo
echo "== 6. Store records in rotated binary files"
echo "\$ flow_generator -n 200000 -i u:flows   &   traffic_repeater -i u:flows,f:soubor:size=5"
"$R/flow_generator" -n 200000 -i u:flows &
"$R/traffic_repeater" -i u:flows,f:soubor:size=5 2> /dev/null
wait
ls -l soubor.*
echo "\$ traffic_repeater -i u:mysocket,f:timed:time=2   (zwave_generator on u:mysocket)"
"$R/zwave_generator" -n 3 -p 0.1 -i u:mysocket &
"$R/traffic_repeater" -i u:mysocket,f:timed:time=2 2> /dev/null
wait
ls -l timed.*
echo "\$ logger -t -c 3 -i 'f:soubor.*'"
"$R/logger" -t -c 3 -i 'f:soubor.*'

echo
echo "== 7. The same pipelines under the supervisor (configs/nemea-rs.toml)"
echo "\$ supervisor -T configs/nemea-rs.toml -L logs -s sup.sock &   supcli -s sup.sock status"
PATH=$R:$PATH "$R/supervisor" -T "$REPO/configs/nemea-rs.toml" -L logs -s sup.sock &
sup_pid=$!
for _ in $(seq 100); do
    grep -q ',101,1,100' logs/modules_logs/zwave_logger_stdout 2> /dev/null && break
    sleep 0.1
done
"$R/supcli" -s sup.sock status
echo "\$ supcli -s sup.sock stats"
"$R/supcli" -s sup.sock stats
echo "\$ tail -2 logs/modules_logs/zwave_logger_stdout"
tail -2 logs/modules_logs/zwave_logger_stdout
echo "\$ supcli -s sup.sock shutdown   # stops the modules, then the supervisor"
"$R/supcli" -s sup.sock shutdown
wait "$sup_pid"

echo
echo "== 8. Detection: flows with two port scans -> detectors -> aggregators -> IDEA"
echo "\$ logreplay -d -f scan-flows.csv -i f:flows.trapcap"
"$R/logreplay" -d -f "$DATA/scan-flows.csv" -i f:flows.trapcap
for kind in vportscan haddrscan; do
    echo "\$ ${kind}_detector -i f:flows.trapcap,f:$kind.alerts  ;  ${kind}_aggregator -i f:$kind.alerts,f:$kind.events  ;  ${kind}2idea -D -i f:$kind.events"
    "$R/${kind}_detector" -i "f:flows.trapcap,f:$kind.alerts"
    "$R/${kind}_aggregator" -i "f:$kind.alerts,f:$kind.events"
    "$R/${kind}2idea" -D -i "f:$kind.events"
done
