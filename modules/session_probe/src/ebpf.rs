//! The kernel edge: loads `bpf/session_probe.bpf.c` (compiled by build.rs
//! with clang), attaches it to TC ingress and egress of one interface, and
//! reads a window: flip `control[0]` so the program writes the other
//! buffer, wait a grace period for programs still running on the old one,
//! then drain the idle buffer (every session, every queued packet, the
//! counters) and erase it.
//!
//! The loader is aya (pure Rust): no C library to link, so it does not
//! depend on the libbpf version Debian ships, and the only unsafe code is
//! the `Pod` declarations below, whose layouts the tests check.

use crate::features::{Counters, PacketInfo, SessionCounters, SessionKey, Sizes, WindowContents};
use aya::maps::{Array, HashMap, MapData, MapError, Queue};
use aya::programs::{tc, SchedClassifier, TcAttachType};
use aya::{Ebpf, EbpfLoader};
use std::time::Duration;

/// The compiled program (empty when clang was missing at build time),
/// aligned as the ELF parser requires.
pub static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/session_probe.bpf.o"));

/// How long programs that read the old selector may still write the old
/// buffer after a swap. A TC program runs to completion in microseconds.
pub const GRACE: Duration = Duration::from_millis(10);

/// `struct skey` of the C program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skey {
    pub addr_a: [u8; 16],
    pub addr_b: [u8; 16],
    pub port_a: u16,
    pub port_b: u16,
    pub proto: u8,
    pub pad: [u8; 3],
}

/// `struct sval` of the C program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sval {
    pub first_ns: u64,
    pub last_ns: u64,
    pub bytes_ab: u64,
    pub bytes_ba: u64,
    pub pkts_ab: u32,
    pub pkts_ba: u32,
    pub captured: u32,
    pub first_dir: u8,
    pub syn_dir: u8,
    pub pad: [u8; 2],
}

/// `struct pkt` of the C program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pkt {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub ts_ns: u64,
    pub len: u32,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub tcp_flags: u8,
    pub pad: [u8; 6],
}

// The C structs are 40, 48 and 56 bytes with every byte a named field.
const _: () = assert!(std::mem::size_of::<Skey>() == 40);
const _: () = assert!(std::mem::size_of::<Sval>() == 48);
const _: () = assert!(std::mem::size_of::<Pkt>() == 56);

// SAFETY: `Pod` lets aya copy these types to and from map memory as raw
// bytes. Each is `repr(C)` with only integer and byte-array fields, no
// implicit padding (explicit `pad` fields; sizes asserted above and the
// offsets in the tests equal the C layout), so every byte pattern is a valid
// value and no uninitialised byte is ever read.
#[allow(unsafe_code)]
unsafe impl aya::Pod for Skey {}
// SAFETY: as for `Skey`.
#[allow(unsafe_code)]
unsafe impl aya::Pod for Sval {}
// SAFETY: as for `Skey`.
#[allow(unsafe_code)]
unsafe impl aya::Pod for Pkt {}

impl From<Skey> for SessionKey {
    fn from(k: Skey) -> SessionKey {
        SessionKey {
            addr_a: k.addr_a,
            addr_b: k.addr_b,
            port_a: k.port_a,
            port_b: k.port_b,
            proto: k.proto,
        }
    }
}

impl From<Sval> for SessionCounters {
    fn from(v: Sval) -> SessionCounters {
        SessionCounters {
            first_ns: v.first_ns,
            last_ns: v.last_ns,
            bytes_ab: v.bytes_ab,
            bytes_ba: v.bytes_ba,
            pkts_ab: v.pkts_ab,
            pkts_ba: v.pkts_ba,
            captured: v.captured,
            first_dir: v.first_dir,
            syn_dir: v.syn_dir,
        }
    }
}

