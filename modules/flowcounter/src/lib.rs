//! flowcounter: counts the flow records of its input, their PACKETS and
//! BYTES (NEMEA's flowcounter, the classic first module).
//!
//! At the end (end of stream or a signal) it prints
//!
//! ```text
//! Flows:   <20 columns>
//! Packets: <20 columns>
//! Bytes:   <20 columns>
//! ```
//!
//! on stdout; SIGUSR1 prints `Time: <unix seconds>` and the same lines at
//! the next record. `-p N` prints a progress character every N records. With
//! `-o SEC` a record `uint64 FLOWS, uint32 PACKETS, uint64 BYTES` of the
//! counters (cumulative, or since the last one with `-r`) is sent every SEC
//! seconds on an output that never blocks. Differences: `-P` works in any
//! order with `-p` (C's resets it when `-p` comes second), and end of stream
//! is sent on the `-o` output at the end (C sends none), unless `-n`.

use unirec::{RecordBuilder, Template};

/// The template of the `-o` records.
pub const OUTPUT_SPEC: &str = "uint64 FLOWS,uint32 PACKETS,uint64 BYTES";

/// Running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

impl Counters {
    pub fn add(&mut self, packets: u32, bytes: u64) {
        self.flows += 1;
        self.packets = self.packets.wrapping_add(u64::from(packets));
        self.bytes = self.bytes.wrapping_add(bytes);
    }

    /// The three lines printed at the end.
    pub fn text(&self) -> String {
        format!(
            "Flows:   {:>20}\nPackets: {:>20}\nBytes:   {:>20}\n",
            self.flows, self.packets, self.bytes
        )
    }

    /// `self - earlier`, counter by counter.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            flows: self.flows.wrapping_sub(earlier.flows),
            packets: self.packets.wrapping_sub(earlier.packets),
            bytes: self.bytes.wrapping_sub(earlier.bytes),
        }
    }

    /// The `-o` record of these counters (PACKETS cut to 32 bits, as C's).
    pub fn record(&self, t: &Template, out: &mut Vec<u8>) {
        let mut b = RecordBuilder::new(t);
        let idx = |n: &str| t.find(n).unwrap_or(usize::MAX);
        let _ = b.set_u64(idx("FLOWS"), self.flows);
        let _ = b.set_u32(idx("PACKETS"), self.packets as u32);
        let _ = b.set_u64(idx("BYTES"), self.bytes);
        out.clear();
        let _ = b.finish(out);
    }
}

/// `-p N`: true when the `n`-th record (from 1) gets a progress character.
pub fn progress_due(n: u64, every: u64) -> bool {
    every > 0 && n.is_multiple_of(every)
}

#[cfg(test)]
mod tests {
    use super::*;
    use unirec::RecordRef;

    #[test]
    fn counts_and_prints_as_c() {
        let mut c = Counters::default();
        c.add(3, 100);
        c.add(u32::MAX, 1);
        assert_eq!(
            c.text(),
            "Flows:                      2\nPackets:           4294967298\nBytes:                    101\n"
        );
        let d = c.since(&Counters {
            flows: 1,
            packets: 3,
            bytes: 100,
        });
        assert_eq!((d.flows, d.packets, d.bytes), (1, u64::from(u32::MAX), 1));
        let t = Template::parse(OUTPUT_SPEC).unwrap();
        let mut rec = Vec::new();
        c.record(&t, &mut rec);
        let r = RecordRef::new_checked(&t, &rec).unwrap();
        assert_eq!(r.get_u64(t.find("FLOWS").unwrap()), Some(2));
        assert_eq!(r.get_u32(t.find("PACKETS").unwrap()), Some(2)); // cut to 32 bits
        assert_eq!(r.get_u64(t.find("BYTES").unwrap()), Some(101));
        assert!(progress_due(10, 5) && !progress_due(11, 5) && !progress_due(10, 0));
    }
}
