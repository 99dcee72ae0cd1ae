//! The flow cache, with ipfixprobe's semantics.
//!
//! * A table of 2^s slots in lines of 2^l (default 2^17 and 16). A flow lives in
//!   the line its key's XXH64 hash selects (ipfixprobe's packed key layout,
//!   so placement and eviction match).
//! * A packet whose key is not found is looked up reversed (biflow): found
//!   there, it counts in the `_REV` direction.
//! * A hit moves the flow to the front of its line (LRU). A new flow takes the
//!   first free slot of its line; in a full line the last (least recently
//!   used) flow is exported (reason "no resources") and the new one is put in
//!   the middle of the line.
//! * Timeouts work on whole seconds of packet time: a flow idle ≥ inactive
//!   or older than active when its next packet comes is exported and the
//!   packet starts a new flow; a SYN after FIN/RST in the same direction
//!   starts a new flow too. Each packet also checks line/2 slots (a rotating
//!   cursor) for inactive flows.
//! * [`FlowCache::sweep`] moves the same cursor on time instead of packets:
//!   over the whole table once per [`sweep_period_us`] (0.25 s up to 2^22
//!   slots) of the time it is given, so that on a quiet link inactive flows
//!   leave within a period of expiring. Its cost is bounded by time, not by
//!   packets: one pass over the slot index per period, at most one pass per
//!   call. The cache never reads a clock; the caller passes the time in.
//!
//! Unlike ipfixprobe, flows are matched by their whole key, not by the hash
//! alone, so a hash collision never merges two flows.

use crate::parser::Packet;
use crate::plugins::{Extensions, Plugins, Verdict};
use xxhash_rust::xxh64::xxh64;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;

/// Why a flow was exported (IPFIX flowEndReason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Inactive = 1,
    Active = 2,
    EndOfFlow = 3,
    Forced = 4,
    NoResources = 5,
}

/// A bidirectional flow record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub ip_version: u8,
    pub src_ip: [u8; 16],
    pub dst_ip: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub vlan_id: u16,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Microseconds since the epoch.
    pub time_first: u64,
    pub time_last: u64,
    pub packets: u32,
    pub packets_rev: u32,
    pub bytes: u64,
    pub bytes_rev: u64,
    pub tcp_flags: u8,
    pub tcp_flags_rev: u8,
    pub end_reason: EndReason,
    /// The cache's hash of the key the flow was created with (ipfixprobe's
    /// `flow_hash`, exported by the `flowhash` plugin).
    pub flow_hash: u64,
}

/// An exported flow: the core record and the extensions of the process
/// plugins that found something in it.
pub struct FlowRecord {
    pub flow: Flow,
    pub exts: Extensions,
}

impl Flow {
    fn new(p: &Packet, flow_hash: u64) -> Flow {
        Flow {
            ip_version: p.ip_version,
            src_ip: p.src_ip,
            dst_ip: p.dst_ip,
            src_port: p.src_port,
            dst_port: p.dst_port,
            protocol: p.protocol,
            vlan_id: p.vlan_id,
            src_mac: p.src_mac,
            dst_mac: p.dst_mac,
            time_first: p.ts_us,
            time_last: p.ts_us,
            packets: 1,
            packets_rev: 0,
            bytes: u64::from(p.ip_len),
            bytes_rev: 0,
            tcp_flags: p.tcp_flags,
            tcp_flags_rev: 0,
            end_reason: EndReason::Forced,
            flow_hash,
        }
    }

    /// Starts the flow over in place (a plugin's flush with reinsert):
    /// counters and flags reset, `time_first` = the old `time_last`.
    fn reuse(&mut self) {
        self.time_first = self.time_last;
        self.packets = 0;
        self.packets_rev = 0;
        self.bytes = 0;
        self.bytes_rev = 0;
        self.tcp_flags = 0;
        self.tcp_flags_rev = 0;
    }

    fn update(&mut self, p: &Packet, forward: bool) {
        // ipfixprobe takes the packet's time as is; a packet older than the
        // flow's last one does not move time_last back here.
        self.time_last = self.time_last.max(p.ts_us);
        if forward {
            self.packets = self.packets.wrapping_add(1);
            self.bytes += u64::from(p.ip_len);
            self.tcp_flags |= p.tcp_flags;
        } else {
            self.packets_rev = self.packets_rev.wrapping_add(1);
            self.bytes_rev += u64::from(p.ip_len);
            self.tcp_flags_rev |= p.tcp_flags;
        }
    }
}

