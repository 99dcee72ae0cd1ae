//! `app`: the application of each flow, by nDPI (SnabbWall L7Spy's engine),
//! payload first, then ports, plus DNS correlation.
//!
//! Fields (IPFIX: CESNET's enterprise 8057, ids 1240–1244, which ipfixprobe
//! does not use):
//!
//! | UniRec | IPFIX | what |
//! |---|---|---|
//! | `string APP_PROTO` | 8057/1240 | the application, nDPI's name (`Google`, `RSYNC`, `TLS`); the protocol itself when nDPI names no application on top of it |
//! | `string APP_MASTER` | 8057/1241 | the protocol carrying it (`TLS`, `QUIC`, `DNS`, `HTTP`); equal to `APP_PROTO` when there is only one |
//! | `string APP_SERVICE` | 8057/1242 | the service's name when known: TLS/QUIC server name, HTTP host, DNS query name, or the name a DNS answer gave the server's address |
//! | `string APP_CATEGORY` | 8057/1243 | nDPI's category (`Web`, `Network`, `DataTransfer`, …) |
//! | `uint8 APP_CONFIDENCE` | 8057/1244 | how `APP_PROTO` was found, nDPI's scale: 0 unknown, 1 the ports alone, 2 the addresses alone (nDPI's lists of networks), 3 correlation (a DNS answer for the server's address), 4 the payload |
//!
//! Unknown flows have empty strings and confidence 0. Every flow carries the
//! plugin's record.
//!
//! How: each new flow gets an nDPI flow state, and every packet of both
//! directions (the whole IP packet) is given to nDPI until it names the
//! protocol (the payload: confidence 4) or `packets` packets have been
//! given (default 24, as ndpiReader's UDP limit) or the flow ends; then
//! nDPI gives up and guesses from the ports and addresses (1 or 2, or
//! unknown). The state (about 700 bytes) is freed at once, so only flows
//! still being classified hold one, and classified flows cost nothing more
//! per packet.
//!
//! DNS correlation (what L7Spy shows as `SERVICE_GOOGLE:DNS` followed by
//! `SERVICE_GOOGLE:SSL`): the A and AAAA answers of every DNS response
//! (from port 53, UDP or TCP) are remembered, address → name, for their TTL
//! (at least a minute, at most a day; 2 × 65536 addresses at most, the
//! oldest half forgotten first). A flow that starts towards (or from) a
//! remembered address takes that name as `APP_SERVICE` when its own payload
//! named none (TLS without server name, an unknown protocol); and, when
//! the flow is web traffic (nDPI's category Web: TLS, QUIC, HTTP) or
//! unknown and nDPI named no application, the application nDPI associates
//! with the name (`www.google.com` → Google): confidence 3.
//!
//! Differences from L7Spy (nDPI 1.8 then, 4.2 here): protocol names are
//! nDPI 4.2's (`TLS` where 1.8 said `SSL`, `Google` for `SERVICE_GOOGLE`);
//! L7Spy fed nDPI for the whole flow, we stop once the flow is named.
//!
//! Option: `-p "app;packets=N"` (1–1000): packets given to nDPI before it
//! gives up.

use super::dns_wire::Msg;
use super::{parse_options, ty, Extension, Hooks};
use super::{FieldDef, FieldSink, FieldValue, FlowCtx, Ie, ProcessPlugin, Verdict, PEN_CESNET};
use crate::cache::Flow;
use crate::parser::Packet;
use ndpi_sys::{Confidence, Detector, Protocol};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("APP_PROTO", ty::STRING, ie(1240)),
    FieldDef::new("APP_MASTER", ty::STRING, ie(1241)),
    FieldDef::new("APP_SERVICE", ty::STRING, ie(1242)),
    FieldDef::new("APP_CATEGORY", ty::STRING, ie(1243)),
    FieldDef::new("APP_CONFIDENCE", ty::U8, ie(1244)),
];

/// nDPI's category of web protocols (`NDPI_PROTOCOL_CATEGORY_WEB`).
const WEB: u32 = 5;

