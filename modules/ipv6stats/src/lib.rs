//! ipv6stats: IPv4 and IPv6 traffic, IPv6 tunnels and unique addresses per
//! time window, written to small text files (NEMEA's ipv6stats, whose files
//! monitoring scripts read).
//!
//! Windows are on record time (TIME_LAST, whole seconds) and end at
//! multiples of their length: a short one (default 300 s) and a long one
//! (default 12 short ones). When a record reaches the end of a window, that
//! window's statistics are written and it starts again. Per short window:
//! flows, packets and bits per second of IPv4 and of IPv6 (by SRC_IP's
//! family), and of each IPv6 tunnel type (IPV6_TUN_TYPE of IPv4 flows: bit
//! 0 Teredo, 1 ISATAP, 2 6to4, 3 AYIYA, 4 Proto41, 5 6over4 — the highest
//! bit set decides; IPv6 flows count as Native). Per short and long window:
//! how many distinct IPv4 addresses, IPv6 addresses, /64 and /48 prefixes
//! sent flows of at least `threshold` packets (SRC_IP).
//!
//! Files (the long window's with `_L`):
//!
//! ```text
//! cnt_addr:      ipv4 N / ipv6 N / ipv6_48 N / ipv6_64 N / updated STAMP
//! traffic:       ipv4 PKT/s BIT/s FLOW/s / ipv6 ... / updated STAMP
//! ipv6_tunnels:  Native ... / Teredo ... / ISATAP / 6to4 / AYIYA / Proto41 / 6over4 / updated STAMP
//! ```
//!
//! (one item per line, rates with three decimals; `INACTIVE` is added when
//! the files were written because no data came).
//!
//! Differences from C: distinct addresses are counted exactly (C uses Bloom
//! filters, which may undercount); the 6over4 line shows 6over4's counters
//! (C's repeats 6to4's); after a jump in record time the window ends move to
//! the next multiple past it (C moves them one window per record); only
//! SRC_IP, PACKETS, BYTES and TIME_LAST are required (IPV6_TUN_TYPE is read
//! when present).

use detector_common::FastSet;
use unirec::UrIp;

/// C's defaults: windows of 300 s and 12 × 300 s, threshold 1 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub short: u32,
    pub long: u32,
    pub threshold: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            short: 300,
            long: 3600,
            threshold: 1,
        }
    }
}

/// The fields of one flow that matter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub src_ip: UrIp,
    pub packets: u32,
    pub bytes: u64,
    /// IPV6_TUN_TYPE (0 when the input has none).
    pub tunnel: u8,
    /// TIME_LAST in seconds.
    pub time: u32,
}

/// Flows, packets, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Volume {
    flows: u64,
    packets: u64,
    bytes: u64,
}

impl Volume {
    fn add(&mut self, f: &Flow) {
        self.flows += 1;
        self.packets += u64::from(f.packets);
        self.bytes = self.bytes.wrapping_add(f.bytes);
    }

    fn line(&self, name: &str, window: u32) -> String {
        let w = window as f32;
        format!(
            "{name} {:.3} {:.3} {:.3}\n",
            self.packets as f32 / w,
            self.bytes.wrapping_mul(8) as f32 / w,
            self.flows as f32 / w
        )
    }
}

/// Tunnel rows of `ipv6_tunnels`, in the file's order.
pub const TUNNELS: [&str; 7] = [
    "Native", "Teredo", "ISATAP", "6to4", "AYIYA", "Proto41", "6over4",
];

#[derive(Default)]
struct Unique {
    v4: FastSet<u32>,
    v6: FastSet<u128>,
    p64: FastSet<u64>,
    p48: FastSet<u64>,
}

impl Unique {
    fn add(&mut self, ip: &UrIp) {
        if ip.is_ipv4() {
            self.v4
                .insert(u32::from_be_bytes([ip.0[8], ip.0[9], ip.0[10], ip.0[11]]));
        } else {
            let a = u128::from_be_bytes(ip.0);
            self.v6.insert(a);
            self.p64.insert((a >> 64) as u64);
            self.p48.insert((a >> 80) as u64);
        }
    }

    fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
        self.p64.clear();
        self.p48.clear();
    }

    fn text(&self) -> String {
        format!(
            "ipv4 {}\nipv6 {}\nipv6_48 {}\nipv6_64 {}\n",
            self.v4.len(),
            self.v6.len(),
            self.p48.len(),
            self.p64.len()
        )
    }
}

/// A file to (re)write: its name in the output directory and its text.
pub type File = (String, String);

