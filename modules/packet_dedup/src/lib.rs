//! packet_dedup: drops a packet whose hash was seen within a window of
//! packet time (a switch's mirror port often sends one packet twice: once
//! per direction of a mirrored link, or once per mirrored port).
//!
//! The window runs from the first copy: a copy arriving at most `window`
//! after the first one seen is a duplicate (later copies do not extend it).
//! Time is the packets' own (`TIME`), never the wall clock; a packet older
//! than the newest one seen counts at the newest time. Memory is bounded by
//! `max_entries`: when full, the oldest hash is forgotten first (counted as
//! `evicted`), so a duplicate of it would then pass.
//!
//! The hash is over the whole frame, or, normalised, over the frame from
//! layer 3 on with the TTL / hop limit and the IPv4 checksum masked
//! ([`packet_capture::wire::normalised`]): copies that went through a router
//! or came with another VLAN tag or MAC header then count as one.

use std::collections::{HashMap, VecDeque};
use unirec::UrTime;

/// The hash functions `--hash` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HashKind {
    /// xxHash64 (seed 0), the PKT_HASH of packet_capture.
    Xxh64,
    /// XXH3 64-bit (faster on long frames).
    Xxh3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Window in UniRec time units (2^-32 s).
    pub window: u64,
    pub max_entries: usize,
    pub hash: HashKind,
    pub normalise: bool,
}

impl Config {
    /// A window of `secs` seconds (clamped to what UniRec time can hold).
    pub fn window_secs(secs: f64) -> u64 {
        (secs.max(0.0) * 4_294_967_296.0).min(u64::MAX as f64) as u64
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub duplicates: u64,
    /// Hashes forgotten before their window ended because the table was full.
    pub evicted: u64,
}

/// The de-duplication state.
pub struct Dedup {
    cfg: Config,
    /// hash → time first seen.
    seen: HashMap<u64, u64>,
    /// (time, hash) in the order first seen.
    order: VecDeque<(u64, u64)>,
    now: u64,
    buf: Vec<u8>,
    pub counts: Counts,
}

impl Dedup {
    pub fn new(cfg: Config) -> Dedup {
        let cap = cfg.max_entries.min(1 << 20);
        Dedup {
            cfg,
            seen: HashMap::with_capacity(cap),
            order: VecDeque::with_capacity(cap),
            now: 0,
            buf: Vec::with_capacity(2048),
            counts: Counts::default(),
        }
    }

    /// The hash `--hash` and normalisation give for `frame`.
    pub fn hash(&mut self, frame: &[u8]) -> u64 {
        let bytes = if self.cfg.normalise {
            packet_capture::wire::normalised(frame, &mut self.buf)
        } else {
            frame
        };
        match self.cfg.hash {
            HashKind::Xxh64 => xxhash_rust::xxh64::xxh64(bytes, 0),
            HashKind::Xxh3 => xxhash_rust::xxh3::xxh3_64(bytes),
        }
    }

    /// Whether the packet at `time` with bytes `frame` passes (is not a
    /// duplicate), updating the state.
    pub fn pass(&mut self, time: UrTime, frame: &[u8]) -> bool {
        let h = self.hash(frame);
        self.now = self.now.max(time.0);
        self.expire();
        if self.seen.contains_key(&h) {
            self.counts.duplicates += 1;
            return false;
        }
        if self.cfg.max_entries == 0 {
            self.counts.passed += 1;
            return true;
        }
        while self.seen.len() >= self.cfg.max_entries {
            match self.order.pop_front() {
                Some((_, old)) => {
                    self.seen.remove(&old);
                    self.counts.evicted += 1;
                }
                None => break,
            }
        }
        self.seen.insert(h, self.now);
        self.order.push_back((self.now, h));
        self.counts.passed += 1;
        true
    }

    /// Forgets hashes whose window has ended.
    fn expire(&mut self) {
        while let Some(&(t, h)) = self.order.front() {
            if t.saturating_add(self.cfg.window) >= self.now {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&h);
        }
    }

    /// Hashes held now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(window: f64, max: usize, normalise: bool) -> Config {
        Config {
            window: Config::window_secs(window),
            max_entries: max,
            hash: HashKind::Xxh64,
            normalise,
        }
    }

    fn t(ms: u32) -> UrTime {
        UrTime::from_secs_millis(1000 + ms / 1000, ms % 1000)
    }

    fn frame(ttl: u8, vlan: Option<u16>, payload: u8) -> Vec<u8> {
        let mut f = vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2];
        if let Some(v) = vlan {
            f.extend([0x81, 0x00]);
            f.extend(v.to_be_bytes());
        }
        f.extend([0x08, 0x00, 0x45, 0, 0, 21, 0, 1, 0, 0, ttl, 17, 0x11, 0x22]);
        f.extend([198, 51, 100, 1, 198, 51, 100, 2, payload]);
        f
    }

    #[test]
    fn a_copy_within_the_window_is_dropped_and_after_it_passes() {
        let mut d = Dedup::new(cfg(1.0, 100, false));
        let f = frame(64, None, 1);
        assert!(d.pass(t(0), &f));
        assert!(!d.pass(t(500), &f));
        assert!(!d.pass(t(1000), &f));
        // The window runs from the first copy.
        assert!(d.pass(t(1001), &f));
        assert!(d.pass(t(1002), &frame(64, None, 2)));
        assert_eq!(
            d.counts,
            Counts {
                passed: 3,
                duplicates: 2,
                evicted: 0
            }
        );
    }

    #[test]
    fn time_is_the_packets_and_never_runs_back() {
        let mut d = Dedup::new(cfg(1.0, 100, false));
        let a = frame(64, None, 1);
        assert!(d.pass(t(5000), &a));
        // An older packet does not move the clock back.
        assert!(d.pass(t(0), &frame(64, None, 2)));
        assert!(!d.pass(t(5900), &a));
        assert!(d.pass(t(7000), &a));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn memory_is_bounded_oldest_forgotten_first() {
        let mut d = Dedup::new(cfg(100.0, 2, false));
        let (a, b, c) = (frame(1, None, 1), frame(1, None, 2), frame(1, None, 3));
        assert!(d.pass(t(0), &a));
        assert!(d.pass(t(1), &b));
        assert!(d.pass(t(2), &c));
        assert_eq!(d.len(), 2);
        assert_eq!(d.counts.evicted, 1);
        assert!(!d.pass(t(3), &c));
        assert!(d.pass(t(4), &a), "a was forgotten");
    }

    #[test]
    fn normalisation_ignores_ttl_checksum_and_vlan() {
        let (a, b) = (frame(64, None, 1), frame(63, Some(42), 1));
        let mut plain = Dedup::new(cfg(1.0, 100, false));
        assert!(plain.pass(t(0), &a));
        assert!(plain.pass(t(1), &b));
        let mut norm = Dedup::new(cfg(1.0, 100, true));
        assert!(norm.pass(t(0), &a));
        assert!(!norm.pass(t(1), &b));
        assert!(norm.pass(t(2), &frame(64, None, 9)));
    }

    #[test]
    fn xxh64_without_normalisation_is_pkt_hash() {
        let mut d = Dedup::new(cfg(1.0, 10, false));
        let f = frame(64, None, 1);
        assert_eq!(d.hash(&f), packet_capture::frame_hash(&f));
        let mut d3 = Dedup::new(Config {
            hash: HashKind::Xxh3,
            ..cfg(1.0, 10, false)
        });
        assert_ne!(d3.hash(&f), packet_capture::frame_hash(&f));
    }
}
