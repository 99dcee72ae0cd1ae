//! The suspect score and the decision tree that pick servers worth a
//! Stratum probe.
//!
//! Both work on one suspect's counters, which only flows in the client →
//! server direction feed. The arithmetic follows the C module closely
//! (single-precision ratios where C uses `float`, double where it uses
//! `double`, truncation towards zero) so that borderline suspects land on
//! the same side of every threshold.

/// What one suspect's client → server flows added up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Flows whose TCP flags were exactly ACK.
    pub ack_flows: u64,
    /// Flows whose TCP flags were exactly ACK|PSH.
    pub ackpush_flows: u64,
    /// Flows with SYN among their flags (they also count as `other_flows`).
    pub syn_flows: u64,
    /// Flows with RST among their flags.
    pub rst_flows: u64,
    /// Flows with FIN among their flags.
    pub fin_flows: u64,
    /// Flows with any other flag combination.
    pub other_flows: u64,
    /// Flows whose source port is above their destination port.
    pub req_flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

impl Counters {
    /// Every counted flow (ACK-only, ACK|PSH and the rest).
    pub fn flows(&self) -> u64 {
        self.ack_flows + self.ackpush_flows + self.other_flows
    }
}

/// The integer features the tree was trained on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// Packets per minute of activity; -1 when active for under 5 s.
    pub ppm: i32,
    /// Bytes per packet.
    pub bpp: u32,
    /// Packets per flow.
    pub ppf: u32,
    /// Percentages of all flows: ACK-only plus ACK|PSH, with SYN, RST, FIN,
    /// and with the source port above the destination port.
    pub ackpush_pct: u32,
    pub syn_pct: u32,
    pub rst_pct: u32,
    pub fin_pct: u32,
    pub req_pct: u32,
}

/// Suspects active for less than this have no packets-per-minute figure.
const MIN_ACTIVE_FOR_PPM: u32 = 5;

fn ppm(c: &Counters, active: u32) -> i32 {
    if active < MIN_ACTIVE_FOR_PPM {
        return -1;
    }
    // C divides a float by a double here, so the packet count is rounded
    // to single precision first.
    (f64::from(c.packets as f32) / (f64::from(active) / 60.0)) as i32
}

fn pct(part: u64, flows: u64) -> u32 {
    (part as f64 / flows as f64 * 100.0) as u32
}

/// The features of `c` after `active` seconds (last seen − last exported).
/// `c.flows()` should not be 0 (the ratios are then meaningless).
pub fn features(c: &Counters, active: u32) -> Features {
    let flows = c.flows();
    Features {
        ppm: ppm(c, active),
        bpp: (c.bytes as f32 / c.packets as f32) as u32,
        ppf: (c.packets as f32 / flows as f32) as u32,
        ackpush_pct: pct(c.ack_flows + c.ackpush_flows, flows),
        syn_pct: pct(c.syn_flows, flows),
        rst_pct: pct(c.rst_flows, flows),
        fin_pct: pct(c.fin_flows, flows),
        req_pct: pct(c.req_flows, flows),
    }
}

/// The suspect score (0–13): points for a high share of ACK / ACK|PSH flows
/// (2), 50 < bytes/packet < 130 (2), packets/flow outside 10–20 (1), 8–30
/// packets a minute (2), over 90 % of flows from the higher port (3), and
/// at least 300 s of activity (3).
pub fn score(c: &Counters, active: u32) -> u32 {
    let flows = c.flows();
    if flows == 0 {
        return 0;
    }
    let f = features(c, active);
    let mut s = 0;
    // C computes this share in single precision, unlike the tree's.
    let ack_share = ((c.ack_flows + c.ackpush_flows) as f32 / flows as f32 * 100.0) as i64;
    if ack_share >= 80 {
        s += 2;
    }
    if f.bpp > 50 && f.bpp < 130 {
        s += 2;
    }
    if f.ppf < 10 || f.ppf > 20 {
        s += 1;
    }
    if (8..=30).contains(&f.ppm) {
        s += 2;
    }
    if c.req_flows as f64 / flows as f64 > 0.9 {
        s += 3;
    }
    if active >= 300 {
        s += 3;
    }
    s
}

#[derive(Clone, Copy, Debug)]
enum Feat {
    Ppm,
    Bpp,
    Ppf,
    AckPushPct,
    SynPct,
    RstPct,
    FinPct,
    ReqPct,
}

