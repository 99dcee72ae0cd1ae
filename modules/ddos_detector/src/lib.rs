//! ddos_detector — volumetric floods towards one destination (prefix):
//! traffic and the number of its sources both jump well above their recent
//! average. After NEMEA's ddos_detector 1.0.3.
//!
//! Per masked IPv4 destination the detector keeps bytes and distinct
//! (masked) sources for the last 7 windows of 60 s (`--window`, an addition
//! to C, makes them shorter). A flood starts at a
//! window when it and the next both carry more than `t` times the average
//! bytes of the earlier windows, more than the minimal attack size, and
//! more than `c` times the average number of sources. While it lasts the
//! bytes above the baseline are summed and reported every 300 s; a final
//! report is sent when traffic falls back (or at the end of the input).
//!
//! Differences from C (documented in --help): bytes of flows spanning three
//! or more windows are spread over all of them (C loses the older part), and
//! floods still open at the end of input include the excess of the windows
//! not yet rotated out, and a flow's source is counted in the window of the
//! flow's TIME_LAST (C counts it in the current window, so flows exported
//! late by the flow meter shift the source counts and hide floods).
//! EVENT_ID is `(seed + flood number) << 32 | dst` instead of
//! `rand() << 32 | dst`.
#![forbid(unsafe_code)]

use detector_common::{field, FastMap, Flow, FlowDetector};
use std::net::Ipv4Addr;
use unirec::{RecordBuilder, RecordError, UrIp, UrTime};

/// The fields read from each flow.
pub const INPUT_SPEC: &str =
    "ipaddr DST_IP,ipaddr SRC_IP,uint64 BYTES,time TIME_FIRST,time TIME_LAST";

/// The alert template of the C detector.
pub const ALERT_SPEC: &str = "ipaddr DST_IP,uint64 BYTES,time TIME_FIRST,time TIME_LAST,\
uint64 EVENT_ID,uint16 EVENT_SEQ,uint64 AVG_BYTES_CURRENT,uint64 AVG_BYTES_ORIGINAL,\
uint32 AVG_IP_CNT_CURRENT,uint32 AVG_IP_CNT_ORIGINAL";

/// Window length (s).
pub const INTERVAL: u32 = 60;
/// Windows kept: (330 s longest flow + 90 s delay) / 60.
pub const N: usize = 7;
/// Least time between two reports of one flood (s), with C's windows: five
/// windows (shorter windows report as often in windows).
pub const REPORT_GAP: u32 = 300;
const BITMAP_BITS: u32 = 512;

/// Options, in the units of the C command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// -m: minimal attack size, kb/s.
    pub minimal_attack_size: u64,
    /// -b: minimal traffic before the attack, kb/s (smaller baselines are
    /// not reported).
    pub min_traffic_before_attack: u64,
    /// -t: traffic must exceed this multiple of the average.
    pub threshold_flow_rate: u64,
    /// -c: sources must exceed this multiple of the average.
    pub threshold_ip_count_rate: u64,
    /// -s: source prefix length.
    pub mask_src: u8,
    /// -d: destination prefix length.
    pub mask_dst: u8,
    /// -p: destinations with less traffic (kb/s over all windows) are dropped.
    pub min_threshold_before_pruning: u64,
    /// First EVENT_ID high word.
    pub event_id_seed: u32,
    /// Window length, seconds: C's fixed [`INTERVAL`] by default; shorter
    /// windows (`--window`) make a lab's floods visible in seconds.
    pub interval: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            minimal_attack_size: 1000,
            min_traffic_before_attack: 1,
            threshold_flow_rate: 4,
            threshold_ip_count_rate: 4,
            mask_src: 24,
            mask_dst: 32,
            min_threshold_before_pruning: 10,
            event_id_seed: 0,
            interval: INTERVAL,
        }
    }
}

/// One report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub dst_ip: UrIp,
    pub bytes: u64,
    pub time_first: UrTime,
    pub time_last: UrTime,
    pub event_id: u64,
    pub event_seq: u16,
    pub avg_bytes_current: u64,
    pub avg_bytes_original: u64,
    pub avg_ip_cnt_current: u32,
    pub avg_ip_cnt_original: u32,
}