/// A packed flow key as ipfixprobe hashes it: ports and VLAN little-endian,
/// addresses in network order (4 bytes for IPv4).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    bytes: [u8; 40],
    len: u8,
}

impl Key {
    fn of(p: &Packet, reverse: bool) -> Key {
        let (sip, dip, sp, dp) = if reverse {
            (&p.dst_ip, &p.src_ip, p.dst_port, p.src_port)
        } else {
            (&p.src_ip, &p.dst_ip, p.src_port, p.dst_port)
        };
        let mut k = Key {
            bytes: [0; 40],
            len: 0,
        };
        let b = &mut k.bytes;
        b[0..2].copy_from_slice(&sp.to_le_bytes());
        b[2..4].copy_from_slice(&dp.to_le_bytes());
        b[4] = p.protocol;
        b[5] = p.ip_version;
        if p.ip_version == 4 {
            b[6..10].copy_from_slice(&sip[8..12]);
            b[10..14].copy_from_slice(&dip[8..12]);
            b[14..16].copy_from_slice(&p.vlan_id.to_le_bytes());
            k.len = 16;
        } else {
            b[6..22].copy_from_slice(sip);
            b[22..38].copy_from_slice(dip);
            b[38..40].copy_from_slice(&p.vlan_id.to_le_bytes());
            k.len = 40;
        }
        k
    }

    fn hash(&self) -> u64 {
        // 0 marks an empty slot.
        xxh64(&self.bytes[..usize::from(self.len)], 0).max(1)
    }
}

/// Cache parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Table size exponent (4–30).
    pub size_exp: u32,
    /// Line size exponent (≤ size_exp).
    pub line_exp: u32,
    /// Active timeout, seconds.
    pub active: u64,
    /// Inactive timeout, seconds.
    pub inactive: u64,
    /// Keep directions apart (uniflows).
    pub split_biflow: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            size_exp: 17,
            line_exp: 4,
            active: 300,
            inactive: 30,
            split_biflow: false,
        }
    }
}

/// Counters of the cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub packets: u64,
    pub hits: u64,
    pub new_flows: u64,
    pub exported: u64,
    pub evicted: u64,
}

// Three whole cache lines: the batch prefetch touches each of them.
#[repr(align(64))]
struct Entry {
    key: Key,
    flow: Flow,
    exts: Extensions,
}

/// The keys and hashes of one packet, both directions.
struct Lookup {
    fkey: Key,
    fhash: u64,
    rkey: Key,
    rhash: u64,
}

impl Lookup {
    fn of(p: &Packet) -> Lookup {
        let fkey = Key::of(p, false);
        let rkey = Key::of(p, true);
        Lookup {
            fhash: fkey.hash(),
            rhash: rkey.hash(),
            fkey,
            rkey,
        }
    }
}

/// Fragments after the first carry no ports; they are taken from the first
/// fragment seen within 3 seconds (ipfixprobe's fragmentation cache).
struct FragCache {
    table: Vec<Option<(FragKey, u16, u16, u64)>>,
    timeout_s: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct FragKey {
    version: u8,
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    vlan: u16,
}

impl FragCache {
    const SIZE: usize = 10_007;

    fn new() -> FragCache {
        FragCache {
            table: vec![None; FragCache::SIZE],
            timeout_s: 3,
        }
    }

    fn slot(k: &FragKey) -> usize {
        let mut b = [0u8; 39];
        b[0] = k.version;
        b[1..17].copy_from_slice(&k.src);
        b[17..33].copy_from_slice(&k.dst);
        b[33..37].copy_from_slice(&k.id.to_le_bytes());
        b[37..39].copy_from_slice(&k.vlan.to_le_bytes());
        (xxh64(&b, 0) % FragCache::SIZE as u64) as usize
    }