/// Packets given to nDPI before it gives up, by default.
pub const DEFAULT_PACKETS: u16 = 24;

/// Addresses remembered from DNS answers, per generation.
const DNS_GENERATION: usize = 65_536;
/// The shortest and longest time a DNS answer is remembered, seconds.
const DNS_MIN_TTL: u64 = 60;
const DNS_MAX_TTL: u64 = 86_400;

/// Flows being classified, by flow hash, per generation: a packet of a flow
/// not listed costs no look at the flow's extensions (a cache miss each).
const CLASSIFYING_GENERATION: usize = 1 << 20;

/// A hasher for keys that are hashes already (the cache's XXH64 flow hash).
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type HashSet64 = HashSet<u64, BuildHasherDefault<KeyIsHash>>;

/// What the plugin found about one flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppInfo {
    /// nDPI's application and master protocol names ("" when unknown).
    pub proto: &'static str,
    pub master: &'static str,
    pub service: Option<Box<str>>,
    pub category: &'static str,
    pub confidence: Confidence,
}

impl AppInfo {
    /// L7Spy's protocol column: `APP` alone, or `APP:MASTER` when nDPI
    /// named an application on top of a protocol (`Google:TLS`, as L7Spy's
    /// `SERVICE_GOOGLE:SSL`); `Unknown` when nothing was found.
    pub fn label(&self) -> String {
        match (self.proto, self.master) {
            ("", "") => "Unknown".to_string(),
            (p, m) if p == m || m.is_empty() => p.to_string(),
            ("", m) => m.to_string(),
            (p, m) => format!("{p}:{m}"),
        }
    }
}

/// A name a DNS answer gave an address.
struct Answered {
    name: Box<str>,
    /// nDPI's application for the name (0: none) and its category.
    app: u16,
    category: u32,
    expires_us: u64,
}

/// The per-flow record: nDPI's state while the flow is being classified,
/// then the result.
pub struct AppExt {
    ndpi: Option<ndpi_sys::Flow>,
    given: u16,
    info: AppInfo,
    /// The name (and its application) a DNS answer gave the peer.
    answered: Option<(Box<str>, u16, u32)>,
    /// Shown by `--l7` already (live).
    pub reported: bool,
}

impl AppExt {
    /// The result so far (final once the flow is exported).
    pub fn info(&self) -> &AppInfo {
        &self.info
    }

    /// Whether nDPI is still looking at the flow.
    pub fn classifying(&self) -> bool {
        self.ndpi.is_some()
    }
}

impl Extension for AppExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        let i = &self.info;
        out.put(0, FieldValue::Str(i.proto.as_bytes()));
        out.put(1, FieldValue::Str(i.master.as_bytes()));
        let service = i.service.as_deref().unwrap_or("");
        out.put(2, FieldValue::Str(service.as_bytes()));
        out.put(3, FieldValue::Str(i.category.as_bytes()));
        out.put(4, FieldValue::U8(i.confidence as u8));
    }
}

/// A flow as `--l7` shows it the moment it is named (live).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identified {
    pub flow: Flow,
    pub info: AppInfo,
}

/// nDPI modules of dropped `app` plugins, for the next one: setting one up
/// takes tens of milliseconds, which the tests and the fuzz target (a new
/// set of plugins per input) would pay again and again.
static SPARE: Mutex<Vec<Detector>> = Mutex::new(Vec::new());

/// A detection module taken from [`SPARE`] and given back on drop.
struct Pooled(Option<Detector>);

impl Pooled {
    fn get() -> Result<Pooled, ndpi_sys::Error> {
        let spare = SPARE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match spare {
            Some(d) => Ok(Pooled(Some(d))),
            None => Detector::new().map(|d| Pooled(Some(d))),
        }
    }
}

impl std::ops::Deref for Pooled {
    type Target = Detector;
    fn deref(&self) -> &Detector {
        // Some from construction until drop.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Detector {
        self.0.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
            if spare.len() < 4 {
                spare.push(d);
            }
        }
    }
}

