//! The kernel edge of the XDP backend: loads `bpf/fw_drop.bpf.c` (compiled
//! by build.rs with clang), attaches it to the interface (native XDP, or
//! the generic mode where the driver has none) and keeps its rule trie in
//! step with the ruleset ([`fw_actuator::xdp_map`] says what it holds).
//!
//! The program's link and trie are pinned in bpffs (`--bpffs`), so the
//! rules stay after a one-shot `--batch` exits, as nft's do; the next run
//! opens the pinned trie, and `--flush` unpins both, which detaches the
//! program. A change adds the new entries before it removes the old ones:
//! not one transaction as with nft, but never a moment without a rule that
//! stays.

use anyhow::{anyhow, Context, Result};
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Map, MapData};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::{Xdp, XdpFlags};
use aya::EbpfLoader;
use fw_actuator::xdp_map::{Wanted, WHITELIST};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/fw_drop.bpf.o"));

/// A trie entry's value, as `struct val` of the C program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Val {
    packets: u64,
    bytes: u64,
    action: u32,
    rule: u32,
}

const _: () = assert!(std::mem::size_of::<Val>() == 24);

// SAFETY: `Pod` lets aya copy the value to and from map memory as raw
// bytes. It is `repr(C)` with only integer fields and no padding (24 bytes,
// asserted above, the C struct's layout), so every byte pattern is a valid
// value and no uninitialised byte is read.
#[allow(unsafe_code)]
unsafe impl aya::Pod for Val {}

type Trie = LpmTrie<MapData, [u8; 20], Val>;

/// The pinned program and trie of one interface.
pub struct XdpTable {
    trie: Trie,
}

/// An aya error with its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn pins(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("link"), dir.join("rules"))
}

