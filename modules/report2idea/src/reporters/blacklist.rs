//! blacklist2idea: `aggregated_blacklist` JSON events (blacklist_aggregator)
//! to IDEA, one message per blacklisted address, protocol and list.

use super::json::{field, ip, text, time, uint};
use crate::{aggr_win, Alert, Endpoint, Idea, InputKind, Reporter};
use bl_downloader::ListConfig;
use std::collections::HashMap;

pub struct BlacklistReporter {
    /// Blacklist id → its configuration (name, category, source).
    pub lists: HashMap<u8, ListConfig>,
}

/// `Type` of the blacklisted address, and of its peers when they sent data
/// to it, for a category.
fn types(category: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match category {
        "Intrusion.Botnet" => (&["CC", "Botnet"], &["Botnet"]),
        "Suspicious.Miner" => (&["PoolServer"], &["Miner"]),
        "Suspicious.Booter" => (&["Booter"], &[]),
        "Fraud.Phishing" => (&["Phishing"], &[]),
        _ => (&[], &[]),
    }
}

/// The protocol names NEMEA's blacklist2idea puts into Proto.
fn proto(p: u64) -> Option<&'static str> {
    match p {
        1 => Some("icmp"),
        6 => Some("tcp"),
        17 => Some("udp"),
        _ => None,
    }
}

fn to_strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

impl Reporter for BlacklistReporter {
    const MODULE_NAME: &'static str = "blacklist";

    fn input(&self) -> InputKind {
        InputKind::Json("aggregated_blacklist")
    }

