//! Drives every process plugin with arbitrary payloads: the body of the
//! `flow_plugins` fuzz target and of a randomized unit test.
//!
//! The bytes become a conversation between two hosts: each packet is
//! `[control, tcp flags, length, payload…]`, where the control byte picks
//! the direction, the protocol (TCP, UDP, ICMP) and a port from the ones the
//! plugins look at, so every plugin's parser sees the payloads. Every plugin
//! of the registry runs (default options and, where it has them, a variant),
//! and each exported flow is encoded on an interface of every plugin, so the
//! extensions' field writers run too.

use crate::cache::{CacheConfig, FlowCache};
use crate::export::{Exporter, Group};
use crate::parser::{parse, LinkType, Packet};
use crate::plugins::{Plugins, ProcessPlugin, Registered, REGISTRY};
use crate::synth::{ipv4_frame, L4};
use std::net::Ipv4Addr;
use unirec::RecordBuilder;

/// Ports the plugins recognise traffic by.
const PORTS: [u16; 32] = [
    53, 80, 443, 5353, 137, 1900, 1883, 123, 5060, 554, 25, 1194, 51820, 8080, 22, 0, 65535, 587,
    3478, 4789, 8443, 853, 500, 4500, 161, 67, 68, 5355, 3389, 21, 110, 143,
];

/// Option strings tried besides the defaults (unknown ones are skipped).
const VARIANTS: &[&str] = &["includezeroes", "includezeroes;skipdup", "txt", "tc=5"];

fn all_plugins() -> Plugins {
    let mut list: Vec<Box<dyn ProcessPlugin>> = Vec::new();
    for Registered { create: make, .. } in REGISTRY {
        if let Ok(p) = make("") {
            list.push(p);
        }
    }
    // Variants replace nothing: they run beside the defaults under the same
    // name, which the registry would refuse from -p but the cache accepts.
    for Registered { create: make, .. } in REGISTRY {
        for v in VARIANTS {
            if let Ok(p) = make(v) {
                list.push(p);
                break;
            }
        }
    }
    Plugins::new(list)
}

/// Runs `data` through the cache with every plugin; never panics.
pub fn run_all_plugins(data: &[u8]) {
    let plugins = all_plugins();
    let exporters: Vec<Exporter> = (0..plugins.len())
        .filter_map(|i| Exporter::new(&plugins, &Group::Plugins(vec![i]), 0, 0).ok())
        .collect();
    let mut cache = FlowCache::with_plugins(
        CacheConfig {
            size_exp: 6,
            line_exp: 2,
            active: 20,
            inactive: 5,
            ..CacheConfig::default()
        },
        plugins,
    );
    let (a, b) = (
        Ipv4Addr::new(198, 51, 100, 1),
        Ipv4Addr::new(198, 51, 100, 2),
    );
    let mut out = Vec::new();
    let mut frame = Vec::with_capacity(2048);
    let mut pkt = Packet::default();
    let mut t_us = 1_700_000_000_000_000u64;
    let mut rest = data;
    let mut id = 0u16;
    while let [ctl, flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(n);
        rest = next;
        let port = PORTS[usize::from(ctl >> 3) % PORTS.len()];
        let reverse = ctl & 1 == 1;
        let (src, dst, sp, dp) = if reverse {
            (b, a, port, 40_000)
        } else {
            (a, b, 40_000, port)
        };
        let l4 = match (ctl >> 1) & 3 {
            1 => L4::Udp {
                sport: sp,
                dport: dp,
                payload,
            },
            2 => L4::Icmp {
                kind: *flags,
                payload,
            },
            _ => L4::Tcp {
                sport: sp,
                dport: dp,
                seq: u32::from(id) * 100,
                ack: 1,
                flags: *flags,
                payload,
            },
        };
        id = id.wrapping_add(1);
        ipv4_frame(&mut frame, src, dst, id, l4);
        t_us += u64::from(*flags) * 10_000;
        pkt.ts_us = t_us;
        if parse(LinkType::Ethernet, &frame, &mut pkt).is_ok() {
            pkt.keep_payload(&frame);
            pkt.keep_l3(&frame);
            cache.put(&mut pkt, &mut out);
        }
    }
    cache.flush_all(&mut out);
    let mut record = Vec::new();
    for e in &exporters {
        let mut b = RecordBuilder::new(e.template());
        for f in &out {
            // Records too large for UniRec are an error, not a panic.
            let _ = e.encode(&mut b, f, &mut record, |_| Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    #[test]
    fn every_plugin_survives_random_conversations() {
        let mut s = 0x5eed_u64;
        for round in 0..300 {
            let len = 64 + (xorshift(&mut s) % 4000) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| xorshift(&mut s) as u8).collect();
            // Some rounds stay on one port and protocol, as real flows do.
            if round % 3 == 0 {
                let ctl = data[0] & !1;
                let mut i = 0;
                while i + 3 <= data.len() {
                    data[i] = ctl | (data[i] & 1);
                    i += 3 + usize::from(data[i + 2]);
                }
            }
            run_all_plugins(&data);
        }
    }
}