/// The statistics of the current windows.
pub struct Ipv6Stats {
    cfg: Config,
    /// End of the short and the long window (after the first record).
    ends: Option<(u32, u32)>,
    v4: Volume,
    v6: Volume,
    tunnels: [Volume; 7],
    short: Unique,
    long: Unique,
}

/// The next multiple of `w` after `t`.
fn window_end(t: u32, w: u32) -> u32 {
    t.saturating_add(w - t % w)
}

/// Which tunnel row an IPV6_TUN_TYPE value counts in (`None`: none).
fn tunnel_row(t: u8) -> Option<usize> {
    match 8 - t.leading_zeros() as usize {
        0 => None,
        n if n < TUNNELS.len() => Some(n),
        _ => None,
    }
}

impl Ipv6Stats {
    /// Window lengths are at least one second.
    pub fn new(cfg: Config) -> Ipv6Stats {
        let cfg = Config {
            short: cfg.short.max(1),
            long: cfg.long.max(1),
            ..cfg
        };
        Ipv6Stats {
            cfg,
            ends: None,
            v4: Volume::default(),
            v6: Volume::default(),
            tunnels: [Volume::default(); 7],
            short: Unique::default(),
            long: Unique::default(),
        }
    }

    /// Counts a flow; the files of the windows it ends go to `out`, their
    /// `updated` line showing `stamp()` (called only then).
    pub fn flow(&mut self, f: &Flow, stamp: impl Fn() -> String, out: &mut Vec<File>) {
        let (short_end, long_end) = *self.ends.get_or_insert((
            window_end(f.time, self.cfg.short),
            window_end(f.time, self.cfg.long),
        ));
        if f.time >= short_end {
            out.extend(self.short_files(&stamp(), false));
            self.clear_short();
        }
        if f.time >= long_end {
            out.push(self.long_file(&stamp(), false));
            self.long.clear();
        }
        if let Some((s, l)) = &mut self.ends {
            if f.time >= *s {
                *s = window_end(f.time, self.cfg.short);
            }
            if f.time >= *l {
                *l = window_end(f.time, self.cfg.long);
            }
        }
        if f.src_ip.is_ipv4() {
            self.v4.add(f);
            if let Some(row) = tunnel_row(f.tunnel) {
                self.tunnels[row].add(f);
            }
        } else {
            self.v6.add(f);
            self.tunnels[0].add(f);
        }
        if f.packets >= self.cfg.threshold {
            self.short.add(&f.src_ip);
            self.long.add(&f.src_ip);
        }
    }

    fn clear_short(&mut self) {
        self.v4 = Volume::default();
        self.v6 = Volume::default();
        self.tunnels = [Volume::default(); 7];
        self.short.clear();
    }

    fn short_files(&self, stamp: &str, inactive: bool) -> [File; 3] {
        let tail = format!(
            "updated {stamp}\n{}",
            if inactive { "INACTIVE\n" } else { "" }
        );
        let w = self.cfg.short;
        let traffic = format!(
            "{}{}{tail}",
            self.v4.line("ipv4", w),
            self.v6.line("ipv6", w)
        );
        let tunnels: String = TUNNELS
            .iter()
            .zip(&self.tunnels)
            .map(|(n, v)| v.line(n, w))
            .collect();
        [
            ("cnt_addr".into(), format!("{}{tail}", self.short.text())),
            ("traffic".into(), traffic),
            ("ipv6_tunnels".into(), format!("{tunnels}{tail}")),
        ]
    }

    fn long_file(&self, stamp: &str, inactive: bool) -> File {
        let tail = if inactive { "INACTIVE\n" } else { "" };
        (
            "cnt_addr_L".into(),
            format!("{}updated {stamp}\n{tail}", self.long.text()),
        )
    }

    /// The files of both windows as they stand (at exit).
    pub fn files(&self, stamp: &str) -> Vec<File> {
        let mut v = self.short_files(stamp, false).to_vec();
        v.push(self.long_file(stamp, false));
        v
    }