/// The `app` plugin.
pub struct App {
    ndpi: Pooled,
    max_packets: u16,
    /// Address (UniRec layout) → name, two generations.
    answers: [HashMap<[u8; 16], Answered>; 2],
    /// The flows nDPI still looks at (flow hashes), two generations: a flow
    /// that left without `pre_export` (another plugin's flush) is forgotten
    /// with its generation.
    classifying: [HashSet64; 2],
    /// Collect flows as they are named, for `--l7` live.
    spy: bool,
    identified: Vec<Identified>,
    name: Vec<u8>,
    /// The IP packet given to nDPI (headers and payload joined).
    packet: Vec<u8>,
}

impl App {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        let mut max_packets = DEFAULT_PACKETS;
        for (key, value) in parse_options(opts, &[("p", "packets")])? {
            if key == "packets" {
                max_packets = value
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        format!("packets=`{value}`: give a number of packets, 1-1000")
                    })?;
            }
        }
        let ndpi = Pooled::get().map_err(|e| e.to_string())?;
        Ok(Box::new(App {
            ndpi,
            max_packets,
            answers: [HashMap::new(), HashMap::new()],
            classifying: [HashSet64::default(), HashSet64::default()],
            spy: false,
            identified: Vec::new(),
            name: Vec::new(),
            packet: Vec::with_capacity(2048),
        }))
    }

    /// Makes the plugin keep every flow it names, for [`App::take_identified`]
    /// (`--l7` live).
    pub fn enable_spy(&mut self) {
        self.spy = true;
    }

    /// The flows named since the last call (with [`App::enable_spy`]).
    pub fn take_identified(&mut self) -> Vec<Identified> {
        std::mem::take(&mut self.identified)
    }

    fn is_classifying(&self, flow_hash: u64) -> bool {
        self.classifying.iter().any(|g| g.contains(&flow_hash))
    }

    fn start_classifying(&mut self, flow_hash: u64) {
        if self.classifying[0].len() >= CLASSIFYING_GENERATION {
            self.classifying[1] = std::mem::take(&mut self.classifying[0]);
        }
        self.classifying[0].insert(flow_hash);
    }

    fn stop_classifying(&mut self, flow_hash: u64) {
        for g in &mut self.classifying {
            g.remove(&flow_hash);
        }
    }

    fn answered(&self, addr: &[u8; 16], now_us: u64) -> Option<&Answered> {
        self.answers
            .iter()
            .find_map(|g| g.get(addr))
            .filter(|a| a.expires_us >= now_us)
    }

    fn remember(&mut self, addr: [u8; 16], a: Answered) {
        if self.answers[0].len() >= DNS_GENERATION {
            self.answers[1] = std::mem::take(&mut self.answers[0]);
        }
        self.answers[1].remove(&addr);
        self.answers[0].insert(addr, a);
    }

    /// Remembers the A/AAAA answers of a DNS response from port 53.
    fn learn_dns(&mut self, pkt: &Packet) {
        if pkt.src_port != 53 || !matches!(pkt.protocol, 6 | 17) {
            return;
        }
        let Some(msg) = super::dns::dns_message(pkt.payload(), pkt.protocol == 6) else {
            return;
        };
        let m = Msg::new(msg);
        // A response without error, with one question.
        if m.u8(2) & 0x80 == 0 || m.u8(3) & 0x0f != 0 || m.u16(4) != 1 {
            return;
        }
        let answers = m.u16(6);
        self.name.clear();
        if m.name(12, &mut self.name).is_err() || self.name.is_empty() {
            return;
        }
        let Ok(qlen) = m.name_len(12) else { return };
        let mut off = 12 + qlen + 4;
        let name: Box<str> = String::from_utf8_lossy(&self.name).into();
        let (app, category) = self.ndpi.host_protocol(name.as_bytes()).unwrap_or((0, 0));
        for _ in 0..answers {
            let Ok(n) = m.name_len(off) else { return };
            off += n;
            if off + 10 > m.len() {
                return;
            }
            let (rtype, ttl, rdlen) = (m.u16(off), m.u32(off + 4), usize::from(m.u16(off + 8)));
            off += 10;
            let rdata = m.slice(off, rdlen);
            if rdata.len() != rdlen {
                return;
            }
            off += rdlen;
            let addr = match (rtype, rdata) {
                (1, [a, b, c, d]) => {
                    let mut x = [0u8; 16];
                    x[8..12].copy_from_slice(&[*a, *b, *c, *d]);
                    x[12..].fill(0xff);
                    x
                }
                (28, r) if r.len() == 16 => {
                    let mut x = [0u8; 16];
                    x.copy_from_slice(r);
                    x
                }
                _ => continue,
            };
            let ttl = u64::from(ttl).clamp(DNS_MIN_TTL, DNS_MAX_TTL);
            self.remember(
                addr,
                Answered {
                    name: name.clone(),
                    app,
                    category,
                    expires_us: pkt.ts_us.saturating_add(ttl * 1_000_000),
                },
            );
        }
    }

    /// Gives one packet to nDPI; names the flow when nDPI does, or gives up
    /// after `max_packets`.
    fn feed(&mut self, flow: &Flow, ext: &mut AppExt, pkt: &Packet) {
        let Some(state) = ext.ndpi.as_mut() else {
            return;
        };
        if pkt.l3_head().is_empty() || !pkt.l4_parsed {
            return;
        }
        // A bare TCP acknowledgement tells nDPI nothing (its payload-less
        // dissectors look at handshake and teardown segments only).
        if pkt.protocol == 6 && pkt.payload_len == 0 && pkt.tcp_flags & 0x07 == 0 {
            return;
        }
        self.packet.clear();
        self.packet.extend_from_slice(pkt.l3_head());
        self.packet.extend_from_slice(pkt.payload());
        let p = self.ndpi.process(state, &self.packet, pkt.ts_us / 1000);
        ext.given += 1;
        if !p.is_unknown() {
            let confidence = state.confidence();
            self.finish(flow, ext, p, confidence.max(Confidence::ByPort));
        } else if ext.given >= self.max_packets {
            self.give_up(flow, ext);
        }
    }

    fn give_up(&mut self, flow: &Flow, ext: &mut AppExt) {
        let Some(state) = ext.ndpi.as_mut() else {
            return;
        };
        let p = self.ndpi.giveup(state);
        let confidence = if p.is_unknown() {
            Confidence::Unknown
        } else {
            state.confidence()
        };
        self.finish(flow, ext, p, confidence);
    }

    /// Records nDPI's answer `p` and frees its state.
    fn finish(&mut self, flow: &Flow, ext: &mut AppExt, p: Protocol, confidence: Confidence) {
        let Some(state) = ext.ndpi.take() else {
            return;
        };
        self.stop_classifying(flow.flow_hash);
        let service = if p.is_unknown() {
            None
        } else {
            state.host_name(p)
        };
        drop(state);
        let (master, app) = match (p.master, p.app) {
            (0, a) => (a, a),
            (m, 0) => (m, m),
            (m, a) => (m, a),
        };
        let name = |id: u16| {
            if id == 0 {
                ""
            } else {
                ndpi_sys::protocol_name(id)
            }
        };
        let mut info = AppInfo {
            proto: name(app),
            master: name(master),
            service,
            category: if p.is_unknown() {
                ""
            } else {
                ndpi_sys::category_name(p.category)
            },
            confidence,
        };
        if let Some((dns_name, dns_app, dns_category)) = ext.answered.take() {
            // The DNS answer names the service when the payload did not; and
            // then the application too, when nDPI found none beyond a web
            // protocol (TLS, QUIC, HTTP: services named by host names) or
            // nothing at all.
            let named_by_payload = info.service.is_some();
            if !named_by_payload {
                info.service = Some(dns_name);
            }
            let web_or_unknown = p.is_unknown() || p.category == WEB;
            if dns_app != 0 && app == master && !named_by_payload && web_or_unknown {
                info.proto = name(dns_app);
                if info.master.is_empty() {
                    info.master = info.proto;
                }
                info.category = ndpi_sys::category_name(dns_category);
                info.confidence = Confidence::Correlation;
            }
        }
        ext.info = info;
        if self.spy && !ext.reported {
            ext.reported = true;
            self.identified.push(Identified {
                flow: flow.clone(),
                info: ext.info.clone(),
            });
        }
    }
}