    fn process(&mut self, p: &mut Packet) {
        if !p.is_fragment() || !matches!(p.protocol, 6 | 17) {
            return;
        }
        let k = FragKey {
            version: p.ip_version,
            src: p.src_ip,
            dst: p.dst_ip,
            id: p.frag_id,
            vlan: p.vlan_id,
        };
        let i = FragCache::slot(&k);
        let sec = p.ts_us / 1_000_000;
        if p.frag_off == 0 {
            self.table[i] = Some((k, p.src_port, p.dst_port, sec));
        } else if let Some((stored, sp, dp, t)) = self.table[i] {
            if stored == k && sec.saturating_sub(t) < self.timeout_s {
                p.src_port = sp;
                p.dst_port = dp;
            }
        }
    }
}

/// Table slots [`FlowCache::sweep`] visits per second at most: larger tables
/// get a longer sweep period so that sweeping stays a small, fixed cost.
const SWEEP_SLOTS_PER_SEC: u64 = 1 << 24;

/// How long [`FlowCache::sweep`] takes to pass over a table of `size` slots,
/// in microseconds of the time given to it: 0.25 s, longer for tables over
/// 2^22 slots (2^24 slots a second; 2^30 slots take 64 s).
pub fn sweep_period_us(size: usize) -> u64 {
    (size as u64)
        .saturating_mul(1_000_000)
        .div_ceil(SWEEP_SLOTS_PER_SEC)
        .max(250_000)
}

/// The flow cache. Exported flows are appended to the `out` vectors.
pub struct FlowCache {
    cfg: CacheConfig,
    hashes: Vec<u64>,
    slots: Vec<u32>,
    /// Second of each slot's last packet, kept beside the hashes so that the
    /// expiry scan does not touch the flow records.
    last_sec: Vec<u32>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    line_len: usize,
    line_start_mask: usize,
    cursor: usize,
    /// Time up to which [`FlowCache::sweep`] has accounted its slots.
    swept_us: Option<u64>,
    sweep_period_us: u64,
    frags: FragCache,
    stats: CacheStats,
    scratch: Vec<Lookup>,
    plugins: Plugins,
}

impl FlowCache {
    pub fn new(cfg: CacheConfig) -> FlowCache {
        FlowCache::with_plugins(cfg, Plugins::default())
    }

    /// A cache that runs the hooks of `plugins` on every packet.
    pub fn with_plugins(cfg: CacheConfig, plugins: Plugins) -> FlowCache {
        let size = 1usize << cfg.size_exp;
        let line_len = 1usize << cfg.line_exp.min(cfg.size_exp);
        FlowCache {
            hashes: vec![0; size],
            slots: vec![u32::MAX; size],
            last_sec: vec![0; size],
            // Reserved up front (address space only; pages are touched as
            // flows arrive): the 64-byte-aligned entries would otherwise be
            // copied, not remapped, on every doubling, which peaks the RSS.
            entries: Vec::with_capacity(size.min(1 << 20)),
            free: Vec::new(),
            line_len,
            line_start_mask: (size - 1) & !(line_len - 1),
            cursor: 0,
            swept_us: None,
            sweep_period_us: sweep_period_us(size),
            frags: FragCache::new(),
            stats: CacheStats::default(),
            scratch: Vec::new(),
            plugins,
            cfg,
        }
    }