    fn convert(&mut self, alert: &Alert<'_>) -> Result<Option<Idea>, String> {
        let Alert::Json(ev) = alert else {
            return Ok(None);
        };
        let kind = text(ev, "type")?;
        if kind != "ip" {
            return Err(format!(
                "`{kind}` events (URL/DNS blacklists) are not supported, only `ip`"
            ));
        }
        let bit = uint(ev, "blacklist_id")?;
        if !bit.is_power_of_two() {
            return Err(format!(
                "blacklist_id {bit} is not a single list (2^(id-1))"
            ));
        }
        let id = bit.trailing_zeros() as u8 + 1;
        let l = self
            .lists
            .get(&id)
            .ok_or_else(|| format!("blacklist id {id} is not in the blacklist config"))?;
        let category = if l.category.is_empty() {
            "Other"
        } else {
            &l.category
        };
        let (first, last) = (time(ev, "ts_first")?, time(ev, "ts_last")?);
        let mut idea = Idea::new(last, category, "blacklistfilter", &["Flow", "Blacklist"]);
        idea.set_window(first, last);
        idea.r#ref.push(l.source.clone());
        let minutes = field(ev, "agg_win_minutes")?
            .as_f64()
            .ok_or("`agg_win_minutes` is not a number")?;
        // NEMEA takes the whole minutes.
        idea.node[0].aggr_win = Some(aggr_win(minutes.max(0.0) as u64 * 60));
        let count = |key: &str| uint(ev, key);
        let (src_flows, tgt_flows) = (count("src_sent_flows")?, count("tgt_sent_flows")?);
        let (src_packets, tgt_packets) = (count("src_sent_packets")?, count("tgt_sent_packets")?);
        let (src_bytes, tgt_bytes) = (count("src_sent_bytes")?, count("tgt_sent_bytes")?);
        idea.flow_count = Some(src_flows.saturating_add(tgt_flows));
        idea.packet_count = Some(src_packets.saturating_add(tgt_packets));
        idea.byte_count = Some(src_bytes.saturating_add(tgt_bytes));

        let protocol = uint(ev, "protocol")?;
        let protos: Vec<&str> = proto(protocol).into_iter().collect();
        let mut listed = Endpoint::with_proto(&protos).ip(ip(text(ev, "source")?)?);
        let mut peers = Endpoint::with_proto(&protos);
        for t in field(ev, "targets")?
            .as_array()
            .ok_or("`targets` is not a list")?
        {
            peers.add_ur_ip(ip(t.as_str().ok_or("a target is not a string")?)?);
        }
        if matches!(protocol, 6 | 17) {
            for p in field(ev, "source_ports")?
                .as_array()
                .ok_or("`source_ports` is not a list")?
            {
                let p = p.as_u64().and_then(|p| u16::try_from(p).ok());
                listed
                    .port
                    .push(p.ok_or("a source port is not a port number")?);
            }
        }
        let (listed_type, peer_type) = types(category);
        listed.kind = to_strings(listed_type);
        if src_flows > 0 {
            listed.out_flow_count = Some(src_flows);
            listed.out_byte_count = Some(src_bytes);
            listed.out_packet_count = Some(src_packets);
        }
        idea.description = Some(format!(
            "Suspicious communication with IP listed on {} blacklist",
            l.name
        ));
        if tgt_flows > 0 {
            // The peers talked to the listed address: they are sources too.
            listed.in_flow_count = Some(tgt_flows);
            listed.in_byte_count = Some(tgt_bytes);
            listed.in_packet_count = Some(tgt_packets);
            peers.kind = to_strings(peer_type);
            idea.source.push(listed);
            idea.source.push(peers);
        } else {
            idea.description =
                Some("Blacklisted IP tried to communicate with host (with no response)".into());
            idea.source.push(listed);
            idea.target.push(peers);
        }
        Ok(Some(idea))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn reporter() -> BlacklistReporter {
        let cfg = bl_downloader::Config::parse(
            "[[blacklist]]\nid = 2\nname = \"Botnets\"\ncategory = \"Intrusion.Botnet\"\nsource = \"https://example.org/b.txt\"\n\
             [[blacklist]]\nid = 3\nname = \"Miners\"\ncategory = \"Suspicious.Miner\"\nsource = \"/var/m.txt\"\n",
            "c",
        )
        .unwrap();
        BlacklistReporter {
            lists: cfg.blacklist.into_iter().map(|l| (l.id, l)).collect(),
        }
    }

    fn event(bit: u64, src_flows: u64, tgt_flows: u64) -> Value {
        json!({"type": "ip", "ts_first": 1714557600.0, "ts_last": 1714557610.5, "protocol": 6,
            "source_ports": [443], "source": "198.51.100.7", "targets": ["10.0.0.1", "10.0.0.2"],
            "src_sent_bytes": 7000 * src_flows, "src_sent_flows": src_flows, "src_sent_packets": 7 * src_flows,
            "tgt_sent_bytes": 1000 * tgt_flows, "tgt_sent_flows": tgt_flows, "tgt_sent_packets": 10 * tgt_flows,
            "blacklist_id": bit, "agg_win_minutes": 5.0})
    }

    fn convert(ev: Value) -> Result<Option<Idea>, String> {
        reporter().convert(&Alert::Json(&ev))
    }

    #[test]
    fn botnet_server_with_clients() {
        let idea = convert(event(2, 3, 3)).unwrap().unwrap();
        insta::assert_json_snapshot!(idea.to_json(), { ".ID" => "[ID]", ".CreateTime" => "[CreateTime]" });
    }

    #[test]
    fn miner_pool_without_answer() {
        let idea = convert(event(4, 2, 0)).unwrap().unwrap();
        insta::assert_json_snapshot!(idea.to_json(), { ".ID" => "[ID]", ".CreateTime" => "[CreateTime]" });
        assert_eq!(idea.target[0].ip4, ["10.0.0.1", "10.0.0.2"]);
        assert!(idea.target[0].kind.is_empty());
    }

    #[test]
    fn bad_events_are_named() {
        for (ev, want) in [
            (
                event(1, 1, 1),
                "blacklist id 1 is not in the blacklist config",
            ),
            (event(6, 1, 1), "not a single list"),
            (json!({"type": "url"}), "not supported"),
            (json!({"type": "ip", "blacklist_id": 2}), "no `ts_first`"),
        ] {
            let e = convert(ev).err().unwrap();
            assert!(e.contains(want), "{e}");
        }
    }
}