impl ProcessPlugin for App {
    fn name(&self) -> &'static str {
        "app"
    }

    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }

    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::POST_UPDATE | Hooks::PRE_EXPORT
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        self.learn_dns(pkt);
        let Ok(state) = self.ndpi.new_flow() else {
            // Out of memory: the flow stays unknown.
            f.exts.add(AppExt {
                ndpi: None,
                given: 0,
                info: AppInfo::default(),
                answered: None,
                reported: false,
            });
            return Verdict::CONTINUE;
        };
        let answered = [&f.flow.dst_ip, &f.flow.src_ip]
            .into_iter()
            .find_map(|a| self.answered(a, pkt.ts_us))
            .filter(|_| f.flow.src_port != 53 && f.flow.dst_port != 53)
            .map(|a| (a.name.clone(), a.app, a.category));
        let mut ext = AppExt {
            ndpi: Some(state),
            given: 0,
            info: AppInfo::default(),
            answered,
            reported: false,
        };
        self.start_classifying(f.flow.flow_hash);
        self.feed(f.flow, &mut ext, pkt);
        f.exts.add(ext);
        Verdict::CONTINUE
    }

    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        self.learn_dns(pkt);
        if self.is_classifying(f.flow.flow_hash) {
            match f.exts.get_mut::<AppExt>() {
                Some(ext) if ext.classifying() => self.feed(f.flow, ext, pkt),
                _ => self.stop_classifying(f.flow.flow_hash),
            }
        }
        Verdict::CONTINUE
    }

    fn pre_export(&mut self, f: FlowCtx<'_>) {
        if self.is_classifying(f.flow.flow_hash) {
            match f.exts.get_mut::<AppExt>() {
                Some(ext) if ext.classifying() => self.give_up(f.flow, ext),
                _ => self.stop_classifying(f.flow.flow_hash),
            }
        }
    }

    fn needs_l3(&self) -> bool {
        true
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

/// `--l7`'s line for a flow (L7Spy's): hash, packets of both directions,
/// `SRC:PORT - DST:PORT` (IPv6 as `[addr]`), the protocol column.
///
/// `0xfffffffff19ba8be   18p   134.68.220.74:21769 -     192.168.1.2:26883  RSYNC`
pub fn l7_line(flow: &Flow, info: &AppInfo) -> String {
    let addr = |a: &[u8; 16]| {
        let ip = unirec::UrIp(*a);
        if flow.ip_version == 4 {
            ip.to_string()
        } else {
            format!("[{ip}]")
        }
    };
    let packets = u64::from(flow.packets) + u64::from(flow.packets_rev);
    format!(
        "{:#018x} {packets:4}p {:>15}:{:<5} - {:>15}:{:<5}  {}",
        flow.flow_hash,
        addr(&flow.src_ip),
        flow.src_port,
        addr(&flow.dst_ip),
        flow.dst_port,
        info.label()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CacheConfig, FlowCache, FlowRecord};
    use crate::parser::{parse, LinkType};
    use crate::plugins::{from_list, FieldValue};
    use crate::synth::{self, ipv4_frame, ACK, L4, PSH, SYN};
    use std::net::Ipv4Addr;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    /// Packets of a conversation: (from client, L4).
    fn run(plugin: &str, conv: &[(bool, L4<'_>)]) -> Vec<FlowRecord> {
        let plugins = from_list(plugin).expect("app plugin");
        let mut cache = FlowCache::with_plugins(CacheConfig::default(), plugins);
        let mut out = Vec::new();
        let mut frame = Vec::new();
        let mut pkt = Packet::default();
        for (i, (from_client, l4)) in conv.iter().enumerate() {
            let (s, d) = if *from_client {
                (CLIENT, SERVER)
            } else {
                (SERVER, CLIENT)
            };
            ipv4_frame(&mut frame, s, d, i as u16, *l4);
            pkt.ts_us = 1_700_000_000_000_000 + i as u64 * 1000;
            parse(LinkType::Ethernet, &frame, &mut pkt).expect("frame");
            pkt.keep_payload(&frame);
            pkt.keep_l3(&frame);
            cache.put(&mut pkt, &mut out);
        }
        cache.flush_all(&mut out);
        out
    }

    fn info(r: &FlowRecord) -> AppInfo {
        r.exts
            .iter()
            .find_map(|e| (e.data.as_ref() as &dyn std::any::Any).downcast_ref::<AppExt>())
            .map(|e| e.info.clone())
            .expect("every flow carries the app record")
    }

    fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> L4<'_> {
        L4::Tcp {
            sport,
            dport,
            seq,
            ack: 1,
            flags,
            payload,
        }
    }

    /// A TCP conversation on `port`: handshake, then the payloads in turn
    /// (client first).
    fn tcp_conv<'a>(port: u16, payloads: &'a [&'a [u8]]) -> Vec<(bool, L4<'a>)> {
        let mut c = vec![
            (true, tcp(40000, port, 100, SYN, b"")),
            (false, tcp(port, 40000, 500, SYN | ACK, b"")),
            (true, tcp(40000, port, 101, ACK, b"")),
        ];
        let (mut cs, mut ss) = (101u32, 501u32);
        for (i, p) in payloads.iter().enumerate() {
            if i % 2 == 0 {
                c.push((true, tcp(40000, port, cs, PSH | ACK, p)));
                cs += p.len() as u32;
            } else {
                c.push((false, tcp(port, 40000, ss, PSH | ACK, p)));
                ss += p.len() as u32;
            }
        }
        c
    }

    #[test]
    fn http_on_a_non_standard_port_is_named_by_its_payload() {
        let req = synth::http_request("www.example.test", "/", "nemea-rs-test");
        let resp = synth::http_response_head(10);
        let out = run("app", &tcp_conv(8080, &[&req, &resp]));
        assert_eq!(out.len(), 1);
        let i = info(&out[0]);
        assert_eq!((i.proto, i.master), ("HTTP", "HTTP"), "{i:?}");
        assert_eq!(i.confidence, Confidence::Dpi);
        assert_eq!(i.service.as_deref(), Some("www.example.test"));
        assert_eq!(i.category, "Web");
        assert_eq!(i.label(), "HTTP");
    }

    #[test]
    fn tls_server_name_names_the_application() {
        let hello = synth::tls_client_hello("www.google.com", 7);
        let out = run("app", &tcp_conv(8443, &[&hello]));
        let i = info(&out[0]);
        assert_eq!((i.proto, i.master), ("Google", "TLS"), "{i:?}");
        assert_eq!(i.service.as_deref(), Some("www.google.com"));
        assert_eq!(i.confidence, Confidence::Dpi);
        assert_eq!(i.label(), "Google:TLS");
    }

    #[test]
    fn unknown_payload_is_guessed_by_port_or_left_unknown() {
        let junk = [0xffu8; 300];
        // NTP's port, payload nDPI does not recognise: a port guess.
        let conv: Vec<(bool, L4)> = (0..3)
            .map(|_| {
                (
                    true,
                    L4::Udp {
                        sport: 40000,
                        dport: 123,
                        payload: &junk,
                    },
                )
            })
            .collect();
        let i = info(&run("app", &conv)[0]);
        assert_eq!(
            (i.proto, i.confidence),
            ("NTP", Confidence::ByPort),
            "{i:?}"
        );
        // A port nDPI knows nothing of: unknown, empty fields.
        let conv: Vec<(bool, L4)> = (0..3)
            .map(|_| {
                (
                    true,
                    L4::Udp {
                        sport: 40000,
                        dport: 40001,
                        payload: &junk,
                    },
                )
            })
            .collect();
        let i = info(&run("app", &conv)[0]);
        assert_eq!(i, AppInfo::default());
        assert_eq!(i.label(), "Unknown");
    }

    #[test]
    fn a_dns_answer_names_the_connection_to_its_address() {
        let q = synth::dns_query(0x1234, "www.google.com");
        let answer_addr = Ipv4Addr::new(198, 51, 100, 1);
        let a = synth::dns_answer(&q, answer_addr);
        // A TLS ClientHello without a server name.
        let hello = synth::tls_client_hello("", 9);
        let hellos: [&[u8]; 1] = [&hello];
        let mut conv = vec![
            (
                true,
                L4::Udp {
                    sport: 40053,
                    dport: 53,
                    payload: &q,
                },
            ),
            (
                false,
                L4::Udp {
                    sport: 53,
                    dport: 40053,
                    payload: &a,
                },
            ),
        ];
        conv.extend(tcp_conv(443, &hellos));
        let out = run("app", &conv);
        assert_eq!(out.len(), 2);
        let dns = out
            .iter()
            .find(|r| r.flow.dst_port == 53)
            .map(info)
            .unwrap();
        assert_eq!((dns.proto, dns.master), ("Google", "DNS"), "{dns:?}");
        assert_eq!(dns.service.as_deref(), Some("www.google.com"));
        let tls = out
            .iter()
            .find(|r| r.flow.dst_port == 443)
            .map(info)
            .unwrap();
        assert_eq!(tls.master, "TLS", "{tls:?}");
        assert_eq!(tls.proto, "Google", "{tls:?}");
        assert_eq!(tls.service.as_deref(), Some("www.google.com"));
        assert_eq!(tls.confidence, Confidence::Correlation);
        assert_eq!(tls.label(), "Google:TLS");
        // A server name of its own wins over the DNS answer.
        let named = synth::tls_client_hello("www.example.test", 9);
        let named: [&[u8]; 1] = [&named];
        let mut conv2 = conv[..2].to_vec();
        conv2.extend(tcp_conv(443, &named));
        let out = run("app", &conv2);
        let tls = out
            .iter()
            .find(|r| r.flow.dst_port == 443)
            .map(info)
            .unwrap();
        assert_eq!((tls.proto, tls.master), ("TLS", "TLS"), "{tls:?}");
        assert_eq!(tls.service.as_deref(), Some("www.example.test"));
        assert_eq!(tls.confidence, Confidence::Dpi);
    }

    #[test]
    fn the_fields_are_written_in_order() {
        struct Sink(Vec<(usize, String)>);
        impl FieldSink for Sink {
            fn put(&mut self, i: usize, v: FieldValue<'_>) {
                let s = match v {
                    FieldValue::Str(b) => String::from_utf8_lossy(b).into_owned(),
                    FieldValue::U8(n) => n.to_string(),
                    other => format!("{other:?}"),
                };
                self.0.push((i, s));
            }
        }
        let req = synth::http_request("h.example.test", "/", "ua");
        let out = run("app", &tcp_conv(80, &[&req]));
        let mut sink = Sink(Vec::new());
        for e in out[0].exts.iter() {
            e.data.fill(&mut sink);
        }
        let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "APP_PROTO",
                "APP_MASTER",
                "APP_SERVICE",
                "APP_CATEGORY",
                "APP_CONFIDENCE"
            ]
        );
        let vals: Vec<&str> = sink.0.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(vals, ["HTTP", "HTTP", "h.example.test", "Web", "4"]);
    }

    #[test]
    fn state_is_freed_once_the_flow_is_named() {
        let plugins = from_list("app").unwrap();
        let mut cache = FlowCache::with_plugins(CacheConfig::default(), plugins);
        let q = synth::dns_query(7, "example.test");
        let mut frame = Vec::new();
        let mut pkt = Packet::default();
        let mut out = Vec::new();
        ipv4_frame(
            &mut frame,
            CLIENT,
            SERVER,
            1,
            L4::Udp {
                sport: 40000,
                dport: 53,
                payload: &q,
            },
        );
        pkt.ts_us = 1_700_000_000_000_000;
        parse(LinkType::Ethernet, &frame, &mut pkt).unwrap();
        pkt.keep_payload(&frame);
        pkt.keep_l3(&frame);
        cache.put(&mut pkt, &mut out);
        cache.flush_all(&mut out);
        let ext = out[0]
            .exts
            .iter()
            .find_map(|e| (e.data.as_ref() as &dyn std::any::Any).downcast_ref::<AppExt>())
            .unwrap();
        assert!(!ext.classifying());
        assert_eq!(ext.given, 1);
        assert_eq!(ext.info.proto, "DNS");
    }

    #[test]
    fn options() {
        assert!(App::create("packets=5").is_ok());
        assert!(App::create("p=1000").is_ok());
        for bad in ["packets=0", "packets=x", "packets=1001", "nonsense"] {
            assert!(App::create(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn random_payloads_on_every_port_are_survived() {
        let mut s = 0x9e37_79b9_u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..100 {
            let port = [22u16, 53, 80, 443, 873, 8080, 123, 5060, 1194, 3478][next() as usize % 10];
            let bufs: Vec<Vec<u8>> = (0..8)
                .map(|_| (0..next() % 600).map(|_| next() as u8).collect())
                .collect();
            let refs: Vec<&[u8]> = bufs.iter().map(|b| b.as_slice()).collect();
            let out = run("app;packets=6", &tcp_conv(port, &refs));
            assert_eq!(out.len(), 1);
            let conv: Vec<(bool, L4)> = refs
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    (
                        i % 2 == 0,
                        if i % 2 == 0 {
                            L4::Udp {
                                sport: 40000,
                                dport: port,
                                payload: p,
                            }
                        } else {
                            L4::Udp {
                                sport: port,
                                dport: 40000,
                                payload: p,
                            }
                        },
                    )
                })
                .collect();
            run("app", &conv);
        }
    }

    #[test]
    fn l7spy_line_format() {
        let mut f = Flow {
            ip_version: 4,
            src_ip: [0; 16],
            dst_ip: [0; 16],
            src_port: 21769,
            dst_port: 26883,
            protocol: 6,
            vlan_id: 0,
            src_mac: [0; 6],
            dst_mac: [0; 6],
            time_first: 0,
            time_last: 0,
            packets: 10,
            packets_rev: 8,
            bytes: 0,
            bytes_rev: 0,
            tcp_flags: 0,
            tcp_flags_rev: 0,
            end_reason: crate::cache::EndReason::Inactive,
            flow_hash: 0xffff_ffff_f19b_a8be,
        };
        f.src_ip[8..].copy_from_slice(&[134, 68, 220, 74, 255, 255, 255, 255]);
        f.dst_ip[8..].copy_from_slice(&[192, 168, 1, 2, 255, 255, 255, 255]);
        let rsync = AppInfo {
            proto: "RSYNC",
            master: "RSYNC",
            ..AppInfo::default()
        };
        // The seed's example line, character for character.
        assert_eq!(
            l7_line(&f, &rsync),
            "0xfffffffff19ba8be   18p   134.68.220.74:21769 -     192.168.1.2:26883  RSYNC"
        );
        f.ip_version = 6;
        f.src_ip = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        f.dst_ip = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        f.src_port = 53;
        let dns = AppInfo {
            proto: "Google",
            master: "DNS",
            ..AppInfo::default()
        };
        assert_eq!(
            l7_line(&f, &dns),
            "0xfffffffff19ba8be   18p   [2001:db8::1]:53    -   [2001:db8::2]:26883  Google:DNS"
        );
    }
}