    /// The plugins the cache runs.
    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    /// The plugins the cache runs, to reach a plugin's own API between
    /// packets.
    pub fn plugins_mut(&mut self) -> &mut Plugins {
        &mut self.plugins
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// Flows currently held.
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn find(&self, key: &Key, hash: u64) -> Option<usize> {
        let start = hash as usize & self.line_start_mask;
        (start..start + self.line_len)
            .find(|&i| self.hashes[i] == hash && self.entries[self.slots[i] as usize].key == *key)
    }

    /// Moves slot `i` to the front of its line; returns the new index.
    fn move_to_front(&mut self, i: usize) -> usize {
        let start = i & !(self.line_len - 1);
        self.hashes[start..=i].rotate_right(1);
        self.slots[start..=i].rotate_right(1);
        self.last_sec[start..=i].rotate_right(1);
        start
    }

    /// Exports the flow of slot `i` without the plugins' `pre_export` (a
    /// flush a plugin asked for, a SYN after FIN/RST).
    fn export(&mut self, i: usize, reason: EndReason, out: &mut Vec<FlowRecord>) {
        let e = self.slots[i] as usize;
        self.hashes[i] = 0;
        self.slots[i] = u32::MAX;
        let entry = &mut self.entries[e];
        let mut flow = entry.flow.clone();
        flow.end_reason = reason;
        let exts = std::mem::take(&mut entry.exts);
        self.free.push(e as u32);
        self.stats.exported += 1;
        out.push(FlowRecord { flow, exts });
    }

    /// Exports the flow of slot `i` after the plugins' `pre_export`
    /// (timeouts, eviction, end of input).
    fn export_finished(&mut self, i: usize, reason: EndReason, out: &mut Vec<FlowRecord>) {
        if !self.plugins.is_empty() {
            let entry = &mut self.entries[self.slots[i] as usize];
            self.plugins.pre_export(&entry.flow, &mut entry.exts);
        }
        self.export(i, reason, out);
    }

    /// A plugin asked for a flush of slot `i` while `p` was being counted.
    /// With reinsert, the flow leaves without `p` and starts over in its
    /// slot from `p` (ipfixprobe's FLOW_FLUSH_WITH_REINSERT); else it leaves.
    fn flush(
        &mut self,
        i: usize,
        v: Verdict,
        p: &Packet,
        forward: bool,
        out: &mut Vec<FlowRecord>,
    ) {
        // A plugin that asks again on the new flow's first packet gets a
        // plain flush: a reinsert loop cannot form.
        for again in [false, true] {
            if !v.reinsert() || again {
                self.export(i, EndReason::Forced, out);
                return;
            }
            let e = self.slots[i] as usize;
            let entry = &mut self.entries[e];
            let mut flow = entry.flow.clone();
            flow.end_reason = EndReason::Forced;
            let exts = std::mem::take(&mut entry.exts);
            self.stats.exported += 1;
            out.push(FlowRecord { flow, exts });
            let entry = &mut self.entries[e];
            entry.flow.reuse();
            entry.flow.update(p, forward);
            self.last_sec[i] = (entry.flow.time_last / 1_000_000) as u32;
            let v2 = self.plugins.post_create(&entry.flow, &mut entry.exts, p);
            if !v2.flush() {
                return;
            }
        }
    }

    fn create(&mut self, p: &Packet, key: Key, hash: u64, out: &mut Vec<FlowRecord>) {
        let start = hash as usize & self.line_start_mask;
        let end = start + self.line_len;
        let i = match (start..end).find(|&i| self.hashes[i] == 0) {
            Some(i) => i,
            None => {
                self.export_finished(end - 1, EndReason::NoResources, out);
                self.stats.evicted += 1;
                let mid = start + self.line_len / 2;
                self.hashes[mid..end].rotate_right(1);
                self.slots[mid..end].rotate_right(1);
                self.last_sec[mid..end].rotate_right(1);
                mid
            }
        };
        let entry = Entry {
            key,
            flow: Flow::new(p, hash),
            exts: Extensions::default(),
        };
        let e = match self.free.pop() {
            Some(e) => {
                self.entries[e as usize] = entry;
                e
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        self.hashes[i] = hash;
        self.slots[i] = e;
        self.last_sec[i] = (p.ts_us / 1_000_000) as u32;
        self.stats.new_flows += 1;
        if !self.plugins.is_empty() {
            let entry = &mut self.entries[e as usize];
            let v = self.plugins.post_create(&entry.flow, &mut entry.exts, p);
            if v.flush() {
                // The one-packet flow leaves at once (no pre_export).
                self.export(i, EndReason::Forced, out);
            }
        }
    }

    /// Accounts one parsed IP packet; flows it ends are appended to `out`.
    pub fn put(&mut self, p: &mut Packet, out: &mut Vec<FlowRecord>) {
        self.frags.process(p);
        let keys = Lookup::of(p);
        self.put_prepared(p, &keys, out);
    }

    /// Accounts a batch of packets in order, exactly as `put` one by one
    /// would, but first touches the table lines and flow records they will
    /// need, so that the memory loads of the whole batch overlap instead of
    /// stalling one packet at a time.
    pub fn put_batch(&mut self, pkts: &mut [Packet], out: &mut Vec<FlowRecord>) {
        let mut keys = std::mem::take(&mut self.scratch);
        keys.clear();
        for p in pkts.iter_mut() {
            self.frags.process(p);
            keys.push(Lookup::of(p));
        }
        let mask = self.line_start_mask;
        let half = self.line_len / 2;
        let mut touch = 0u64;
        for k in &keys {
            for h in [k.fhash, k.rhash] {
                let s = h as usize & mask;
                touch ^= self.hashes[s]
                    ^ self.hashes[s + half]
                    ^ u64::from(self.slots[s])
                    ^ u64::from(self.last_sec[s]);
            }
        }
        std::hint::black_box(touch);
        for k in &keys {
            for h in [k.fhash, k.rhash] {
                let s = h as usize & mask;
                if let Some(i) = (s..s + self.line_len).find(|&i| self.hashes[i] == h) {
                    // An entry spans several cache lines: touch the key's,
                    // the counters' and the extension list's (and the list's heap block
                    // when it holds more than one extension).
                    let e = &self.entries[self.slots[i] as usize];
                    touch ^= u64::from(e.key.bytes[0])
                        ^ e.flow.time_last
                        ^ e.flow.bytes_rev
                        ^ e.exts.touch();
                }
            }
        }
        std::hint::black_box(touch);
        for (p, k) in pkts.iter_mut().zip(&keys) {
            self.put_prepared(p, k, out);
        }
        self.scratch = keys;
    }

    fn put_prepared(&mut self, p: &mut Packet, k: &Lookup, out: &mut Vec<FlowRecord>) {
        self.stats.packets += 1;
        if !self.plugins.is_empty() {
            self.plugins.pre_create(p);
        }
        let (fkey, fhash) = (k.fkey, k.fhash);
        let mut found = self.find(&fkey, fhash).map(|i| (i, true));
        if found.is_none() && !self.cfg.split_biflow {
            found = self.find(&k.rkey, k.rhash).map(|i| (i, false));
        }
        let sec = p.ts_us / 1_000_000;
        match found {
            None => {
                p.source_pkt = true;
                self.create(p, fkey, fhash, out)
            }
            Some((i, forward)) => {
                p.source_pkt = forward;
                let i = self.move_to_front(i);
                let flow = &self.entries[self.slots[i] as usize].flow;
                let dir_flags = if forward {
                    flow.tcp_flags
                } else {
                    flow.tcp_flags_rev
                };
                let any_flags = flow.tcp_flags | flow.tcp_flags_rev;
                // (reason, whether the plugins' pre_export runs: not on a SYN
                // after FIN/RST, as in ipfixprobe)
                let restart = if p.tcp_flags & SYN != 0 && dir_flags & (FIN | RST) != 0 {
                    Some((EndReason::EndOfFlow, false))
                } else if sec.saturating_sub(flow.time_last / 1_000_000) >= self.cfg.inactive {
                    Some((
                        if any_flags & (FIN | RST) != 0 {
                            EndReason::EndOfFlow
                        } else {
                            EndReason::Inactive
                        },
                        true,
                    ))
                } else if sec.saturating_sub(flow.time_first / 1_000_000) >= self.cfg.active {
                    Some((EndReason::Active, true))
                } else {
                    None
                };
                match restart {
                    Some((reason, pre_export)) => {
                        if pre_export {
                            self.export_finished(i, reason, out);
                        } else {
                            self.export(i, reason, out);
                        }
                        p.source_pkt = true;
                        self.create(p, fkey, fhash, out);
                    }
                    None => {
                        self.stats.hits += 1;
                        let e = self.slots[i] as usize;
                        if self.plugins.is_empty() {
                            let flow = &mut self.entries[e].flow;
                            flow.update(p, forward);
                            self.last_sec[i] = (flow.time_last / 1_000_000) as u32;
                        } else if !self.update_with_plugins(i, e, p, forward, out) {
                            // A plugin flushed the flow: no expiry scan on
                            // this packet (ipfixprobe returns early too).
                            return;
                        }
                    }
                }
            }
        }
        self.export_expired(sec, out);
    }

    /// Counts `p` in the flow of slot `i` (entry `e`) between the plugins'
    /// pre- and post-update hooks; false when a plugin flushed the flow.
    fn update_with_plugins(
        &mut self,
        i: usize,
        e: usize,
        p: &mut Packet,
        forward: bool,
        out: &mut Vec<FlowRecord>,
    ) -> bool {
        let entry = &mut self.entries[e];
        let v = self.plugins.pre_update(&entry.flow, &mut entry.exts, p);
        if v.flush() {
            self.flush(i, v, p, forward, out);
            return false;
        }
        entry.flow.update(p, forward);
        self.last_sec[i] = (entry.flow.time_last / 1_000_000) as u32;
        let v = self.plugins.post_update(&entry.flow, &mut entry.exts, p);
        if v.flush() {
            self.flush(i, v, p, forward, out);
            return false;
        }
        true
    }

    /// Exports the inactive flows among the next line/2 slots of the cursor.
    pub fn export_expired(&mut self, now_sec: u64, out: &mut Vec<FlowRecord>) {
        let step = (self.line_len / 2).max(1);
        let size = self.hashes.len();
        for i in self.cursor..self.cursor + step {
            let i = i % size;
            if self.hashes[i] == 0
                || now_sec.saturating_sub(u64::from(self.last_sec[i])) < self.cfg.inactive
            {
                continue;
            }
            let flow = &self.entries[self.slots[i] as usize].flow;
            let reason = if (flow.tcp_flags | flow.tcp_flags_rev) & (FIN | RST) != 0 {
                EndReason::EndOfFlow
            } else {
                EndReason::Inactive
            };
            self.export_finished(i, reason, out);
        }
        self.cursor = (self.cursor + step) % size;
    }

    /// Time-driven expiry (live capture on a quiet link): moves the expiry
    /// cursor over as many slots as the time since the last call allows (the
    /// whole table per [`sweep_period_us`], at most once per call) and exports
    /// the inactive flows it passes. `now_us`: microseconds since the epoch
    /// (the wall clock, or the last packet's time). The first call only sets
    /// the start; a clock going back restarts from there.
    ///
    /// Called at least every 100 ms, it exports a flow within the period plus
    /// that interval after its inactive timeout.
    pub fn sweep(&mut self, now_us: u64, out: &mut Vec<FlowRecord>) {
        let size = self.hashes.len() as u64;
        let period = self.sweep_period_us;
        let since = match self.swept_us {
            Some(t) if now_us >= t => t,
            _ => {
                self.swept_us = Some(now_us);
                return;
            }
        };
        let elapsed = now_us - since;
        if elapsed >= period {
            self.swept_us = Some(now_us);
            self.scan(now_us / 1_000_000, size as usize, out);
            return;
        }
        // elapsed < period ≤ 2^26 µs and size ≤ 2^30: no overflow.
        let slots = elapsed * size / period;
        if slots == 0 {
            return;
        }
        // Account the time these slots stand for (rounded down, so the sweep
        // never falls behind); the rest carries over to the next call.
        self.swept_us = Some(since + slots * period / size);
        self.scan(now_us / 1_000_000, slots as usize, out);
    }

    /// Exports the inactive flows among the `n` (≤ size) slots from the
    /// cursor on, wrapping around, and moves the cursor past them.
    fn scan(&mut self, now_sec: u64, n: usize, out: &mut Vec<FlowRecord>) {
        let size = self.hashes.len();
        let start = self.cursor;
        let end = start + n.min(size);
        let (a, b) = if end <= size {
            (start..end, 0..0)
        } else {
            (start..size, 0..end - size)
        };
        for i in a.chain(b) {
            if self.hashes[i] == 0
                || now_sec.saturating_sub(u64::from(self.last_sec[i])) < self.cfg.inactive
            {
                continue;
            }
            let flow = &self.entries[self.slots[i] as usize].flow;
            let reason = if (flow.tcp_flags | flow.tcp_flags_rev) & (FIN | RST) != 0 {
                EndReason::EndOfFlow
            } else {
                EndReason::Inactive
            };
            self.export_finished(i, reason, out);
        }
        self.cursor = end % size;
    }

    /// Exports every flow (end of input).
    pub fn flush_all(&mut self, out: &mut Vec<FlowRecord>) {
        for i in 0..self.hashes.len() {
            if self.hashes[i] != 0 {
                self.export_finished(i, EndReason::Forced, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse, tests::frame_v4, LinkType};

    fn pkt(ts_s: u64, src: u8, dst: u8, sport: u16, dport: u16, flags: u8) -> Packet {
        let f = frame_v4(
            6,
            [10, 0, 0, src],
            [10, 0, 0, dst],
            sport,
            dport,
            flags,
            None,
        );
        let mut p = Packet {
            ts_us: ts_s * 1_000_000,
            ..Packet::default()
        };
        parse(LinkType::Ethernet, &f, &mut p).unwrap();
        p
    }

    #[test]
    fn biflow_counts_both_directions() {
        let mut c = FlowCache::new(CacheConfig::default());
        let mut out = Vec::new();
        c.put(&mut pkt(1, 1, 2, 1000, 80, SYN), &mut out);
        c.put(&mut pkt(1, 2, 1, 80, 1000, SYN | 0x10), &mut out);
        c.put(&mut pkt(2, 1, 2, 1000, 80, 0x10), &mut out);
        assert!(out.is_empty());
        c.flush_all(&mut out);
        assert_eq!(out.len(), 1);
        let f = &out[0].flow;
        assert_eq!(
            (f.packets, f.packets_rev, f.bytes, f.bytes_rev),
            (2, 1, 100, 50)
        );
        assert_eq!((f.tcp_flags, f.tcp_flags_rev), (SYN | 0x10, SYN | 0x10));
        assert_eq!((f.src_port, f.dst_port), (1000, 80));
        assert_eq!(f.end_reason, EndReason::Forced);
    }

    #[test]
    fn inactive_and_active_timeouts_start_new_flows() {
        let cfg = CacheConfig {
            active: 10,
            inactive: 3,
            ..CacheConfig::default()
        };
        let mut c = FlowCache::new(cfg);
        let mut out = Vec::new();
        c.put(&mut pkt(100, 1, 2, 1, 2, 0x10), &mut out);
        c.put(&mut pkt(103, 1, 2, 1, 2, 0x10), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].flow.end_reason, EndReason::Inactive);
        for t in [105, 107, 109, 111, 113] {
            c.put(&mut pkt(t, 1, 2, 1, 2, 0x10), &mut out);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].flow.end_reason, EndReason::Active);
        assert_eq!(out[1].flow.packets, 5, "103..111");
    }

    #[test]
    fn syn_after_fin_restarts_the_flow() {
        let mut c = FlowCache::new(CacheConfig::default());
        let mut out = Vec::new();
        c.put(&mut pkt(1, 1, 2, 5, 6, SYN), &mut out);
        c.put(&mut pkt(1, 1, 2, 5, 6, FIN), &mut out);
        c.put(&mut pkt(2, 1, 2, 5, 6, SYN), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].flow.end_reason, EndReason::EndOfFlow);
        assert_eq!(out[0].flow.packets, 2);
    }

    #[test]
    fn a_full_line_evicts_its_least_recent_flow() {
        let cfg = CacheConfig {
            size_exp: 4,
            line_exp: 4,
            ..CacheConfig::default()
        };
        let mut c = FlowCache::new(cfg);
        let mut out = Vec::new();
        for port in 1..=16 {
            c.put(&mut pkt(1, 1, 2, port, 80, 0), &mut out);
        }
        assert!(out.is_empty());
        // Touch every flow except port 1's, which becomes the LRU.
        for port in 2..=16 {
            c.put(&mut pkt(1, 1, 2, port, 80, 0), &mut out);
        }
        c.put(&mut pkt(1, 1, 2, 99, 80, 0), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].flow.src_port, out[0].flow.end_reason),
            (1, EndReason::NoResources)
        );
        assert_eq!(c.len(), 16);
        assert_eq!(c.stats().evicted, 1);
    }

    #[test]
    fn later_fragments_get_the_ports_of_the_first() {
        let mut c = FlowCache::new(CacheConfig::default());
        let mut out = Vec::new();
        let mut first = pkt(1, 1, 2, 7, 8, 0);
        first.more_fragments = true;
        first.frag_id = 99;
        let mut second = first.clone();
        second.more_fragments = false;
        second.frag_off = 185;
        second.src_port = 0;
        second.dst_port = 0;
        c.put(&mut first, &mut out);
        c.put(&mut second, &mut out);
        c.flush_all(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].flow.packets, 2);
    }

