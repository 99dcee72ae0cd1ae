//! The nftables form of a ruleset: one JSON transaction (`nft -j -f -`)
//! that creates the module's table and chain if needed, flushes the chain
//! and adds every rule in order, so the kernel swaps the whole chain at
//! once (all or nothing). The chain hooks prerouting of the `inet` family
//! after conntrack (priority -150), and every rule first matches the input
//! interface; whitelisted sources are accepted before any rule.

use crate::batch::{Action, L4Proto, Ports, Prefix, Rule};
use crate::ruleset::Ruleset;
use serde_json::{json, Value};

/// Where the rules live.
#[derive(Clone, Debug)]
pub struct Target {
    pub table: String,
    pub iface: String,
}

impl Target {
    pub fn chain(&self) -> String {
        format!("in_{}", self.iface)
    }
}

fn m(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn addr(p: &Prefix) -> Value {
    if p.host_len() {
        p.addr.to_string().into()
    } else {
        json!({"prefix": {"addr": p.addr.to_string(), "len": p.len}})
    }
}

fn ports(p: Ports) -> Value {
    if p.lo == p.hi {
        p.lo.into()
    } else {
        json!({"range": [p.lo, p.hi]})
    }
}

/// The comment nft keeps with a rule (ids are positions, so it names the
/// description only).
fn comment(id: usize, kind: &str, r: &Rule) -> String {
    let d = r.description.as_deref().unwrap_or("");
    let mut c = format!("fw_actuator {kind} {id} {d}");
    c.truncate(120);
    c.trim_end().to_string()
}

/// The expressions of one rule.
pub fn rule_expr(iface: &str, r: &Rule) -> Vec<Value> {
    let mut e = vec![m(json!({"meta": {"key": "iifname"}}), iface.into())];
    let v6 = r.src.or(r.dst).is_some_and(|p| !p.is_v4());
    if let Some(p) = r.l4proto {
        let name = match (p, v6) {
            (L4Proto::Tcp, _) => "tcp",
            (L4Proto::Udp, _) => "udp",
            (L4Proto::Icmp, false) => "icmp",
            (L4Proto::Icmp, true) => "ipv6-icmp",
        };
        e.push(m(json!({"meta": {"key": "l4proto"}}), name.into()));
    }
    let fam = if v6 { "ip6" } else { "ip" };
    if let Some(p) = &r.src {
        e.push(m(
            json!({"payload": {"protocol": fam, "field": "saddr"}}),
            addr(p),
        ));
    }
    if let Some(p) = &r.dst {
        e.push(m(
            json!({"payload": {"protocol": fam, "field": "daddr"}}),
            addr(p),
        ));
    }
    if let Some(p) = r.sport {
        e.push(m(
            json!({"payload": {"protocol": "th", "field": "sport"}}),
            ports(p),
        ));
    }
    if let Some(p) = r.dport {
        e.push(m(
            json!({"payload": {"protocol": "th", "field": "dport"}}),
            ports(p),
        ));
    }
    if let Some(f) = r.tcpflags {
        e.push(m(
            json!({"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, f.mask]}),
            f.value.into(),
        ));
    }
    if let Some(c) = r.conntrack {
        e.push(
            json!({"match": {"op": "in", "left": {"ct": {"key": "state"}},
            "right": c.name().to_ascii_lowercase()}}),
        );
    }
    e.push(json!({"counter": null}));
    e.push(match r.action {
        Action::Drop => json!({"drop": null}),
        Action::Forward => json!({"accept": null}),
    });
    e
}

/// The transaction installing `rules` (after the whitelist) in `t`.
pub fn transaction(t: &Target, rules: &Ruleset, whitelist: &[Prefix]) -> Value {
    let chain = t.chain();
    let mut cmds = vec![
        json!({"add": {"table": {"family": "inet", "name": t.table}}}),
        json!({"add": {"chain": {"family": "inet", "table": t.table, "name": chain,
            "type": "filter", "hook": "prerouting", "prio": -150, "policy": "accept"}}}),
        json!({"flush": {"chain": {"family": "inet", "table": t.table, "name": chain}}}),
    ];
    let mut add = |expr: Vec<Value>, comment: String| {
        cmds.push(
            json!({"add": {"rule": {"family": "inet", "table": t.table, "chain": chain,
            "expr": expr, "comment": comment}}}),
        );
    };
    for (i, w) in whitelist.iter().enumerate() {
        let mut r = Rule::drop_from(*w, "whitelist".into());
        r.action = Action::Forward;
        add(rule_expr(&t.iface, &r), comment(i, "whitelist", &r));
    }
    for (i, e) in rules.entries.iter().enumerate() {
        let kind = if e.expires.is_some() { "auto" } else { "rule" };
        add(rule_expr(&t.iface, &e.rule), comment(i, kind, &e.rule));
    }
    json!({ "nftables": cmds })
}

/// Removing the module's table.
pub fn delete_table(t: &Target) -> Value {
    json!({"nftables": [{"delete": {"table": {"family": "inet", "name": t.table}}}]})
}

/// Per-rule counters `(packets, bytes)` from `nft -j list chain …`, for the
/// rules of the module (not the whitelist), in chain order.
pub fn counters(listing: &Value) -> Vec<(u64, u64)> {
    let Some(items) = listing.get("nftables").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| i.get("rule"))
        .filter(|r| {
            r.get("comment").and_then(Value::as_str).is_some_and(|c| {
                c.starts_with("fw_actuator rule") || c.starts_with("fw_actuator auto")
            })
        })
        .map(|r| {
            r.get("expr")
                .and_then(Value::as_array)
                .and_then(|ex| ex.iter().find_map(|x| x.get("counter")))
                .map(|c| {
                    let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
                    (n("packets"), n("bytes"))
                })
                .unwrap_or((0, 0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::parse_batch;

    #[test]
    fn rules_render_as_nft_json() {
        let ops = parse_batch(r#"{"rules":[{"operation":"append","l4proto":"TCP","src":"198.51.100.0/24","dport":"80-90","tcpflags":"SYN,!ACK","conntrack":"NEW","description":"web"}]}"#).unwrap();
        let (r, _) = Ruleset::default().apply(&ops).unwrap();
        let t = Target {
            table: "fwa".into(),
            iface: "eth0".into(),
        };
        let wl = [Prefix::parse("203.0.113.0/24").unwrap()];
        let j = transaction(&t, &r, &wl).to_string();
        assert!(
            j.contains(r#"{"flush":{"chain":{"family":"inet","name":"in_eth0","table":"fwa"}}}"#),
            "{j}"
        );
        assert!(
            j.contains(r#""right":{"prefix":{"addr":"198.51.100.0","len":24}}"#),
            "{j}"
        );
        assert!(j.contains(r#""right":{"range":[80,90]}"#), "{j}");
        assert!(
            j.contains(r#"{"&":[{"payload":{"field":"flags","protocol":"tcp"}},18]}"#),
            "{j}"
        );
        assert!(j.contains(r#""comment":"fw_actuator rule 0 web""#), "{j}");
        assert!(
            j.contains(r#""comment":"fw_actuator whitelist 0 whitelist""#),
            "{j}"
        );
        // The whitelist comes before the rules.
        assert!(j.find("whitelist 0").unwrap() < j.find("rule 0").unwrap());
    }
}