#[derive(Clone, Copy, Debug)]
enum Next {
    /// Another test: an index into [`TREE`].
    N(u8),
    /// A miner.
    Yes,
    /// Not a miner.
    No,
}

use Feat::*;
use Next::*;

/// The J48 tree of the C module (`compute_weka_tree`) as a table: each row
/// is (feature, threshold, next when feature <= threshold, next when
/// feature > threshold); row 0 is the root. Rows are numbered in the order
/// a depth-first walk (the "<=" side first) meets the tests.
#[rustfmt::skip]
const TREE: [(Feat, i64, Next, Next); 76] = [
    /*  0 */ (Ppm, 135, N(1), N(73)),
    /*  1 */ (Bpp, 70, N(2), N(69)),
    /*  2 */ (Ppm, 12, N(3), No),
    /*  3 */ (RstPct, 1, N(4), N(65)),
    /*  4 */ (FinPct, 7, N(5), No),
    /*  5 */ (Ppf, 3, N(6), N(57)),
    /*  6 */ (Bpp, 59, N(7), N(51)),
    /*  7 */ (AckPushPct, 86, No, N(8)),
    /*  8 */ (Ppf, 1, N(9), N(19)),
    /*  9 */ (Bpp, 54, N(10), No),
    /* 10 */ (Ppm, 5, N(11), No),
    /* 11 */ (SynPct, 1, N(12), N(18)),
    /* 12 */ (AckPushPct, 95, No, N(13)),
    /* 13 */ (Ppm, 1, Yes, N(14)),
    /* 14 */ (AckPushPct, 97, No, N(15)),
    /* 15 */ (FinPct, 0, N(16), No),
    /* 16 */ (AckPushPct, 99, N(17), Yes),
    /* 17 */ (Ppm, 4, No, Yes),
    /* 18 */ (FinPct, 6, No, Yes),
    /* 19 */ (Ppf, 2, N(20), N(48)),
    /* 20 */ (SynPct, 6, N(21), No),
    /* 21 */ (RstPct, 0, N(22), N(44)),
    /* 22 */ (Bpp, 55, N(23), N(37)),
    /* 23 */ (FinPct, 3, N(24), No),
    /* 24 */ (AckPushPct, 93, N(25), N(26)),
    /* 25 */ (Ppm, 5, No, Yes),
    /* 26 */ (Bpp, 52, N(27), N(32)),
    /* 27 */ (Ppm, 6, N(28), No),
    /* 28 */ (AckPushPct, 99, N(29), Yes),
    /* 29 */ (FinPct, 0, No, N(30)),
    /* 30 */ (Bpp, 43, Yes, N(31)),
    /* 31 */ (SynPct, 0, Yes, No),
    /* 32 */ (Ppm, 3, N(33), N(34)),
    /* 33 */ (AckPushPct, 97, No, Yes),
    /* 34 */ (AckPushPct, 98, N(35), No),
    /* 35 */ (Bpp, 54, Yes, N(36)),
    /* 36 */ (AckPushPct, 94, Yes, No),
    /* 37 */ (Ppm, 8, N(38), No),
    /* 38 */ (Ppm, 1, No, N(39)),
    /* 39 */ (AckPushPct, 99, N(40), Yes),
    /* 40 */ (AckPushPct, 94, N(41), No),
    /* 41 */ (Ppm, 4, No, N(42)),
    /* 42 */ (Bpp, 56, Yes, N(43)),
    /* 43 */ (AckPushPct, 89, Yes, No),
    /* 44 */ (Bpp, 56, N(45), No),
    /* 45 */ (AckPushPct, 96, N(46), No),
    /* 46 */ (Bpp, 40, Yes, N(47)),
    /* 47 */ (Ppm, 6, No, Yes),
    /* 48 */ (AckPushPct, 99, No, N(49)),
    /* 49 */ (Ppm, 5, N(50), No),
    /* 50 */ (Ppm, 3, No, Yes),
    /* 51 */ (Ppf, 1, No, N(52)),
    /* 52 */ (Ppm, 4, N(53), No),
    /* 53 */ (FinPct, 1, N(54), No),
    /* 54 */ (Ppm, 2, No, N(55)),
    /* 55 */ (SynPct, 91, N(56), Yes),
    /* 56 */ (AckPushPct, 99, No, Yes),
    /* 57 */ (AckPushPct, 99, No, N(58)),
    /* 58 */ (Bpp, 57, No, N(59)),
    /* 59 */ (Ppm, 6, No, N(60)),
    /* 60 */ (Ppf, 10, N(61), No),
    /* 61 */ (Ppm, 10, N(62), No),
    /* 62 */ (Bpp, 67, N(63), No),
    /* 63 */ (Ppf, 8, N(64), Yes),
    /* 64 */ (Bpp, 58, Yes, No),
    /* 65 */ (FinPct, 97, N(66), N(68)),
    /* 66 */ (SynPct, 2, N(67), No),
    /* 67 */ (Ppf, 5, No, Yes),
    /* 68 */ (Ppf, 6, No, Yes),
    /* 69 */ (Ppm, 70, N(70), N(71)),
    /* 70 */ (ReqPct, 75, Yes, No),
    /* 71 */ (AckPushPct, 99, No, N(72)),
    /* 72 */ (Bpp, 105, No, Yes),
    /* 73 */ (Bpp, 103, No, N(74)),
    /* 74 */ (Bpp, 108, N(75), No),
    /* 75 */ (Ppf, 230, Yes, No),
];

