//! proto_traffic: flows, packets and bytes per L4 protocol, for Munin.
//!
//! As NEMEA's proto_traffic: eight buckets, in this order — `icmp` (1),
//! `tcp` (6), `udp` (17), `icmp6` (58), `esp` (50), `gre` (47), `sctp` (132)
//! and `others` — counted since the start. Every client of the socket gets
//! the `-flows` names of all buckets, then the `-bytes`, then the
//! `-packets` ones, comma-separated on one line, and the 24 values in the
//! same order on a second line.

use std::fmt::Write as _;

/// The buckets: name and protocol number (`others` has none).
pub const PROTOCOLS: [(&str, Option<u8>); 8] = [
    ("icmp", Some(1)),
    ("tcp", Some(6)),
    ("udp", Some(17)),
    ("icmp6", Some(58)),
    ("esp", Some(50)),
    ("gre", Some(47)),
    ("sctp", Some(132)),
    ("others", None),
];

/// Which bucket each protocol number goes to.
const fn bucket_table() -> [u8; 256] {
    let mut t = [7u8; 256];
    let mut i = 0;
    while i < 7 {
        if let Some(p) = PROTOCOLS[i].1 {
            t[p as usize] = i as u8;
        }
        i += 1;
    }
    t
}

const BUCKET: [u8; 256] = bucket_table();

/// The counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtoTraffic {
    pub flows: [u64; 8],
    pub bytes: [u64; 8],
    pub packets: [u64; 8],
}

impl ProtoTraffic {
    pub fn add(&mut self, protocol: u8, bytes: u64, packets: u32) {
        let b = usize::from(BUCKET[usize::from(protocol)]);
        self.flows[b] += 1;
        self.bytes[b] = self.bytes[b].wrapping_add(bytes);
        self.packets[b] = self.packets[b].wrapping_add(u64::from(packets));
    }

    /// The two lines a socket client gets.
    pub fn report(&self) -> String {
        let mut head = String::new();
        let mut vals = String::new();
        for (suffix, counts) in [
            ("flows", &self.flows),
            ("bytes", &self.bytes),
            ("packets", &self.packets),
        ] {
            for ((name, _), v) in PROTOCOLS.iter().zip(counts) {
                let _ = write!(head, "{name}-{suffix},");
                let _ = write!(vals, "{v},");
            }
        }
        head.pop();
        vals.pop();
        format!("{head}\n{vals}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_report() {
        let mut t = ProtoTraffic::default();
        t.add(6, 100, 2);
        t.add(6, 50, 1);
        t.add(17, 70, 1);
        t.add(58, 8, 1);
        t.add(132, 9, 1);
        t.add(2, 1000, 10); // IGMP: others
        assert_eq!(
            t.report(),
            "icmp-flows,tcp-flows,udp-flows,icmp6-flows,esp-flows,gre-flows,sctp-flows,others-flows,\
icmp-bytes,tcp-bytes,udp-bytes,icmp6-bytes,esp-bytes,gre-bytes,sctp-bytes,others-bytes,\
icmp-packets,tcp-packets,udp-packets,icmp6-packets,esp-packets,gre-packets,sctp-packets,others-packets\n\
0,2,1,1,0,0,1,1,0,150,70,8,0,0,9,1000,0,3,1,1,0,0,1,10\n"
        );
    }
}