impl XdpTable {
    /// Opens the interface's pinned trie; loads and attaches the program
    /// first when it is not there.
    pub fn open(iface: &str, dir: &Path, max_entries: u32) -> Result<XdpTable> {
        let (link_pin, map_pin) = pins(dir);
        if link_pin.exists() && map_pin.exists() {
            let data = MapData::from_pin(&map_pin)
                .map_err(|e| anyhow!("cannot open {}: {}", map_pin.display(), chain(&e)))?;
            let trie = Trie::try_from(Map::LpmTrie(data)).map_err(|e| {
                anyhow!(
                    "{}: not fw_actuator's trie: {}",
                    map_pin.display(),
                    chain(&e)
                )
            })?;
            return Ok(XdpTable { trie });
        }
        if OBJECT.is_empty() {
            return Err(anyhow!(
                "fw_actuator was built without clang: the xdp backend is missing (install clang and libbpf-dev, rebuild; or use --backend nft)"
            ));
        }
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create {} (is bpffs mounted there? mount -t bpf bpf /sys/fs/bpf, or give --bpffs DIR)",
                dir.display()
            )
        })?;
        let load_err = |e: &dyn std::error::Error| {
            anyhow!(
                "cannot load the XDP program: {} (run as root, or with CAP_BPF and CAP_NET_ADMIN; or use --backend nft)",
                chain(e)
            )
        };
        let mut bpf = EbpfLoader::new()
            .set_max_entries("rules", max_entries)
            .load(OBJECT)
            .map_err(|e| load_err(&e))?;
        let prog: &mut Xdp = bpf
            .program_mut("fw_drop")
            .ok_or_else(|| anyhow!("no program fw_drop in the XDP object"))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| load_err(&e))?;
        prog.load().map_err(|e| load_err(&e))?;
        let id = match prog.attach(iface, XdpFlags::default()) {
            Ok(id) => id,
            Err(_) => prog.attach(iface, XdpFlags::SKB_MODE).map_err(|e| {
                anyhow!(
                    "cannot attach the XDP program to {iface}: {} (does it exist in this network namespace? `ip link` lists them; another XDP program there must be removed first)",
                    chain(&e)
                )
            })?,
        };
        let link: FdLink = prog
            .take_link(id)
            .map_err(|e| anyhow!("XDP link: {}", chain(&e)))?
            .try_into()
            .map_err(|e: aya::programs::links::LinkError| {
                anyhow!(
                    "the kernel gave no XDP link to pin: {} (kernel 5.9 or newer is needed)",
                    chain(&e)
                )
            })?;
        let Some(Map::LpmTrie(data)) = bpf.take_map("rules") else {
            return Err(anyhow!("no trie `rules` in the XDP object"));
        };
        data.pin(&map_pin)
            .map_err(|e| anyhow!("cannot pin {}: {}", map_pin.display(), chain(&e)))?;
        if let Err(e) = link.pin(&link_pin) {
            let _ = std::fs::remove_file(&map_pin);
            return Err(anyhow!("cannot pin {}: {}", link_pin.display(), chain(&e)));
        }
        let trie =
            Trie::try_from(Map::LpmTrie(data)).map_err(|e| anyhow!("trie: {}", chain(&e)))?;
        Ok(XdpTable { trie })
    }

    fn current(&self) -> Result<HashMap<(u32, [u8; 20]), Val>> {
        let mut out = HashMap::new();
        for item in self.trie.iter() {
            let (k, v) = item.map_err(|e| anyhow!("reading the XDP trie: {}", chain(&e)))?;
            out.insert((k.prefix_len(), k.data()), v);
        }
        Ok(out)
    }

    /// Makes the trie hold exactly `wanted`, keeping the counters of the
    /// entries that stay.
    pub fn sync(&mut self, wanted: &[Wanted]) -> Result<()> {
        let cur = self.current()?;
        for w in wanted {
            let k = (w.key.prefix_len, w.key.data);
            let old = cur.get(&k).copied().unwrap_or_default();
            if cur.contains_key(&k) && old.action == w.action && old.rule == w.rule {
                continue;
            }
            let v = Val {
                action: w.action,
                rule: w.rule,
                ..old
            };
            self.trie
                .insert(&Key::new(k.0, k.1), v, 0)
                .map_err(|e| anyhow!("XDP trie insert: {} (raise --xdp-entries?)", chain(&e)))?;
        }
        for k in cur.keys() {
            if !wanted.iter().any(|w| (w.key.prefix_len, w.key.data) == *k) {
                self.trie
                    .remove(&Key::new(k.0, k.1))
                    .map_err(|e| anyhow!("XDP trie remove: {}", chain(&e)))?;
            }
        }
        Ok(())
    }

    /// Packets and bytes dropped per rule id.
    pub fn counters(&self) -> Result<HashMap<usize, (u64, u64)>> {
        Ok(self
            .current()?
            .values()
            .filter(|v| v.rule != WHITELIST)
            .map(|v| (v.rule as usize, (v.packets, v.bytes)))
            .collect())
    }
}

/// Unpins the program's link (which detaches it) and the trie.
pub fn remove(dir: &Path) -> Result<()> {
    let (link_pin, map_pin) = pins(dir);
    if link_pin.exists() {
        let link = PinnedLink::from_pin(&link_pin)
            .map_err(|e| anyhow!("cannot open {}: {}", link_pin.display(), chain(&e)))?;
        drop(
            link.unpin()
                .with_context(|| format!("cannot unpin {}", link_pin.display()))?,
        );
    }
    if map_pin.exists() {
        std::fs::remove_file(&map_pin)
            .with_context(|| format!("cannot unpin {}", map_pin.display()))?;
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `struct val` and `struct key` of bpf/fw_drop.bpf.c, byte for byte.
    #[test]
    fn layouts_equal_the_c_structs() {
        assert_eq!(std::mem::offset_of!(Val, packets), 0);
        assert_eq!(std::mem::offset_of!(Val, bytes), 8);
        assert_eq!(std::mem::offset_of!(Val, action), 16);
        assert_eq!(std::mem::offset_of!(Val, rule), 20);
        assert_eq!(std::mem::size_of::<Key<[u8; 20]>>(), 24);
    }
}