    /// No data for a while: both windows are written, marked INACTIVE, and
    /// start again one window later.
    pub fn inactive(&mut self, stamp: &str) -> Vec<File> {
        let mut v = self.short_files(stamp, true).to_vec();
        v.push(self.long_file(stamp, true));
        self.clear_short();
        self.long.clear();
        if let Some((s, l)) = &mut self.ends {
            *s = s.saturating_add(self.cfg.short);
            *l = l.saturating_add(self.cfg.long);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(ip: &str, packets: u32, bytes: u64, tunnel: u8, time: u32) -> Flow {
        Flow {
            src_ip: UrIp::parse(ip).unwrap(),
            packets,
            bytes,
            tunnel,
            time,
        }
    }

    fn file<'a>(files: &'a [File], name: &str) -> &'a str {
        &files.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn counts_traffic_tunnels_and_unique_addresses() {
        let mut s = Ipv6Stats::new(Config {
            short: 10,
            long: 20,
            threshold: 2,
        });
        let mut out = Vec::new();
        let t = 1000; // a multiple of 10 and 20: windows end at 1010 / 1020
        s.flow(&flow("192.0.2.1", 5, 100, 0, t), || "S".into(), &mut out);
        s.flow(
            &flow("192.0.2.1", 5, 100, 1, t + 1),
            || "S".into(),
            &mut out,
        ); // Teredo
        s.flow(&flow("192.0.2.2", 1, 10, 4, t + 2), || "S".into(), &mut out); // 6to4; under the threshold
        s.flow(
            &flow("2001:db8:1:1::1", 3, 30, 0, t + 3),
            || "S".into(),
            &mut out,
        );
        s.flow(
            &flow("2001:db8:1:1::2", 3, 30, 0, t + 3),
            || "S".into(),
            &mut out,
        );
        s.flow(
            &flow("2001:db8:1:2::1", 3, 30, 32, t + 4),
            || "S".into(),
            &mut out,
        ); // IPv6: Native
        s.flow(
            &flow("2001:db9::1", 3, 30, 0, t + 5),
            || "S".into(),
            &mut out,
        );
        assert!(out.is_empty());
        s.flow(
            &flow("192.0.2.9", 2, 1, 0, t + 10),
            || "STAMP".into(),
            &mut out,
        );
        assert_eq!(out.len(), 3, "the short window ended");
        assert_eq!(
            file(&out, "cnt_addr"),
            "ipv4 1\nipv6 4\nipv6_48 2\nipv6_64 3\nupdated STAMP\n"
        );
        assert_eq!(
            file(&out, "traffic"),
            "ipv4 1.100 168.000 0.300\nipv6 1.200 96.000 0.400\nupdated STAMP\n"
        );
        assert_eq!(
            file(&out, "ipv6_tunnels"),
            "Native 1.200 96.000 0.400\nTeredo 0.500 80.000 0.100\nISATAP 0.000 0.000 0.000\n\
6to4 0.100 8.000 0.100\nAYIYA 0.000 0.000 0.000\nProto41 0.000 0.000 0.000\n6over4 0.000 0.000 0.000\nupdated STAMP\n"
        );
        out.clear();
        // The long window still remembers the first window's addresses.
        s.flow(&flow("192.0.2.1", 9, 1, 0, t + 25), || "L".into(), &mut out);
        assert_eq!(
            out.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["cnt_addr", "traffic", "ipv6_tunnels", "cnt_addr_L"]
        );
        assert_eq!(
            file(&out, "cnt_addr_L"),
            "ipv4 2\nipv6 4\nipv6_48 2\nipv6_64 3\nupdated L\n"
        );
        assert_eq!(
            file(&out, "cnt_addr"),
            "ipv4 1\nipv6 0\nipv6_48 0\nipv6_64 0\nupdated L\n"
        );
        // At exit, the windows as they are.
        let end = s.files("E");
        assert_eq!(
            file(&end, "cnt_addr"),
            "ipv4 1\nipv6 0\nipv6_48 0\nipv6_64 0\nupdated E\n"
        );
        assert_eq!(file(&end, "cnt_addr_L"), file(&end, "cnt_addr"));
        let idle = s.inactive("I");
        assert!(idle
            .iter()
            .all(|(_, t)| t.ends_with("updated I\nINACTIVE\n")));
        assert_eq!(
            file(&s.files("x"), "cnt_addr"),
            "ipv4 0\nipv6 0\nipv6_48 0\nipv6_64 0\nupdated x\n"
        );
    }

    #[test]
    fn tunnel_rows_by_highest_bit() {
        assert_eq!(tunnel_row(0), None);
        assert_eq!(tunnel_row(1), Some(1));
        assert_eq!(tunnel_row(3), Some(2));
        assert_eq!(tunnel_row(32), Some(6));
        assert_eq!(tunnel_row(64), None);
        assert_eq!(window_end(1000, 300), 1200);
        assert_eq!(window_end(1200, 300), 1500);
    }
}