#[derive(Debug, Clone)]
struct Flood {
    start: u32,
    /// Windows starting before this are already accounted (or pre-flood).
    accounted_until: u32,
    last_reported: u32,
    valid: bool,
    base_b: u64,
    base_ip: u64,
    bytes: u64,
    sum_b: u64,
    sum_ip: u64,
    count: u64,
    id: u64,
    seq: u16,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    /// Index 0 = oldest window, N-1 = current.
    bytes: [u64; N],
    srcs: [u32; N],
    /// Sources seen, per window.
    bitmap: [[u64; (BITMAP_BITS / 64) as usize]; N],
    flood: Option<Flood>,
}

/// The detector state.
#[derive(Debug)]
pub struct Detector {
    cfg: Config,
    min_attack: u64,
    min_before: u64,
    min_prune: u64,
    table: FastMap<u32, Entry>,
    now: u32,
    /// Start of the current window; 0 before the first flow.
    int_start: u32,
    floods: u32,
    /// The window length (from the config, at least 1 s).
    interval: u32,
}

fn mask(a: u32, prefix: u8) -> u32 {
    a & u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn ipv4(ip: UrIp) -> Option<u32> {
    ip.is_ipv4()
        .then(|| u32::from_be_bytes([ip.0[8], ip.0[9], ip.0[10], ip.0[11]]))
}

fn secs(t: u32) -> UrTime {
    UrTime::from_secs_millis(t, 0)
}

impl Detector {
    pub fn new(cfg: Config) -> Detector {
        Detector {
            min_attack: cfg
                .minimal_attack_size
                .saturating_mul(u64::from(cfg.interval.max(1)) * 1000)
                / 8,
            min_before: cfg
                .min_traffic_before_attack
                .saturating_mul(u64::from(cfg.interval.max(1)) * 1000)
                / 8,
            min_prune: cfg
                .min_threshold_before_pruning
                .saturating_mul(u64::from(cfg.interval.max(1)) * N as u64 * 1000)
                / 8,
            interval: cfg.interval.max(1),
            cfg,
            table: FastMap::default(),
            now: 0,
            int_start: 0,
            floods: 0,
        }
    }

    /// Destinations currently tracked.
    pub fn tracked(&self) -> usize {
        self.table.len()
    }

    /// Start time of window `i` (0 = oldest).
    fn win_start(&self, i: usize) -> u32 {
        self.int_start
            .saturating_sub(self.interval * (N - 1 - i) as u32)
    }

    fn report(&self, dst: u32, f: &mut Flood, until: u32) -> Alert {
        let n = f.count.max(1);
        let a = Alert {
            dst_ip: UrIp::from_v4(Ipv4Addr::from(dst)),
            bytes: f.bytes,
            time_first: secs(f.last_reported),
            time_last: secs(until),
            event_id: f.id,
            event_seq: f.seq,
            avg_bytes_current: f.sum_b / n / u64::from(self.interval),
            avg_bytes_original: f.base_b / u64::from(self.interval),
            avg_ip_cnt_current: (f.sum_ip / n) as u32,
            avg_ip_cnt_original: f.base_ip as u32,
        };
        f.last_reported = until;
        f.seq = f.seq.wrapping_add(1);
        f.bytes = 0;
        f.sum_b = 0;
        f.sum_ip = 0;
        f.count = 0;
        a
    }

    /// Baseline from the windows before the flood (leading empty ones skipped).
    fn set_baseline(&self, e: &Entry, f: &mut Flood) {
        let start_idx = (0..N).find(|&i| self.win_start(i) >= f.start).unwrap_or(N);
        let first = (0..start_idx)
            .find(|&i| e.bytes[i] > 0)
            .unwrap_or(start_idx);
        let n = (start_idx - first) as u64;
        let bytes: u64 = e.bytes[first..start_idx].iter().sum();
        let srcs: u64 = e.srcs[first..start_idx].iter().map(|&x| u64::from(x)).sum();
        f.base_b = bytes.checked_div(n).unwrap_or(0);
        f.base_ip = srcs.checked_div(n).unwrap_or(0);
        f.valid = true;
    }

    /// Adds window `i` of `e` to the flood's sums (once; windows at or
    /// below the baseline add nothing, as in C).
    fn account(&self, f: &mut Flood, e: &Entry, i: usize) {
        let ws = self.win_start(i);
        if ws < f.accounted_until {
            return;
        }
        f.accounted_until = ws + self.interval;
        let b = e.bytes[i];
        if b > f.base_b {
            f.bytes += b - f.base_b;
            f.sum_b += b;
            f.sum_ip += u64::from(e.srcs[i]);
            f.count += 1;
        }
    }

    /// Rotates out the `k` oldest windows of every entry.
    fn move_window(&mut self, k: usize, out: &mut Vec<Alert>) {
        let k = k.min(N);
        let end_discarded = self.win_start(0) + self.interval * k as u32;
        let mut table = std::mem::take(&mut self.table);
        let (t, c) = (
            self.cfg.threshold_flow_rate,
            self.cfg.threshold_ip_count_rate,
        );
        table.retain(|&dst, e| {
            let mut final_report = false;
            if let Some(mut f) = e.flood.take() {
                // A new flood gets its baseline; a known one ends when no
                // window after the discarded ones is still flooded.
                let newest = if f.valid {
                    (0..N).rev().find(|&i| {
                        e.bytes[i] >= t.saturating_mul(f.base_b)
                            && u64::from(e.srcs[i]) >= c.saturating_mul(f.base_ip)
                    })
                } else {
                    self.set_baseline(e, &mut f);
                    Some(N - 1)
                };
                for i in 0..k {
                    self.account(&mut f, e, i);
                }
                match newest {
                    Some(i) if i >= k => e.flood = Some(f),
                    _ => {
                        final_report = true;
                        if f.base_b >= self.min_before {
                            out.push(self.report(dst, &mut f, self.int_start + self.interval));
                        }
                    }
                }
            }
            e.bytes.rotate_left(k);
            e.srcs.rotate_left(k);
            e.bitmap.rotate_left(k);
            for i in N - k..N {
                e.bytes[i] = 0;
                e.srcs[i] = 0;
                e.bitmap[i] = Default::default();
            }
            let total: u64 = e.bytes.iter().sum();
            if total <= self.min_prune {
                if let Some(mut f) = e.flood.take() {
                    if f.valid && f.base_b >= self.min_before {
                        out.push(self.report(dst, &mut f, end_discarded));
                    }
                }
                return false;
            }
            if let Some(f) = &mut e.flood {
                if !final_report
                    && f.last_reported + REPORT_GAP / INTERVAL * self.interval <= end_discarded
                {
                    if f.base_b >= self.min_before {
                        out.push(self.report(dst, f, end_discarded));
                    } else {
                        e.flood = None;
                    }
                }
            }
            true
        });
        self.table = table;
    }

    /// Final reports for every flood and an empty table.
    fn flush_all(&mut self, out: &mut Vec<Alert>) {
        let mut table = std::mem::take(&mut self.table);
        let until = self.int_start + self.interval;
        let mut keys: Vec<u32> = table.keys().copied().collect();
        keys.sort_unstable();
        for dst in keys {
            let Some(e) = table.get_mut(&dst) else {
                continue;
            };
            let Some(mut f) = e.flood.take() else {
                continue;
            };
            if !f.valid {
                self.set_baseline(e, &mut f);
            }
            for i in 0..N {
                self.account(&mut f, e, i);
            }
            if f.base_b >= self.min_before {
                out.push(self.report(dst, &mut f, until));
            }
        }
    }

    fn detect(&mut self, dst: u32) {
        let Some(e) = self.table.get(&dst) else {
            return;
        };
        if e.flood.is_some() {
            return;
        }
        let Some(first) = (0..N).find(|&i| e.bytes[i] > 0) else {
            return;
        };
        let (t, c) = (
            self.cfg.threshold_flow_rate,
            self.cfg.threshold_ip_count_rate,
        );
        let (mut sum_b, mut sum_ip) = (0u64, 0u64);
        for i in first..N - 2 {
            sum_b += e.bytes[i];
            sum_ip += u64::from(e.srcs[i]);
            let n = (i - first + 1) as u64;
            let (avg_b, avg_ip) = (sum_b / n, sum_ip / n);
            let hot = |j: usize| {
                avg_b.saturating_mul(t) < e.bytes[j]
                    && e.bytes[j] > self.min_attack
                    && avg_ip.saturating_mul(c) < u64::from(e.srcs[j])
            };
            if hot(i + 1) && hot(i + 2) {
                let start = self.win_start(i + 1);
                self.floods = self.floods.wrapping_add(1);
                let id = (u64::from(self.cfg.event_id_seed.wrapping_add(self.floods)) << 32)
                    | u64::from(dst);
                if let Some(e) = self.table.get_mut(&dst) {
                    e.flood = Some(Flood {
                        start,
                        accounted_until: start,
                        last_reported: start,
                        valid: false,
                        base_b: 0,
                        base_ip: 0,
                        bytes: 0,
                        sum_b: 0,
                        sum_ip: 0,
                        count: 0,
                        id,
                        seq: 0,
                    });
                }
                return;
            }
        }
    }
}

impl FlowDetector for Detector {
    type Alert = Alert;

    fn input_spec(&self) -> &'static str {
        INPUT_SPEC
    }

    fn output_spec(&self) -> &'static str {
        ALERT_SPEC
    }

    fn flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        let Some(dst) = ipv4(f.dst_ip) else { return };
        let dst = mask(dst, self.cfg.mask_dst);
        let src = ipv4(f.src_ip).map_or(0, |s| mask(s, self.cfg.mask_src));
        let t = f.time_last.secs();
        if self.int_start == 0 || t > self.now + (N as u32) * self.interval {
            if self.int_start != 0 {
                self.flush_all(out);
            }
            self.table.clear();
            self.now = t;
            self.int_start = t - t % self.interval;
        }
        self.now = self.now.max(t);
        if self.now >= self.int_start + self.interval {
            let k = (self.now - self.int_start) / self.interval;
            self.move_window(k as usize, out);
            self.int_start += k * self.interval;
        }
        let start = f.time_first.secs();
        if t < start {
            return;
        }
        let oldest = self
            .int_start
            .saturating_sub(self.interval * (N as u32 - 1));
        if t < oldest {
            return; // older than every window kept
        }
        let e = self.table.entry(dst).or_default();
        // The source counts in the window of the flow's end.
        let win = (t.saturating_sub(oldest) / self.interval).min(N as u32 - 1) as usize;
        let bit = (src % (BITMAP_BITS - 1)) as usize;
        let (w, m) = (bit / 64, 1u64 << (bit % 64));
        if e.bitmap[win][w] & m == 0 {
            e.bitmap[win][w] |= m;
            e.srcs[win] += 1;
        }
        // Spread the bytes uniformly over the windows the flow touches.
        let dur = u64::from(t - start) + 1;
        let mut left = f.bytes;
        for i in (0..N).rev() {
            let ws = oldest + self.interval * i as u32;
            if t < ws {
                continue; // the flow ended before this window
            }
            let we = if i == N - 1 {
                u32::MAX
            } else {
                ws + self.interval
            };
            let overlap = t.saturating_add(1).min(we) - start.max(ws);
            let part = if i == 0 || start >= ws {
                left
            } else {
                (f.bytes * u64::from(overlap) / dur).min(left)
            };
            e.bytes[i] += part;
            left -= part;
            if left == 0 || start >= ws {
                break;
            }
        }
        self.detect(dst);
    }

    fn finish(&mut self, out: &mut Vec<Alert>) {
        self.flush_all(out);
    }

    fn encode(&self, a: &Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let t = b.template();
        let i = |n: &str| field(t, n);
        b.set_ip(i("DST_IP"), a.dst_ip)?;
        b.set_u64(i("BYTES"), a.bytes)?;
        b.set_time(i("TIME_FIRST"), a.time_first)?;
        b.set_time(i("TIME_LAST"), a.time_last)?;
        b.set_u64(i("EVENT_ID"), a.event_id)?;
        b.set_u16(i("EVENT_SEQ"), a.event_seq)?;
        b.set_u64(i("AVG_BYTES_CURRENT"), a.avg_bytes_current)?;
        b.set_u64(i("AVG_BYTES_ORIGINAL"), a.avg_bytes_original)?;
        b.set_u32(i("AVG_IP_CNT_CURRENT"), a.avg_ip_cnt_current)?;
        b.set_u32(i("AVG_IP_CNT_ORIGINAL"), a.avg_ip_cnt_original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u32 = 1_700_000_040; // a window boundary

    fn flow(src: [u8; 4], dst: [u8; 4], bytes: u64, t: u32) -> Flow {
        Flow {
            src_ip: UrIp::from_v4(src.into()),
            dst_ip: UrIp::from_v4(dst.into()),
            bytes,
            time_first: secs(t),
            time_last: secs(t),
            ..Flow::default()
        }
    }

    /// `minutes` of background traffic (2 sources, 100 kB/min), then
    /// `flood_minutes` of 40 sources sending 200 kB each per minute, then
    /// background again until minute `total`.
    fn scenario(flood_minutes: u32, total: u32) -> Vec<Flow> {
        let victim = [198, 51, 100, 10];
        let mut v = Vec::new();
        for m in 0..total {
            let t = T0 + m * 60;
            for s in 0..2u8 {
                v.push(flow([10, s, 0, 1], victim, 50_000, t + 5));
            }
            if (3..3 + flood_minutes).contains(&m) {
                for s in 0..40u8 {
                    v.push(flow(
                        [172, 16, s, 1],
                        victim,
                        200_000,
                        t + 10 + u32::from(s),
                    ));
                }
            }
        }
        v
    }

    fn cfg() -> Config {
        Config {
            minimal_attack_size: 100,        // 750 kB per window
            min_threshold_before_pruning: 1, // 52.5 kB over 7 windows
            ..Config::default()
        }
    }

    fn run(cfg: Config, flows: &[Flow]) -> Vec<Alert> {
        let mut d = Detector::new(cfg);
        let mut out = Vec::new();
        for f in flows {
            d.flow(f, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn steady_traffic_is_silent() {
        assert!(run(cfg(), &scenario(0, 20)).is_empty());
        // A flood below the minimal attack size (default 1000 kb/s) is silent.
        assert!(run(Config::default(), &scenario(3, 20)).is_empty());
    }

    #[test]
    fn flood_reported_with_the_expected_fields() {
        let out = run(cfg(), &scenario(3, 20));
        assert_eq!(out.len(), 1, "{out:?}");
        let a = &out[0];
        assert_eq!(a.dst_ip.to_string(), "198.51.100.10");
        assert_eq!(a.time_first.secs(), T0 + 3 * 60);
        assert_eq!(
            a.event_id & 0xffff_ffff,
            u64::from(u32::from_be_bytes([198, 51, 100, 10]))
        );
        assert_eq!(a.event_seq, 0);
        // Baseline 100 kB/min from 2 sources; the flood adds 8 MB/min from 40.
        assert_eq!(a.avg_bytes_original, 100_000 / 60);
        assert_eq!(a.avg_ip_cnt_original, 2);
        assert_eq!(a.avg_ip_cnt_current, 42);
        assert_eq!(a.bytes, 3 * 8_000_000);
        assert_eq!(a.avg_bytes_current, 8_100_000 / 60);
    }

    /// The same flood in windows of 2 s: the same report, its times and
    /// per-second averages on the shorter clock (the bytes are per window,
    /// so the rates are 30 times the minute's).
    #[test]
    fn short_windows_see_the_same_flood() {
        let minute: Vec<Flow> = scenario(3, 20);
        let short: Vec<Flow> = minute
            .iter()
            .map(|f| {
                let t = T0 + (f.time_last.secs() - T0) / 30;
                Flow {
                    time_first: UrTime::from_secs_millis(t, 0),
                    time_last: UrTime::from_secs_millis(t, 0),
                    ..*f
                }
            })
            .collect();
        let out = run(
            Config {
                interval: 2,
                minimal_attack_size: 100 * 30,
                min_threshold_before_pruning: 30,
                ..cfg()
            },
            &short,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        let a = &out[0];
        assert_eq!(a.time_first.secs(), T0 + 3 * 2);
        assert_eq!(a.bytes, 3 * 8_000_000);
        assert_eq!(a.avg_bytes_original, 100_000 / 2);
        assert_eq!(a.avg_ip_cnt_current, 42);
    }

    #[test]
    fn long_flood_is_reported_every_five_minutes() {
        let out = run(cfg(), &scenario(15, 30));
        assert!(out.len() >= 3, "{out:?}");
        assert!(out.iter().all(|a| a.event_id == out[0].event_id));
        for (i, a) in out.iter().enumerate() {
            assert_eq!(usize::from(a.event_seq), i);
            if i > 0 {
                assert_eq!(a.time_first, out[i - 1].time_last);
            }
        }
        let total: u64 = out.iter().map(|a| a.bytes).sum();
        assert_eq!(total, 15 * 8_000_000);
    }

    #[test]
    fn ipv6_and_inverted_times_are_skipped() {
        let mut d = Detector::new(cfg());
        let mut out = Vec::new();
        let mut f = flow([10, 0, 0, 1], [10, 0, 0, 2], 5, T0);
        f.dst_ip = UrIp::parse("2001:db8::1").unwrap();
        d.flow(&f, &mut out);
        assert_eq!(d.tracked(), 0);
        let mut f = flow([10, 0, 0, 1], [10, 0, 0, 2], 5, T0);
        f.time_first = secs(T0 + 5);
        d.flow(&f, &mut out);
        assert_eq!(d.tracked(), 0);
    }

    #[test]
    fn late_flows_land_in_their_own_window() {
        let mut d = Detector::new(cfg());
        let mut out = Vec::new();
        d.flow(
            &flow([10, 0, 0, 1], [10, 0, 0, 2], 5, T0 + 6 * 60),
            &mut out,
        );
        d.flow(
            &flow([10, 0, 0, 1], [10, 0, 0, 2], 7, T0 + 2 * 60 + 30),
            &mut out,
        );
        d.flow(&flow([10, 0, 0, 3], [10, 0, 0, 2], 9, T0 + 5), &mut out);
        let e = &d.table[&u32::from_be_bytes([10, 0, 0, 2])];
        assert_eq!(e.bytes, [9, 0, 7, 0, 0, 0, 5]);
        assert_eq!(e.srcs, [1, 0, 1, 0, 0, 0, 1]);
        // Older than the oldest window: ignored.
        d.flow(&flow([10, 0, 0, 1], [10, 0, 0, 2], 11, T0 - 60), &mut out);
        let e = &d.table[&u32::from_be_bytes([10, 0, 0, 2])];
        assert_eq!((e.bytes[0], e.srcs[0]), (9, 1));
    }

    #[test]
    fn long_flows_are_spread_over_their_windows() {
        let mut d = Detector::new(cfg());
        let mut out = Vec::new();
        d.flow(
            &flow([10, 0, 0, 1], [10, 0, 0, 2], 0, T0 + 6 * 60),
            &mut out,
        );
        let mut f = flow([10, 0, 0, 1], [10, 0, 0, 2], 360, T0 + 6 * 60 + 59);
        f.time_first = secs(T0 + 60);
        d.flow(&f, &mut out);
        let e = &d.table[&u32::from_be_bytes([10, 0, 0, 2])];
        // 360 s over windows 1..=6 of 7: 60 bytes each, nothing lost.
        assert_eq!(e.bytes, [0, 60, 60, 60, 60, 60, 60]);
    }
}
