//! session_probe: per-session features for DDoS and crypto-mining
//! detection, per time window, after the eBPF TrafficAnalyzer.
//!
//! Two data planes compute the same window contents:
//! - the eBPF program `bpf/session_probe.bpf.c`, attached to TC ingress and
//!   egress of the probed interface, read by [`ebpf`] (double-buffered maps,
//!   swapped every window, drained and erased by the reader);
//! - the user-space mode ([`features::DoubleBuffer`] fed with libpcap
//!   packets parsed by [`packet`]), for where eBPF cannot be loaded.
//!
//! [`features`] states the rules, [`records`] turns a window into UniRec
//! records (DDoS packet features, mining session features).
//!
//! The program is compiled once, by build.rs with Debian's clang, and
//! embedded in the binary: the machine that runs the probe needs no
//! compiler or kernel headers, a C error fails the build instead of a run,
//! and the object the tests load is the one that ships. It is loaded with
//! aya (pure Rust), so nothing links Debian's libbpf 1.1, whose API trails
//! the bindings current libbpf-rs generates.

pub mod ebpf;
pub mod features;
pub mod packet;
pub mod records;
pub mod window;