    #[test]
    fn batches_give_the_same_flows_as_single_packets() {
        let cfg = CacheConfig {
            size_exp: 6,
            inactive: 2,
            ..CacheConfig::default()
        };
        let mut pkts: Vec<Packet> = (0..5000u32)
            .map(|i| {
                let r = i.wrapping_mul(2_654_435_761);
                let (a, b) = ((r % 40) as u8, (r / 40 % 40) as u8);
                let mut p = pkt(
                    u64::from(i / 300),
                    a,
                    b,
                    (r % 7) as u16,
                    (r % 5) as u16,
                    [0, SYN, FIN, 0x10][(r % 4) as usize],
                );
                p.ts_us += u64::from(i);
                p
            })
            .collect();
        let mut one = FlowCache::new(cfg.clone());
        let mut seq = Vec::new();
        for p in pkts.clone().iter_mut() {
            one.put(p, &mut seq);
        }
        one.flush_all(&mut seq);
        let mut many = FlowCache::new(cfg);
        let mut bat = Vec::new();
        for chunk in pkts.chunks_mut(32) {
            many.put_batch(chunk, &mut bat);
        }
        many.flush_all(&mut bat);
        let flows = |v: &[FlowRecord]| v.iter().map(|r| r.flow.clone()).collect::<Vec<_>>();
        assert_eq!(flows(&seq), flows(&bat));
        assert!(seq.len() > 100);
    }

