//! blacklist2idea: flows marked by ipblacklistfilter to IDEA, one message
//! per blacklisted side and list.

use crate::{proto_name, Alert, Endpoint, Idea, IdeaTime, InputKind, Reporter};
use bl_downloader::ListConfig;
use std::collections::HashMap;

pub struct BlacklistReporter {
    /// Blacklist id → its configuration (name, category, source).
    pub lists: HashMap<u8, ListConfig>,
}

/// `Type` of the blacklisted side and of its peer for a category.
fn types(category: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match category {
        "Intrusion.Botnet" => (&["CC", "Botnet"], &["Botnet"]),
        "Suspicious.Miner" => (&["PoolServer"], &["Miner"]),
        "Suspicious.Booter" => (&["Booter"], &[]),
        "Fraud.Phishing" => (&["Phishing"], &[]),
        _ => (&[], &[]),
    }
}

impl Reporter for BlacklistReporter {
    const MODULE_NAME: &'static str = "blacklist";

    fn input(&self) -> InputKind {
        InputKind::UniRec(
            "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,\
uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST,uint64 SRC_BLACKLIST,uint64 DST_BLACKLIST",
        )
    }

    fn convert(&mut self, alert: &Alert<'_>) -> Result<Option<Idea>, String> {
        Ok(self.convert_all(alert)?.into_iter().next())
    }

    fn convert_all(&mut self, alert: &Alert<'_>) -> Result<Vec<Idea>, String> {
        let Alert::UniRec(a) = alert else {
            return Ok(Vec::new());
        };
        let proto = proto_name(a.u8("PROTOCOL"));
        let with_ports = matches!(proto, Some("tcp" | "udp"));
        let mut out = Vec::new();
        for (bl_field, ip_field, port_field, peer_ip, peer_port) in [
            ("SRC_BLACKLIST", "SRC_IP", "SRC_PORT", "DST_IP", "DST_PORT"),
            ("DST_BLACKLIST", "DST_IP", "DST_PORT", "SRC_IP", "SRC_PORT"),
        ] {
            let bitmap = a.u64(bl_field);
            for bit in 0..64u8 {
                if bitmap & (1u64 << bit) == 0 {
                    continue;
                }
                let id = bit + 1;
                let Some(l) = self.lists.get(&id) else {
                    libtrap::log::warn(&format!(
                        "blacklist id {id} is not in the blacklist config; skipped"
                    ));
                    continue;
                };
                let category = if l.category.is_empty() {
                    "Other"
                } else {
                    &l.category
                };
                let last = IdeaTime::from_ur(a.time("TIME_LAST"));
                let mut idea = Idea::new(last, category, "blacklistfilter", &["Flow", "Blacklist"]);
                idea.set_window(IdeaTime::from_ur(a.time("TIME_FIRST")), last);
                idea.description = Some(format!(
                    "Suspicious communication with IP listed on {} blacklist",
                    l.name
                ));
                if l.source.starts_with("http") {
                    idea.r#ref.push(l.source.clone());
                }
                idea.flow_count = Some(1);
                idea.packet_count = Some(u64::from(a.u32("PACKETS")));
                idea.byte_count = Some(a.u64("BYTES"));
                let (t_bl, t_peer) = types(category);
                let protos: Vec<&str> = proto.into_iter().collect();
                let mut bl = Endpoint::with_proto(&protos).ip(a.ip(ip_field));
                let mut peer = Endpoint::with_proto(&protos).ip(a.ip(peer_ip));
                if with_ports {
                    bl.port.push(a.u16(port_field));
                    peer.port.push(a.u16(peer_port));
                }
                bl.kind = t_bl.iter().map(|s| s.to_string()).collect();
                peer.kind = t_peer.iter().map(|s| s.to_string()).collect();
                idea.source.push(bl);
                idea.target.push(peer);
                out.push(idea);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UniRecAlert;
    use unirec::{RecordBuilder, RecordRef, Template, UrIp, UrTime};

    #[test]
    fn one_message_per_side_and_list() {
        let cfg = bl_downloader::Config::parse(
            "[[blacklist]]\nid = 1\nname = \"Botnets\"\ncategory = \"Intrusion.Botnet\"\nsource = \"http://example.org/b.txt\"\n\
             [[blacklist]]\nid = 3\nname = \"Miners\"\ncategory = \"Suspicious.Miner\"\nsource = \"/var/m.txt\"\n",
            "c",
        )
        .unwrap();
        let mut r = BlacklistReporter {
            lists: cfg.blacklist.into_iter().map(|l| (l.id, l)).collect(),
        };
        let t = Template::parse(ipblacklist_spec()).unwrap();
        let mut b = RecordBuilder::new(&t);
        let f = |n| t.find(n).unwrap();
        b.set_ip(f("SRC_IP"), UrIp::parse("10.0.0.1").unwrap())
            .unwrap();
        b.set_ip(f("DST_IP"), UrIp::parse("198.51.100.7").unwrap())
            .unwrap();
        b.set_u16(f("SRC_PORT"), 50000).unwrap();
        b.set_u16(f("DST_PORT"), 443).unwrap();
        b.set_u8(f("PROTOCOL"), 6).unwrap();
        b.set_u32(f("PACKETS"), 10).unwrap();
        b.set_u64(f("BYTES"), 1000).unwrap();
        b.set_time(f("TIME_FIRST"), UrTime::from_secs_millis(1_714_557_600, 0))
            .unwrap();
        b.set_time(f("TIME_LAST"), UrTime::from_secs_millis(1_714_557_610, 0))
            .unwrap();
        b.set_u64(f("DST_BLACKLIST"), 0b101 | 0b10).unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let rec = RecordRef::new_checked(&t, &buf).unwrap();
        let ideas = r.convert_all(&Alert::UniRec(UniRecAlert { rec })).unwrap();
        // bits 1 and 3 known, bit 2 unknown (skipped)
        assert_eq!(ideas.len(), 2);
        insta::assert_json_snapshot!(ideas[0].to_json(), { ".ID" => "[ID]", ".CreateTime" => "[CreateTime]" });
        assert_eq!(ideas[1].category, vec!["Suspicious.Miner"]);
        assert!(ideas[1].r#ref.is_empty());
    }

    fn ipblacklist_spec() -> &'static str {
        "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST,uint64 SRC_BLACKLIST,uint64 DST_BLACKLIST,string ADAPTIVE_IDS"
    }
}