const N_COUNTERS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("this session_probe was built without clang, so it has no eBPF program: install clang, llvm and libbpf-dev (scripts/setup.sh) and rebuild, or use --userspace")]
    NotBuilt,
    #[error("cannot load the eBPF program: {0} (run as root, or with CAP_BPF and CAP_NET_ADMIN, on a kernel with eBPF; or use --userspace)")]
    Load(String),
    #[error("cannot attach the eBPF program to {iface}: {why} (does the interface exist in this network namespace? `ip link` lists them; or use --userspace)")]
    Attach { iface: String, why: String },
    #[error("eBPF map {map}: {why}")]
    Map { map: &'static str, why: String },
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> ProbeError {
    move |e| ProbeError::Map {
        map,
        why: e.to_string(),
    }
}

/// The loaded, attached program and its maps. Dropping it detaches the
/// program (aya releases the links).
pub struct Probe {
    _bpf: Ebpf,
    sessions: [HashMap<MapData, Skey, Sval>; 2],
    refused: [HashMap<MapData, Skey, u8>; 2],
    packets: [Queue<MapData, Pkt>; 2],
    control: Array<MapData, u32>,
    counters: Array<MapData, u64>,
    active: u32,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC (bpf_ktime_get_ns), ns.
    mono_to_real: i128,
}

fn take<T>(
    bpf: &mut Ebpf,
    name: &'static str,
    conv: impl Fn(aya::maps::Map) -> Result<T, MapError>,
) -> Result<T, ProbeError> {
    let m = bpf.take_map(name).ok_or(ProbeError::Map {
        map: name,
        why: "missing from the object".into(),
    })?;
    conv(m).map_err(map_err(name))
}

fn clock_ns(id: nix::time::ClockId) -> i128 {
    nix::time::clock_gettime(id)
        .map(|t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
        .unwrap_or(0)
}

impl Probe {
    /// Loads the program with the table sizes and attaches it to both
    /// directions of `iface`.
    pub fn attach(iface: &str, sizes: Sizes) -> Result<Probe, ProbeError> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NotBuilt);
        }
        let mut bpf = EbpfLoader::new()
            .set_max_entries("sessions_0", sizes.n_session)
            .set_max_entries("sessions_1", sizes.n_session)
            .set_max_entries("refused_0", sizes.refused_capacity())
            .set_max_entries("refused_1", sizes.refused_capacity())
            .set_max_entries("packets_0", sizes.n_packet_total)
            .set_max_entries("packets_1", sizes.n_packet_total)
            .load(OBJECT)
            .map_err(|e| ProbeError::Load(error_chain(&e)))?;
        let mut control: Array<MapData, u32> = take(&mut bpf, "control", Array::try_from)?;
        control.set(0, 0, 0).map_err(map_err("control"))?;
        control
            .set(1, sizes.n_packet_per_session, 0)
            .map_err(map_err("control"))?;
        let counters: Array<MapData, u64> = take(&mut bpf, "counters", Array::try_from)?;
        let sessions = [
            take(&mut bpf, "sessions_0", HashMap::try_from)?,
            take(&mut bpf, "sessions_1", HashMap::try_from)?,
        ];
        let refused = [
            take(&mut bpf, "refused_0", HashMap::try_from)?,
            take(&mut bpf, "refused_1", HashMap::try_from)?,
        ];
        let packets = [
            take(&mut bpf, "packets_0", Queue::try_from)?,
            take(&mut bpf, "packets_1", Queue::try_from)?,
        ];
        let prog: &mut SchedClassifier = bpf
            .program_mut("session_probe")
            .ok_or_else(|| ProbeError::Load("no program session_probe in the object".into()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| ProbeError::Load(error_chain(&e)))?;
        prog.load().map_err(|e| ProbeError::Load(error_chain(&e)))?;
        let attach_err = |e: &dyn std::error::Error| ProbeError::Attach {
            iface: iface.to_string(),
            why: error_chain(e),
        };
        // TCX (kernel 6.6+) needs no qdisc; on older kernels aya falls back
        // to netlink, which needs clsact. One already there is fine.
        if let Err(e) = tc::qdisc_add_clsact(iface) {
            if e.kind() != std::io::ErrorKind::AlreadyExists && !tcx_likely() {
                return Err(attach_err(&e));
            }
        }
        for dir in [TcAttachType::Ingress, TcAttachType::Egress] {
            prog.attach(iface, dir).map_err(|e| attach_err(&e))?;
        }
        let mono_to_real = clock_ns(nix::time::ClockId::CLOCK_REALTIME)
            - clock_ns(nix::time::ClockId::CLOCK_MONOTONIC);
        Ok(Probe {
            _bpf: bpf,
            sessions,
            refused,
            packets,
            control,
            counters,
            active: 0,
            mono_to_real,
        })
    }

    fn real_ns(&self, mono: u64) -> u64 {
        u64::try_from(i128::from(mono) + self.mono_to_real).unwrap_or(0)
    }

    /// Ends the window: swap the buffers, wait [`GRACE`], drain the idle one.
    pub fn end_window(&mut self) -> Result<WindowContents, ProbeError> {
        let idle = self.active;
        let next = idle ^ 1;
        self.control.set(0, next, 0).map_err(map_err("control"))?;
        self.active = next;
        std::thread::sleep(GRACE);
        self.drain(idle as usize)
    }

    fn drain(&mut self, b: usize) -> Result<WindowContents, ProbeError> {
        let mut w = WindowContents::default();
        let sessions = &mut self.sessions[b];
        let keys: Vec<Skey> = sessions
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err("sessions"))?;
        for k in keys {
            match sessions.get(&k, 0) {
                Ok(v) => w.sessions.push((k.into(), v.into())),
                Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err("sessions")(e)),
            }
            match sessions.remove(&k) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err("sessions")(e)),
            }
        }
        w.sessions.sort_unstable_by_key(|(k, _)| *k);
        let refused = &mut self.refused[b];
        let keys: Vec<Skey> = refused
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err("refused"))?;
        for k in keys {
            match refused.remove(&k) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err("refused")(e)),
            }
        }
        loop {
            match self.packets[b].pop(0) {
                Ok(p) => w.packets.push(PacketInfo {
                    src: p.src,
                    dst: p.dst,
                    sport: p.sport,
                    dport: p.dport,
                    proto: p.proto,
                    tcp_flags: p.tcp_flags,
                    len: p.len,
                    ts_ns: p.ts_ns,
                }),
                Err(MapError::ElementNotFound) => break,
                Err(e) => return Err(map_err("packets")(e)),
            }
        }
        for p in &mut w.packets {
            p.ts_ns = self.real_ns(p.ts_ns);
        }
        for (_, v) in &mut w.sessions {
            v.first_ns = self.real_ns(v.first_ns);
            v.last_ns = self.real_ns(v.last_ns);
        }
        let mut c = [0u64; N_COUNTERS as usize];
        for (i, slot) in c.iter_mut().enumerate() {
            let idx = b as u32 * N_COUNTERS + i as u32;
            *slot = self.counters.get(&idx, 0).map_err(map_err("counters"))?;
            self.counters.set(idx, 0, 0).map_err(map_err("counters"))?;
        }
        w.counters = Counters {
            sessions_refused: c[0],
            packets_untracked: c[1],
            packets_over_quota: c[2],
            packets_queue_full: c[3],
        };
        Ok(w)
    }
}