    /// A cache of 2^`size_exp` slots (inactive timeout 2 s) holding flows
    /// whose only packet came at second `t`.
    fn cache_with_flows(size_exp: u32, flows: u16, t: u64) -> FlowCache {
        let mut c = FlowCache::new(CacheConfig {
            size_exp,
            inactive: 2,
            ..CacheConfig::default()
        });
        let mut out = Vec::new();
        for port in 1..=flows {
            c.put(&mut pkt(t, 1, 2, port, 80, 0), &mut out);
        }
        assert!(out.is_empty());
        c
    }

    #[test]
    fn the_sweep_period_is_half_a_second_and_bounded_in_slots_per_second() {
        assert_eq!(sweep_period_us(1 << 4), 250_000);
        assert_eq!(sweep_period_us(1 << 17), 250_000);
        assert_eq!(sweep_period_us(1 << 22), 250_000);
        assert_eq!(sweep_period_us(1 << 23), 500_000);
        assert_eq!(sweep_period_us(1 << 24), 1_000_000);
        assert_eq!(sweep_period_us(1 << 30), 64_000_000);
    }

    #[test]
    fn a_quiet_cache_is_swept_whole_within_the_period_after_the_timeout() {
        // 4096 slots, flows last seen at 100.0 s, inactive 2 s: no packets
        // come; the sweep is called every 100 ms of wall clock.
        let mut c = cache_with_flows(12, 1200, 100);
        let held = c.len();
        assert_eq!(held, 1200);
        let mut out = Vec::new();
        let mut last_export = 0;
        for step in 0..=40u64 {
            let now = 100_000_000 + step * 100_000;
            let before = out.len();
            c.sweep(now, &mut out);
            if now < 102_000_000 {
                assert!(out.is_empty(), "exported before the timeout at {now}");
            }
            if out.len() > before {
                last_export = now;
            }
        }
        assert_eq!(out.len(), held);
        assert!(c.is_empty());
        assert!(out.iter().all(|f| f.flow.end_reason == EndReason::Inactive));
        // Whole seconds: expired at 102.0 s; swept within the period (0.25 s)
        // plus one call interval (0.1 s).
        assert!(
            last_export <= 102_000_000 + sweep_period_us(4096) + 100_000,
            "last flow exported at {last_export}"
        );
    }

