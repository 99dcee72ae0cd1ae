#!/usr/bin/env bash
# The stream tools on N generated flow records (f: input, b: output): merger
# (two files of N records each into one stream), biflow_aggregator and
# aggregator (many keys: by SRC_IP, nearly every record a new one; few keys:
# by DST_PORT and PROTOCOL), anonymizer. Prints records/s from wall time and
# from CPU time (user + system), best of 3.
#
#   scripts/bench-stream-tools.sh              our modules
#   NEMEA_C_BIN=/path/to/bin scripts/bench-stream-tools.sh
#                                              also C NEMEA's merger,
#                                              biflow_aggregator and
#                                              anonymizer from that directory,
#                                              same data, same configs
#   N=100000 scripts/bench-stream-tools.sh     fewer records (default 1 M)
#
# CPU time is the number to compare on a busy machine. Benchmarks measure;
# nothing here asserts a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
cargo build --release -q -p flow_generator -p merger -p biflow_aggregator -p anonymizer
R=$PWD/target/release
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
export TRAP_SOCKET_DIR=$work
cd "$work"

"$R/flow_generator" -n "$N" -s 1 -i f:flows.trapcap
"$R/flow_generator" -n "$N" -s 2 -i f:flows2.trapcap

cat > agg.xml <<'EOF'
<aggregator>
  <id name="by_src">
    <field><name>SRC_IP</name><type>KEY</type></field>
    <field><name>BYTES</name><type>SUM</type></field>
    <field><name>PACKETS</name><type>SUM</type></field>
  </id>
  <id name="by_port">
    <field><name>DST_PORT</name><type>KEY</type></field>
    <field><name>PROTOCOL</name><type>KEY</type></field>
    <field><name>BYTES</name><type>SUM</type></field>
    <field><name>PACKETS</name><type>SUM</type></field>
    <field><name>SRC_IP</name><type>MIN</type></field>
  </id>
</aggregator>
EOF
KEY=0x1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202

# best N BINDIR "COMMAND ARGS -i ...": "wall cpu" rates of the fastest of 3 runs.
best() {
    python3 - "$@" <<'EOF'
import os, resource, subprocess, sys, time
n, bindir, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3].split()
cmd[0] = os.path.join(bindir, cmd[0])
runs = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    except subprocess.TimeoutExpired:
        print("did not stop within 600 s")
        sys.exit(0)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        print(f"failed with status {r.returncode}")
        sys.exit(0)
    runs.append((wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)))
wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
print(f"{n / wall / 1e6:6.2f} M/s wall  {n / cpu / 1e6:6.2f} M/s CPU")
EOF
}

# NAME|RECORDS|OUR COMMAND|C COMMAND
runs=(
    "merger (2 inputs)|$((2 * N))|merger -i f:flows.trapcap,f:flows2.trapcap,b:|merger -i f:flows.trapcap,f:flows2.trapcap,b:"
    "biflow_aggregator by_src|$N|biflow_aggregator -e -c agg.xml -n by_src -i f:flows.trapcap,b:|biflow_aggregator -e -c agg.xml -n by_src -i f:flows.trapcap,b:"
    "biflow_aggregator by_port|$N|biflow_aggregator -e -c agg.xml -n by_port -i f:flows.trapcap,b:|biflow_aggregator -e -c agg.xml -n by_port -i f:flows.trapcap,b:"
    "aggregator -k SRC_IP|$N|aggregator -k SRC_IP -s BYTES -s PACKETS -t M:40,20 -i f:flows.trapcap,b:|"
    "anonymizer|$N|anonymizer -k $KEY -i f:flows.trapcap,b:|anonymizer -k $KEY -i f:flows.trapcap,b:"
)

echo "$N flows per file (flow_generator), f: -> b:, best of 3, data in $work"
for r in "${runs[@]}"; do
    IFS='|' read -r name n ours theirs <<< "$r"
    printf '%-4s %-26s %s\n' rs "$name" "$(best "$n" "$R" "$ours")"
    if [ -n "${NEMEA_C_BIN:-}" ] && [ -n "$theirs" ]; then
        printf '%-4s %-26s %s\n' C "$name" "$(best "$n" "$NEMEA_C_BIN" "$theirs")"
    fi
done