/// Kernels from 6.6 on attach TC programs with TCX links (no qdisc).
fn tcx_likely() -> bool {
    let Ok(u) = nix::sys::utsname::uname() else {
        return false;
    };
    let rel = u.release().to_string_lossy().into_owned();
    let mut it = rel.split(|c: char| !c.is_ascii_digit());
    let major: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor) >= (6, 6)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn layouts_equal_the_c_structs() {
        // Offsets of struct skey / sval / pkt as clang lays them out.
        assert_eq!(offset_of!(Skey, port_a), 32);
        assert_eq!(offset_of!(Skey, proto), 36);
        assert_eq!(offset_of!(Sval, pkts_ab), 32);
        assert_eq!(offset_of!(Sval, captured), 40);
        assert_eq!(offset_of!(Sval, first_dir), 44);
        assert_eq!(offset_of!(Sval, syn_dir), 45);
        assert_eq!(offset_of!(Pkt, ts_ns), 32);
        assert_eq!(offset_of!(Pkt, len), 40);
        assert_eq!(offset_of!(Pkt, sport), 44);
        assert_eq!(offset_of!(Pkt, proto), 48);
        assert_eq!(offset_of!(Pkt, tcp_flags), 49);
    }

    #[test]
    fn the_object_was_built_and_names_its_maps() {
        if OBJECT.is_empty() {
            eprintln!("skipped: built without clang");
            return;
        }
        assert_eq!(&OBJECT[..4], b"\x7fELF");
        for name in [
            "sessions_0",
            "sessions_1",
            "refused_0",
            "refused_1",
            "packets_0",
            "packets_1",
            "control",
            "counters",
            "session_probe",
        ] {
            assert!(
                OBJECT.windows(name.len()).any(|w| w == name.as_bytes()),
                "{name} is not in the object"
            );
        }
    }
}