    #[test]
    fn each_sweep_visits_slots_in_proportion_to_the_time_passed() {
        let mut c = cache_with_flows(12, 100, 100);
        let mut out = Vec::new();
        let t0 = 100_000_000;
        c.sweep(t0, &mut out);
        let start = c.cursor;
        // 25 ms of a 0.25 s period: a tenth of the table.
        c.sweep(t0 + 25_000, &mut out);
        assert_eq!((c.cursor + 4096 - start) % 4096, 409);
        // No time passed: nothing visited.
        c.sweep(t0 + 25_000, &mut out);
        assert_eq!((c.cursor + 4096 - start) % 4096, 409);
        // Many calls 7 µs apart add up to the same rate (the remainders carry).
        let mut t = t0 + 25_000;
        while t < t0 + 50_000 {
            t += 7;
            c.sweep(t, &mut out);
        }
        let visited = (c.cursor + 4096 - start) % 4096;
        assert!((818..=820).contains(&visited), "{visited}");
        assert!(out.is_empty());
    }

    #[test]
    fn a_sweep_after_a_long_pause_visits_the_table_once() {
        let mut c = cache_with_flows(12, 500, 100);
        let held = c.len();
        let mut out = Vec::new();
        c.sweep(100_000_000, &mut out);
        c.cursor = 1234;
        c.sweep(110_000_000, &mut out);
        assert_eq!(out.len(), held);
        assert_eq!(c.cursor, 1234, "one pass, no more");
    }

