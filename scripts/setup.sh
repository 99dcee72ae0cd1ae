#!/usr/bin/env bash
# The one set-up step of `.ci/run`, `scripts/demo.sh` and `scripts/test.sh`:
# installs the Debian packages the build and the tests need when they are
# missing (needs root, or sudo). It is quiet when
# nothing is missing.
#
#   NEMEA_SKIP_SETUP=1   skip it (you installed the packages yourself)
#
# What it installs and why:
#   libpcap-dev   flow_meter links libpcap (live capture and pcap files)
#   iproute2      the live-capture tests put hosts in network namespaces
#   iputils-ping  traffic for those tests and the demo's live section
#   procps        the supervisor tests read processes (ps, pgrep)
#   python3       helper scripts of the tests
#   git           bl_downloader's -r repository copy (and its test)
#   tcpdump       captures the real traffic the flow_meter plugin tests send
#   openssl       TLS servers and clients of those tests, throwaway certificates;
#                 tests/tls.rs: the certificates of T: and OpenSSL peers (s_client, s_server)
#   tshark        the reference those tests compare fields with (JA3)
#   softflowd     a NetFlow v9 / IPFIX exporter feeding ipfixcol's tests
#   nfdump        nfcapd, the collector those tests compare ipfixcol with
#   libndpi-dev   nDPI 4.2, the engine of flow_meter's app plugin (ndpi_sys links it)
#   libndpi-bin   ndpiReader, the reference the app plugin's tests agree with
#   rsync         an rsync daemon on a non-standard port for the app plugin's test
#   jq            reads the JSON of logger --json / unirec2json in their test
#   openssh-client  the SSH client of that test (its server is a banner in Python)
#   clang llvm libbpf-dev  session_probe's build.rs compiles its eBPF program (bpf_helpers.h)
#   bpftool       inspecting the loaded program and maps (debugging session_probe)
#   nftables      fw_actuator's backend (nft -j), in the tests' namespaces
#   hping3        the SYN flood of the mitigation test
#   iperf3        TCP/UDP traffic of session_probe's tests and benchmark
#   pmacct        pmacctd's sfprobe plugin: the real sFlow agent of tests/sflow.rs
#   nfdump-sflow  sfcapd, which decodes the same sFlow datagrams for comparison there
#   libsqlite3-dev  packet_store links Debian's SQLite (rusqlite without the bundled build)
#   postgresql    the PostgreSQL server tests/snooper.rs starts (initdb/pg_ctl in a temp dir)
#   tcpreplay     replays the snooper tests' captures onto the mirror link
#   sqlite3       the snooper tests check a database's integrity after a full disk
#   chromium      headless browser of tests/status_page.rs: renders the supervisor's status page (its script, the plot), dumps the DOM, takes a screenshot
#   nats-server   the NATS JetStream server tests/jetstream.rs and scripts/bench-jetstream.sh start (libtrap's j:)
set -euo pipefail

nemea_setup() {
    if [ "${NEMEA_SKIP_SETUP:-0}" = 1 ]; then
        return 0
    fi
    if ! command -v cargo > /dev/null; then
        echo "setup: the Rust toolchain (cargo) must be on PATH: install it with rustup (https://rustup.rs)" >&2
        return 1
    fi
    local pkgs=(libpcap-dev iproute2 iputils-ping procps python3 git tcpdump openssl tshark softflowd nfdump libndpi-dev libndpi-bin rsync jq openssh-client clang llvm libbpf-dev bpftool nftables hping3 iperf3 pmacct nfdump-sflow libsqlite3-dev postgresql tcpreplay sqlite3 chromium nats-server)
    local missing=()
    local pkg
    for pkg in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2> /dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    if ! command -v apt-get > /dev/null; then
        echo "setup: missing ${missing[*]} and no apt-get: install them, then run again with NEMEA_SKIP_SETUP=1" >&2
        return 1
    fi
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo > /dev/null; then
            sudo=(sudo)
        else
            echo "setup: missing ${missing[*]}: run as root (or install them, then NEMEA_SKIP_SETUP=1)" >&2
            return 1
        fi
    fi
    echo "setup: installing ${missing[*]} (NEMEA_SKIP_SETUP=1 skips this)" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
}

nemea_setup
