//! fw_actuator: firewall rules kept in an nftables table of the module's
//! own, from batches in the eBPF TrafficAnalyzer's format ([`batch`]) and
//! from detector alerts (auto-rules with a TTL). [`ruleset`] is the chain
//! and its operations (no I/O), [`nft`] its nftables JSON, [`idea`] what an
//! IDEA alert asks to block, [`http`] the batch endpoint's requests,
//! [`xdp_map`] the XDP backend's table.
#![forbid(unsafe_code)]

pub mod batch;
pub mod http;
pub mod idea;
pub mod nft;
pub mod ruleset;
pub mod xdp_map;
