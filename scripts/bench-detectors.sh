#!/usr/bin/env bash
# Whole detector binaries (TRAP file input, UniRec decoding, state machine,
# blackhole output) on N generated flows with TCP_FLAGS; prints records/s
# from wall time and from CPU time (user + system), best of 3.
#
#   scripts/bench-detectors.sh                 our detectors
#   NEMEA_C_BIN=/path/to/bin scripts/bench-detectors.sh
#                                              also C NEMEA's detectors from
#                                              that directory, same data,
#                                              same lists and thresholds
#   N=1000000 scripts/bench-detectors.sh       fewer flows (default 10 M)
#
# CPU time is the number to compare on a busy machine. Benchmarks measure;
# nothing here asserts a speed. C hoststatsnemea is left out: it also needs
# LINK_BIT_FIELD and DIR_BIT_FIELD, which the generator does not write.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000000}
cargo build --release --workspace --bins -q
R=$PWD/target/release
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
export TRAP_SOCKET_DIR=$work
cd "$work"

"$R/flow_generator" -n "$N" --tcp-flags -i f:flows.trapcap

# The same lists for both: 100 000 IPv4 prefixes (some under the generator's
# 10.0.0.0/8 sources) and 10 000 mining pools (some of its destinations).
python3 - <<'EOF'
import random
random.seed(7)
nets = set()
while len(nets) < 100_000:
    a = random.choice([10, 11, 12]) << 24 | random.randrange(1 << 24)
    p = random.choice([24, 32, 32, 32])
    nets.add((a >> (32 - p) << (32 - p), p))
ip = lambda a: ".".join(str(a >> s & 255) for s in (24, 16, 8, 0))
with open("ip4.blist", "w") as f:
    for a, p in sorted(nets):
        f.write(f"{ip(a)}/{p},{random.choice([1, 1, 2, 4])}\n")
open("ip6.blist", "w").close()
with open("pools.txt", "w") as f:
    for i in range(10_000):
        a = (192 << 24 | 168 << 16 | random.randrange(1 << 16)) if i % 50 == 0 else random.randrange(1 << 32)
        f.write(f"{ip(a)}:{random.choice([80, 443, 3333, 4444])}\n")
EOF
cat > ipdetect.xml <<EOF
<configuration><struct name="main struct">
<element name="ipv4_blacklist_file">$work/ip4.blist</element>
<element name="ipv6_blacklist_file">$work/ip6.blist</element>
<element name="watch_blacklists">false</element>
</struct></configuration>
EOF
cat > miner.xml <<EOF
<configuration><struct name="main struct">
<element name="blacklist_file">$work/pools.txt</element>
<element name="stratum_check">false</element>
</struct></configuration>
EOF
printf 'rules-generic = 1\nrules-ssh = 1\nrules-dns = 1\n' > hoststats.conf

# NAME|OUR COMMAND|C COMMAND (C names and options of Nemea-Detectors)
detectors=(
    "vportscan_detector|vportscan_detector|vportscan_detector"
    "haddrscan_detector|haddrscan_detector|haddrscan_detector"
    "bruteforce_detector|bruteforce_detector -S -R -T|brute_force_detector -S -R -T"
    "ddos_detector|ddos_detector|ddos_detector"
    "dns_amplification|dns_amplification|amplification_detection"
    "ipblacklistfilter|ipblacklistfilter -c ipdetect.xml|ipblacklistfilter -c ipdetect.xml"
    "miner_detector|miner_detector -u miner.xml|miner_detector -u miner.xml"
    "hoststats|hoststats -c hoststats.conf|"
)

# best DIR CMD...: "wall cpu" of the fastest of 3 runs (seconds).
best() {
    python3 - "$N" "$@" <<'EOF'
import os, resource, subprocess, sys, time
n, bindir, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3].split()
cmd[0] = os.path.join(bindir, cmd[0])
runs = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        subprocess.run(cmd + ["-i", "f:flows.trapcap,b:"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, timeout=600)
    except subprocess.TimeoutExpired:
        # C miner_detector sleeps in its threads (up to an hour) after the input ends.
        print("did not stop within 600 s after its input")
        sys.exit(0)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    runs.append((wall, cpu))
wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
print(f"{n / wall / 1e6:6.2f} M/s wall  {n / cpu / 1e6:6.2f} M/s CPU")
EOF
}

echo "$N flows (flow_generator --tcp-flags), f: -> b:, best of 3, data in $work"
for d in "${detectors[@]}"; do
    IFS='|' read -r name ours theirs <<< "$d"
    printf '%-4s %-22s %s\n' rs "$name" "$(best "$R" "$ours")"
    if [ -n "${NEMEA_C_BIN:-}" ] && [ -n "$theirs" ]; then
        printf '%-4s %-22s %s\n' C "$name" "$(best "$NEMEA_C_BIN" "$theirs")"
    fi
done