impl Features {
    fn get(&self, f: Feat) -> i64 {
        match f {
            Ppm => i64::from(self.ppm),
            Bpp => i64::from(self.bpp),
            Ppf => i64::from(self.ppf),
            AckPushPct => i64::from(self.ackpush_pct),
            SynPct => i64::from(self.syn_pct),
            RstPct => i64::from(self.rst_pct),
            FinPct => i64::from(self.fin_pct),
            ReqPct => i64::from(self.req_pct),
        }
    }
}

/// The tree's verdict: true = looks like a miner talking to its pool.
pub fn tree(f: &Features) -> bool {
    let mut row = 0usize;
    // A walk is at most as long as the table (the rows only point forward).
    for _ in 0..TREE.len() {
        let (feat, threshold, le, gt) = TREE[row];
        match if f.get(feat) <= threshold { le } else { gt } {
            N(next) => row = usize::from(next),
            Yes => return true,
            No => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 ACK|PSH flows of 5 packets, 100 bytes a packet, all from the
    /// higher port.
    fn counters() -> Counters {
        Counters {
            ackpush_flows: 10,
            req_flows: 10,
            packets: 50,
            bytes: 5000,
            ..Counters::default()
        }
    }

    #[test]
    fn features_as_c_computes_them() {
        let mut c = counters();
        c.ack_flows = 2;
        c.other_flows = 3;
        c.syn_flows = 1;
        c.rst_flows = 2;
        c.fin_flows = 3;
        c.packets = 47;
        // 15 flows: 12/15 = 80 %, 1/15 = 6.67 %, 2/15 = 13.3 %, 3/15 = 20 %,
        // 10/15 = 66.7 %; 5000/47 = 106.4 bytes a packet, 47/15 = 3.1 a flow;
        // 47 packets in 90 s = 31.3 a minute.
        let f = features(&c, 90);
        assert_eq!(
            f,
            Features {
                ppm: 31,
                bpp: 106,
                ppf: 3,
                ackpush_pct: 80,
                syn_pct: 6,
                rst_pct: 13,
                fin_pct: 20,
                req_pct: 66,
            }
        );
        assert_eq!(features(&c, 4).ppm, -1, "under 5 s: no rate");
        assert_eq!(features(&c, 5).ppm, 564);
    }

    #[test]
    fn score_points() {
        let c = counters();
        // 100 % ACK|PSH (2), 100 B/packet (2), 5 packets/flow (1),
        // 10 packets/min (2), all from the higher port (3), 300 s (3).
        assert_eq!(score(&c, 300), 13);
        // 299 s: no points for the duration; 50 / 4.98 min is still 10/min.
        assert_eq!(score(&c, 299), 10);
        // 60 s: 50 packets/min, no rate points either.
        assert_eq!(score(&c, 60), 8);
        // Under 5 s there is no rate at all.
        assert_eq!(score(&c, 4), 8);
        let with = |f: &dyn Fn(&mut Counters)| {
            let mut c = counters();
            f(&mut c);
            score(&c, 300)
        };
        // 8 of 10 flows ACK|PSH is enough (80 %), 7 is not.
        assert_eq!(
            with(&|c| {
                c.ackpush_flows = 8;
                c.other_flows = 2;
                c.packets = 50;
            }),
            13
        );
        assert_eq!(
            with(&|c| {
                c.ackpush_flows = 7;
                c.other_flows = 3;
            }),
            11
        );
        // bytes per packet: 50 and 130 are outside the open interval.
        assert_eq!(with(&|c| c.bytes = 2500), 11);
        assert_eq!(with(&|c| c.bytes = 6500), 11);
        assert_eq!(with(&|c| c.bytes = 2550), 13);
        // packets per flow 10 and 20 score nothing, 21 does (100 B a packet;
        // the rate is 20, 40 and 42 packets a minute).
        let ppf = |n: u64| {
            with(&|c: &mut Counters| {
                c.packets = n;
                c.bytes = n * 100;
            })
        };
        assert_eq!(ppf(100), 12);
        assert_eq!(ppf(200), 10);
        assert_eq!(ppf(210), 11);
        // Exactly 90 % from the higher port is not "over 90 %".
        assert_eq!(with(&|c| c.req_flows = 9), 10);
        assert_eq!(score(&Counters::default(), 300), 0, "no flows");
    }

    fn f(ppm: i32, bpp: u32, ppf: u32) -> Features {
        Features {
            ppm,
            bpp,
            ppf,
            ackpush_pct: 100,
            req_pct: 100,
            ..Features::default()
        }
    }

    #[test]
    fn tree_fast_branch() {
        // ppm > 135: only 104..=108 bytes a packet with ppf <= 230 is a miner.
        assert!(tree(&f(200, 106, 5)));
        assert!(tree(&f(136, 104, 230)));
        assert!(!tree(&f(200, 106, 231)));
        assert!(!tree(&f(200, 103, 5)));
        assert!(!tree(&f(200, 109, 5)));
        // 135 is on the other side: bpp 106 > 70, ppm > 70, ackpush 100 %
        // > 99, bpp > 105.
        assert!(tree(&f(135, 106, 5)));
        assert!(!tree(&f(135, 105, 5)));
        let mut x = f(135, 106, 5);
        x.ackpush_pct = 99;
        assert!(!tree(&x));
    }

    #[test]
    fn tree_big_packets_slow_rate() {
        // bpp > 70, ppm <= 70: decided by the share of flows from the
        // higher port (<= 75 % is a miner).
        let mut x = f(70, 71, 5);
        x.req_pct = 75;
        assert!(tree(&x));
        x.req_pct = 76;
        assert!(!tree(&x));
        x.ppm = -1;
        assert!(!tree(&x));
    }

    #[test]
    fn tree_small_packets() {
        // bpp <= 70 and more than 12 packets a minute: not a miner.
        assert!(!tree(&f(13, 70, 1)));
        // RST in over 1 % of flows, FIN in at most 97 %, SYN in at most
        // 2 %: decided by packets per flow (> 5 is a miner).
        let mut x = f(12, 60, 6);
        x.rst_pct = 2;
        x.fin_pct = 97;
        x.syn_pct = 2;
        assert!(tree(&x));
        x.ppf = 5;
        assert!(!tree(&x));
        x.ppf = 6;
        x.syn_pct = 3;
        assert!(!tree(&x));
        // FIN in over 97 %: more than 6 packets a flow is a miner.
        x.fin_pct = 98;
        assert!(!tree(&x));
        x.ppf = 7;
        assert!(tree(&x));
        // A deep one: no RST/FIN/SYN, 1 packet a flow, 50 B, 100 % ACK,
        // 1 packet a minute.
        let mut y = f(1, 50, 1);
        y.req_pct = 0;
        assert!(tree(&y));
        // 4 a minute is one too with 100 % ACK / ACK|PSH, not with 99 %,
        // where it takes 5.
        y.ppm = 4;
        assert!(tree(&y));
        y.ackpush_pct = 99;
        assert!(!tree(&y));
        y.ppm = 5;
        assert!(tree(&y));
        // bpp 60 > 59 with one packet a flow: no.
        assert!(!tree(&f(-1, 60, 1)));
    }
}
