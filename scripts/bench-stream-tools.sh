#!/usr/bin/env bash
# The shell-pipeline tools on N generated flow records (flow_generator's
# template), whole binaries reading .trapcap files: unirecfilter, logger,
# unirec2json, merger (two files of N records each into one stream),
# biflow_aggregator and aggregator (many keys: by SRC_IP, nearly every record
# a new one; few keys: by DST_PORT and PROTOCOL), anonymizer. Prints
# records/s from wall time and from CPU time (user + system), best of 3.
#
#   scripts/bench-stream-tools.sh            ours
#   NEMEA_C_BIN=/path/to/bin scripts/bench-stream-tools.sh
#                                            also C NEMEA's modules of the
#                                            same name from that directory,
#                                            same data, filters and configs
#   N=200000 scripts/bench-stream-tools.sh   fewer records (default 1 M)
#
# CPU time is the number to compare on a busy machine. Benchmarks measure;
# nothing here asserts a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
cargo build --release -q -p flow_generator -p unirecfilter -p logger -p merger \
    -p biflow_aggregator -p anonymizer
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

N=$N R=$R C=${NEMEA_C_BIN:-} python3 - <<'EOF'
import os, resource, subprocess, time
n, ours, c = int(os.environ["N"]), os.environ["R"], os.environ["C"]
three = "PROTOCOL == 6 && DST_PORT in [80, 443, 8080] && BYTES > 1000"
key = "0x1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202"
# (label, records, binary, arguments, also run C's binary of that name)
CASES = [
    ("unirecfilter, 3-clause filter, f: -> b:", n, "unirecfilter",
     ["-i", "f:flows.trapcap,b:", "-F", three], True),
    ("unirecfilter, 3-clause filter, f: -> f:", n, "unirecfilter",
     ["-i", "f:flows.trapcap,f:out.trapcap", "-F", three], True),
    ("unirecfilter, no filter, 3-field template, f: -> f:", n, "unirecfilter",
     ["-i", "f:flows.trapcap,f:out.trapcap", "-O", "ipaddr SRC_IP,ipaddr DST_IP,uint16 DST_PORT"], True),
    ("logger CSV, f: -> /dev/null", n, "logger", ["-i", "f:flows.trapcap"], True),
    ("logger --json, f: -> /dev/null", n, "logger", ["--json", "-i", "f:flows.trapcap"], False),
    ("unirec2json, f: -> b:", n, "unirec2json", ["-i", "f:flows.trapcap,b:"], False),
    ("merger (2 inputs), f: -> b:", 2 * n, "merger",
     ["-i", "f:flows.trapcap,f:flows2.trapcap,b:"], True),
    ("biflow_aggregator by_src, f: -> b:", n, "biflow_aggregator",
     ["-e", "-c", "agg.xml", "-n", "by_src", "-i", "f:flows.trapcap,b:"], True),
    ("biflow_aggregator by_port, f: -> b:", n, "biflow_aggregator",
     ["-e", "-c", "agg.xml", "-n", "by_port", "-i", "f:flows.trapcap,b:"], True),
    ("aggregator -k SRC_IP, f: -> b:", n, "aggregator",
     ["-k", "SRC_IP", "-s", "BYTES", "-s", "PACKETS", "-t", "M:40,20", "-i", "f:flows.trapcap,b:"], False),
    ("anonymizer, f: -> b:", n, "anonymizer", ["-k", key, "-i", "f:flows.trapcap,b:"], True),
]

def best(count, binary, args):
    runs = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        try:
            r = subprocess.run([binary] + args, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=600)
        except subprocess.TimeoutExpired:
            return "did not stop within 600 s"
        if r.returncode != 0:
            return f"failed with status {r.returncode}"
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs.append((wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)))
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    return f"{count / wall / 1e6:6.2f} M/s wall  {count / cpu / 1e6:6.2f} M/s CPU"

print(f"{n} flow records per file (flow_generator), best of 3")
for label, count, name, args, with_c in CASES:
    print(f"rs  {label:52} {best(count, os.path.join(ours, name), args)}")
    if c and with_c and os.path.exists(os.path.join(c, name)):
        print(f"C   {label:52} {best(count, os.path.join(c, name), args)}")
EOF
