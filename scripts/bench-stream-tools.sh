#!/usr/bin/env bash
# The shell-pipeline tools on N generated flow records (flow_generator's
# template), whole binaries reading a .trapcap file; prints records/s from
# wall time and from CPU time (user + system), best of 3.
#
#   scripts/bench-stream-tools.sh            ours
#   NEMEA_C_BIN=/path/to/bin scripts/bench-stream-tools.sh
#                                            also C NEMEA's unirecfilter from
#                                            that directory, same data and
#                                            filters
#   N=200000 scripts/bench-stream-tools.sh   fewer records (default 1 M)
#
# CPU time is the number to compare on a busy machine. Benchmarks measure;
# nothing here asserts a speed. Other stream tools (merger, aggregator, …)
# add their cases to the CASES list below.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
cargo build --release --workspace --bins -q
R=$PWD/target/release
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
export TRAP_SOCKET_DIR=$work
cd "$work"
"$R/flow_generator" -n "$N" -i f:flows.trapcap

N=$N R=$R C=${NEMEA_C_BIN:-} python3 - <<'EOF'
import os, resource, subprocess, time
n, ours, c = int(os.environ["N"]), os.environ["R"], os.environ["C"]
three = "PROTOCOL == 6 && DST_PORT in [80, 443, 8080] && BYTES > 1000"
# (label, binary, arguments, also run C's binary of that name)
CASES = [
    ("unirecfilter, 3-clause filter, f: -> b:", "unirecfilter",
     ["-i", "f:flows.trapcap,b:", "-F", three], True),
    ("unirecfilter, 3-clause filter, f: -> f:", "unirecfilter",
     ["-i", "f:flows.trapcap,f:out.trapcap", "-F", three], True),
    ("unirecfilter, no filter, 3-field template, f: -> f:", "unirecfilter",
     ["-i", "f:flows.trapcap,f:out.trapcap", "-O", "ipaddr SRC_IP,ipaddr DST_IP,uint16 DST_PORT"], True),
    ("logger CSV, f: -> /dev/null", "logger", ["-i", "f:flows.trapcap"], True),
    ("logger --json, f: -> /dev/null", "logger", ["--json", "-i", "f:flows.trapcap"], False),
    ("unirec2json, f: -> b:", "unirec2json", ["-i", "f:flows.trapcap,b:"], False),
]

def best(binary, args):
    runs = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        subprocess.run([binary] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, timeout=600)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs.append((wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)))
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    return f"{n / wall / 1e6:6.2f} M/s wall  {n / cpu / 1e6:6.2f} M/s CPU"

print(f"{n} flow records (flow_generator), best of 3")
for label, name, args, with_c in CASES:
    print(f"rs  {label:52} {best(os.path.join(ours, name), args)}")
    if c and with_c and os.path.exists(os.path.join(c, name)):
        print(f"C   {label:52} {best(os.path.join(c, name), args)}")
EOF
