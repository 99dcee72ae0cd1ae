//! The XDP backend's table, without I/O: what the longest-prefix trie of
//! `bpf/fw_drop.bpf.c` must hold for a ruleset. The program matches only
//! addresses, so a rule fits when it names a source or a destination prefix
//! (not both) and nothing else; `drop` drops, `forward` lets through. The
//! whitelist becomes pass entries for the sources.
//!
//! Unlike the nft chain, where the first matching rule decides, the trie's
//! most specific prefix decides, and a source entry before any destination
//! entry (as the chain accepts whitelisted sources before any rule); of two
//! rules for the same prefix the first (lowest id) stays.

use crate::batch::{Action, Prefix, Rule};
use crate::ruleset::Ruleset;
use std::net::IpAddr;

/// The first byte of a key: what the entry matches.
pub const KIND_SRC4: u8 = 0;
pub const KIND_SRC6: u8 = 1;
pub const KIND_DST4: u8 = 2;
pub const KIND_DST6: u8 = 3;
pub const ACTION_DROP: u32 = 1;
pub const ACTION_PASS: u32 = 2;
/// The `rule` of a whitelist entry.
pub const WHITELIST: u32 = u32::MAX;

/// A trie key: 8 bits of kind, then the prefix's bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryKey {
    pub prefix_len: u32,
    pub data: [u8; 20],
}

impl EntryKey {
    pub fn new(is_src: bool, p: &Prefix) -> EntryKey {
        let mut data = [0u8; 20];
        match p.addr {
            IpAddr::V4(a) => {
                data[0] = if is_src { KIND_SRC4 } else { KIND_DST4 };
                data[1..5].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                data[0] = if is_src { KIND_SRC6 } else { KIND_DST6 };
                data[1..17].copy_from_slice(&a.octets());
            }
        }
        EntryKey {
            prefix_len: 8 + u32::from(p.len),
            data,
        }
    }
}

/// One entry the trie must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub key: EntryKey,
    pub action: u32,
    /// The rule's id, or [`WHITELIST`].
    pub rule: u32,
}

/// Why a rule does not fit the XDP backend.
fn unfit(r: &Rule) -> Option<&'static str> {
    if r.l4proto.is_some()
        || r.sport.is_some()
        || r.dport.is_some()
        || r.tcpflags.is_some()
        || r.conntrack.is_some()
    {
        return Some("it matches more than an address");
    }
    match (r.src, r.dst) {
        (Some(_), Some(_)) => Some("it names both a source and a destination"),
        (None, None) => Some("it names no address"),
        _ => None,
    }
}

/// The entries for `rules` and `whitelist`; the first rule that does not
/// fit is an error naming it.
pub fn entries(rules: &Ruleset, whitelist: &[Prefix]) -> Result<Vec<Wanted>, String> {
    let mut out: Vec<Wanted> = Vec::new();
    let mut push = |w: Wanted| {
        if !out.iter().any(|o| o.key == w.key) {
            out.push(w);
        }
    };
    for p in whitelist {
        push(Wanted {
            key: EntryKey::new(true, p),
            action: ACTION_PASS,
            rule: WHITELIST,
        });
    }
    for (id, e) in rules.entries.iter().enumerate() {
        let r = &e.rule;
        if let Some(why) = unfit(r) {
            return Err(format!(
                "rule {id}: the xdp backend matches one source or destination prefix only, and {why} (use the nft backend)"
            ));
        }
        let (is_src, p) = match (r.src, r.dst) {
            (Some(p), _) => (true, p),
            (_, Some(p)) => (false, p),
            _ => continue,
        };
        push(Wanted {
            key: EntryKey::new(is_src, &p),
            action: match r.action {
                Action::Drop => ACTION_DROP,
                Action::Forward => ACTION_PASS,
            },
            rule: u32::try_from(id).unwrap_or(WHITELIST - 1),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::parse_batch;

    fn rules(batch: &str) -> Ruleset {
        let ops = parse_batch(batch).unwrap();
        Ruleset::default().apply(&ops).unwrap().0
    }

    #[test]
    fn keys_carry_the_kind_and_the_prefix() {
        let k = EntryKey::new(true, &Prefix::parse("198.51.100.0/24").unwrap());
        assert_eq!(k.prefix_len, 32);
        assert_eq!(&k.data[..5], &[KIND_SRC4, 198, 51, 100, 0]);
        let k = EntryKey::new(false, &Prefix::parse("2001:db8::1").unwrap());
        assert_eq!(k.prefix_len, 136);
        assert_eq!(k.data[0], KIND_DST6);
        assert_eq!(&k.data[1..3], &[0x20, 0x01]);
        assert_eq!(k.data[17..], [0, 0, 0]);
    }

    #[test]
    fn address_rules_fit_others_are_refused() {
        let r = rules(
            r#"{"rules":[{"operation":"append","src":"198.51.100.1","action":"drop"},
                         {"operation":"append","dst":"203.0.113.0/24","action":"drop"},
                         {"operation":"append","src":"198.51.100.0/24","action":"forward"},
                         {"operation":"append","src":"198.51.100.1","action":"forward"}]}"#,
        );
        let w = entries(&r, &[Prefix::parse("198.51.100.2").unwrap()]).unwrap();
        let got: Vec<(u32, u32, u32)> = w
            .iter()
            .map(|w| (w.key.prefix_len, w.action, w.rule))
            .collect();
        // The whitelist first; the duplicate of rule 0 (rule 3) left out.
        assert_eq!(
            got,
            vec![
                (40, ACTION_PASS, WHITELIST),
                (40, ACTION_DROP, 0),
                (32, ACTION_DROP, 1),
                (32, ACTION_PASS, 2)
            ]
        );
        for bad in [
            r#"{"rules":[{"operation":"append","l4proto":"TCP","src":"198.51.100.1","dport":22,"action":"drop"}]}"#,
            r#"{"rules":[{"operation":"append","src":"198.51.100.1","dst":"198.51.100.2","action":"drop"}]}"#,
            r#"{"rules":[{"operation":"append","l4proto":"TCP","action":"drop"}]}"#,
        ] {
            let e = entries(&rules(bad), &[]).unwrap_err();
            assert!(e.starts_with("rule 0: the xdp backend"), "{e}");
        }
    }
}
