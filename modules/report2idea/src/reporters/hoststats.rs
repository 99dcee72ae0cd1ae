//! hoststats2idea: hoststats events to IDEA.

use crate::{is_unset, proto_name, Alert, Endpoint, Idea, IdeaTime, InputKind, Reporter};

pub struct HoststatsReporter;

/// The numbers of a DoS NOTE: `in: F flows, P packets; out: F flows, P
/// packets; approx. N source|destination addresses`.
fn dos_numbers(note: &str) -> Option<[u64; 5]> {
    let nums: Vec<u64> = note
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums.len() >= 5).then(|| [nums[0], nums[1], nums[2], nums[3], nums[4]])
}

impl Reporter for HoststatsReporter {
    const MODULE_NAME: &'static str = "hoststats";

    fn input(&self) -> InputKind {
        InputKind::UniRec(
            "uint8 EVENT_TYPE,time TIME_FIRST,time TIME_LAST,ipaddr SRC_IP,ipaddr DST_IP,uint8 PROTOCOL,uint32 EVENT_SCALE,string NOTE",
        )
    }

    fn convert(&mut self, alert: &Alert<'_>) -> Result<Option<Idea>, String> {
        let Alert::UniRec(a) = alert else {
            return Ok(None);
        };
        let (src, dst) = (a.ip("SRC_IP"), a.ip("DST_IP"));
        let scale = u64::from(a.u32("EVENT_SCALE"));
        let proto: Vec<&str> = proto_name(a.u8("PROTOCOL")).into_iter().collect();
        let note = a.string("NOTE");
        let category = match a.u8("EVENT_TYPE") {
            2 => "Recon.Scanning",
            10 | 15 => "Availability.DoS",
            30 => "Attempt.Login",
            _ => return Ok(None),
        };
        let mut idea = Idea::new(
            IdeaTime::now(),
            category,
            "HostStatsNemea",
            &["Flow", "Statistical"],
        );
        idea.detect_time = idea.create_time.unwrap_or_else(IdeaTime::now);
        idea.event_time = Some(IdeaTime::from_ur(a.time("TIME_FIRST")));
        idea.cease_time = Some(IdeaTime::from_ur(a.time("TIME_LAST")));
        match a.u8("EVENT_TYPE") {
            2 => {
                idea.description = Some("Horizontal port scan".into());
                idea.source.push(Endpoint::with_proto(&proto).ip(src));
                idea.flow_count = Some(scale);
                idea.conn_count = Some(scale);
            }
            15 => {
                idea.description = Some("Abnormally high number of large DNS replies".into());
                idea.flow_count = Some(scale);
                if !is_unset(dst) {
                    idea.target
                        .push(Endpoint::with_proto(&["udp", "domain"]).ip(dst));
                    idea.note = Some(format!(
                        "{} received abnormally high number of large DNS replies - probably a victim of DNS amplification",
                        dst
                    ));
                }
                if !is_unset(src) {
                    let mut s = Endpoint::with_proto(&["udp", "domain"]).ip(src);
                    s.kind.push("Backscatter".into());
                    s.port.push(53);
                    idea.source.push(s);
                    idea.note = Some(format!(
                        "{} sent abnormally high number of large DNS replies - probably a misused open resolver",
                        src
                    ));
                }
            }
            10 => {
                let syn = a.u8("PROTOCOL") == 6;
                idea.description = Some(
                    if syn {
                        "Abnormally high number of TCP SYN packets"
                    } else {
                        "Abnormally high number of packets"
                    }
                    .into(),
                );
                idea.flow_count = Some(scale);
                let nums = dos_numbers(&note);
                if !is_unset(dst) {
                    // victim: in/out counts are the victim's
                    let mut t = Endpoint::with_proto(&proto).ip(dst);
                    let mut s = Endpoint::default();
                    if let Some([fi, pi, fo, po, n]) = nums {
                        t.in_flow_count = Some(fi);
                        t.in_packet_count = Some(pi);
                        t.out_flow_count = Some(fo);
                        t.out_packet_count = Some(po);
                        s.count = Some(n);
                        s.note = Some("Number of sources is approximate".into());
                    }
                    idea.target.push(t);
                    if s.count.is_some() {
                        idea.source.push(s);
                    }
                    idea.note = Some(format!("{dst} is the victim of a DoS attack"));
                }
                if !is_unset(src) {
                    let mut s = Endpoint::with_proto(&proto).ip(src);
                    let mut t = Endpoint::default();
                    if let Some([fo, po, fi, pi, n]) = nums {
                        s.out_flow_count = Some(fo);
                        s.out_packet_count = Some(po);
                        s.in_flow_count = Some(fi);
                        s.in_packet_count = Some(pi);
                        t.count = Some(n);
                        t.note = Some("Number of targets is approximate".into());
                    }
                    idea.source.push(s);
                    if t.count.is_some() {
                        idea.target.push(t);
                    }
                    idea.note = Some(format!("{src} is the source of a DoS attack"));
                }
            }
            _ => {
                idea.description = Some("SSH dictionary/bruteforce attack".into());
                idea.flow_count = Some(2 * scale);
                idea.conn_count = Some(scale);
                let mut t = Endpoint::with_proto(&["tcp", "ssh"]);
                t.port.push(22);
                if !is_unset(dst) {
                    t.add_ur_ip(dst);
                }
                idea.target.push(t);
                if !is_unset(src) {
                    idea.source.push(Endpoint::default().ip(src));
                }
            }
        }
        Ok(Some(idea))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UniRecAlert;
    use serde_json::Value;
    use unirec::{RecordBuilder, RecordRef, Template, UrIp, UrTime};

    fn convert(ev: u8, src: &str, dst: &str, proto: u8, scale: u32, note: &str) -> Option<Value> {
        let t = Template::parse("uint8 EVENT_TYPE,time TIME_FIRST,time TIME_LAST,ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 EVENT_SCALE,string NOTE").unwrap();
        let mut b = RecordBuilder::new(&t);
        let f = |n| t.find(n).unwrap();
        b.set_u8(f("EVENT_TYPE"), ev).unwrap();
        b.set_ip(f("SRC_IP"), UrIp::parse(src).unwrap()).unwrap();
        b.set_ip(f("DST_IP"), UrIp::parse(dst).unwrap()).unwrap();
        b.set_u8(f("PROTOCOL"), proto).unwrap();
        b.set_u32(f("EVENT_SCALE"), scale).unwrap();
        b.set_var(f("NOTE"), note.as_bytes()).unwrap();
        b.set_time(f("TIME_FIRST"), UrTime::from_secs_millis(1_714_557_600, 0))
            .unwrap();
        b.set_time(f("TIME_LAST"), UrTime::from_secs_millis(1_714_557_900, 0))
            .unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let rec = RecordRef::new_checked(&t, &buf).unwrap();
        let idea = HoststatsReporter
            .convert(&Alert::UniRec(UniRecAlert { rec }))
            .unwrap()?;
        let mut v = idea.to_json();
        let o = v.as_object_mut().unwrap();
        // DetectTime is the reporter's clock for hoststats, like CreateTime.
        for k in ["ID", "CreateTime", "DetectTime"] {
            o.insert(k.into(), format!("[{k}]").into());
        }
        Some(v)
    }

    #[test]
    fn events() {
        let scan = convert(2, "192.0.2.7", "0.0.0.0", 6, 500, "horizontal SYN scan").unwrap();
        insta::assert_json_snapshot!("horizontal_scan", scan);
        let dos = convert(10, "0.0.0.0", "198.51.100.80", 6, 2000,
            "in: 2000 flows, 2000 packets; out: 0 flows, 0 packets; approx. 2000 source addresses; SYN flood").unwrap();
        assert_eq!(
            dos["Description"],
            "Abnormally high number of TCP SYN packets"
        );
        assert_eq!(dos["Target"][0]["InFlowCount"], 2000);
        assert_eq!(dos["Source"][0]["Count"], 2000);
        insta::assert_json_snapshot!("syn_flood_victim", dos);
        let dns = convert(
            15,
            "192.0.2.53",
            "0.0.0.0",
            17,
            10050,
            "DNS amplification - misused server",
        )
        .unwrap();
        assert_eq!(dns["Source"][0]["Port"][0], 53);
        assert_eq!(dns["Source"][0]["Type"][0], "Backscatter");
        insta::assert_json_snapshot!("dns_amplification", dns);
        let ssh = convert(30, "0.0.0.0", "10.0.0.22", 6, 100, "victim").unwrap();
        assert_eq!(ssh["FlowCount"], 200);
        assert_eq!(ssh["Target"][0]["IP4"][0], "10.0.0.22");
        assert!(ssh.get("Source").is_none());
        insta::assert_json_snapshot!("ssh_bruteforce_victim", ssh);
        assert!(convert(3, "1.1.1.1", "0.0.0.0", 6, 1, "").is_none());
    }
}