    #[test]
    fn a_clock_going_back_restarts_the_sweep_there() {
        let mut c = cache_with_flows(12, 500, 100);
        let mut out = Vec::new();
        c.sweep(200_000_000, &mut out);
        c.sweep(101_000_000, &mut out);
        assert!(out.is_empty());
        let cursor = c.cursor;
        c.sweep(102_000_000, &mut out);
        assert_eq!(c.cursor, cursor, "one whole pass from the new start");
        assert_eq!(out.len(), 500);
    }

    #[test]
    fn memory_is_bounded_by_the_table() {
        let cfg = CacheConfig {
            size_exp: 8,
            ..CacheConfig::default()
        };
        let mut c = FlowCache::new(cfg);
        let mut out = Vec::new();
        for i in 0..10_000u32 {
            c.put(
                &mut pkt(1, (i % 250) as u8, 2, (i / 250) as u16 + 1, 80, 0),
                &mut out,
            );
        }
        assert!(c.len() <= 256);
        assert!(c.entries.len() <= 256);
        assert_eq!(out.len() + c.len(), 10_000);
    }

    #[test]
    fn an_entry_is_three_whole_cache_lines() {
        // The batch prefetch touches one field per line; a field added to
        // Flow, Key or Extensions that grows this costs every packet a miss.
        assert_eq!(std::mem::size_of::<Entry>(), 192);
        assert_eq!(std::mem::align_of::<Entry>(), 64);
    }
}
