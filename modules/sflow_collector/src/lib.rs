//! sflow_collector — sFlow v5 datagrams from switches and routers become
//! UniRec records, one per sampled packet, so that flow detectors (such as
//! ipblacklistfilter) run on sampled traffic.
//!
//! [`wire`] reads the datagrams (bounds-checked views), [`collector`] turns
//! them into records and counts sequence gaps, [`encode`] writes datagrams
//! (tests, fuzz seeds, the benchmark).
#![forbid(unsafe_code)]

pub mod collector;
pub mod encode;
pub mod wire;
