#!/usr/bin/env bash
# The demo: the NEMEA tutorial with our modules (files, sockets, rotation, the
# supervisor) and a detection chain (port scans to IDEA), on the
# bundled tutorial data, in a temporary directory (own TRAP_SOCKET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --workspace --bins -q
R=$PWD/target/release
REPO=$PWD
DATA=$PWD/tutorial-data
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TRAP_SOCKET_DIR=$work
cd "$work"

echo "== 1. CSV -> UniRec file -> unix socket -> CSV"
echo "\$ logreplay -i f:outputfile.trapcap -f zwave-sensor.csv"
"$R/logreplay" -i f:outputfile.trapcap -f "$DATA/zwave-sensor.csv"
echo "\$ logger -i u:mysocket -t   &   traffic_repeater -i f:outputfile.trapcap,u:mysocket:buffer=off"
"$R/logger" -i u:mysocket -t > section1.csv &
"$R/traffic_repeater" -i f:outputfile.trapcap,u:mysocket:buffer=off 2> /dev/null
wait
head -5 section1.csv
echo "... $(($(wc -l < section1.csv) - 1)) records"

echo
echo "== 2. A generator on a socket, read by logger"
echo "\$ zwave_generator -n 5 -p 0.2 -i u:mysocket   &   logger -i u:mysocket -t"
"$R/zwave_generator" -n 5 -p 0.2 -i u:mysocket &
"$R/logger" -i u:mysocket -t
wait

echo
echo "== 3. Store records in rotated binary files"
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
echo "== 4. The same pipelines under the supervisor (configs/nemea-rs.toml)"
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
kill -TERM "$sup_pid"   # stops the modules too
wait "$sup_pid"

echo
echo "== 5. Detection: flows with two port scans -> detectors -> aggregators -> IDEA"
echo "\$ logreplay -d -f scan-flows.csv -i f:flows.trapcap"
"$R/logreplay" -d -f "$DATA/scan-flows.csv" -i f:flows.trapcap
for kind in vportscan haddrscan; do
    echo "\$ ${kind}_detector -i f:flows.trapcap,f:$kind.alerts  ;  ${kind}_aggregator -i f:$kind.alerts,f:$kind.events  ;  ${kind}2idea -D -i f:$kind.events"
    "$R/${kind}_detector" -i "f:flows.trapcap,f:$kind.alerts"
    "$R/${kind}_aggregator" -i "f:$kind.alerts,f:$kind.events"
    "$R/${kind}2idea" -D -i "f:$kind.events"
done
