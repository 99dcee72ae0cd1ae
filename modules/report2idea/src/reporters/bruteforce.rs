//! bruteforce2idea: brute_force_detector alerts to IDEA.

use crate::{Alert, Endpoint, Idea, IdeaTime, InputKind, Reporter};
use unirec::UrIp;

pub struct BruteforceReporter;

/// NEMEA's service names (getservbyport for the rest; 3389 as in the usual
/// /etc/services).
fn service(port: u16) -> Option<&'static str> {
    Some(match port {
        22 => "SSH",
        23 => "TELNET",
        2179 => "VMRDP",
        3389 => "MS-WBT-SERVER",
        5900 => "VNC",
        21 => "FTP",
        _ => return None,
    })
}

/// The victims in the detector's NOTE (`I:a,b,O:c,`), deduplicated.
pub fn note_victims(note: &str) -> Vec<UrIp> {
    let mut v: Vec<UrIp> = note
        .split(',')
        .map(|s| s.trim_start_matches("I:").trim_start_matches("O:"))
        .filter_map(UrIp::parse)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Reporter for BruteforceReporter {
    const MODULE_NAME: &'static str = "bruteforce";

    fn input(&self) -> InputKind {
        InputKind::UniRec(
            "ipaddr SRC_IP,time DETECTION_TIME,uint32 EVENT_SCALE,uint16 DST_PORT,uint8 PROTOCOL,uint8 WARDEN_TYPE",
        )
    }

    fn convert(&mut self, alert: &Alert<'_>) -> Result<Option<Idea>, String> {
        let Alert::UniRec(a) = alert else {
            return Ok(None);
        };
        if a.u8("WARDEN_TYPE") != 2 {
            return Ok(None);
        }
        let port = a.u16("DST_PORT");
        let svc = service(port);
        let mut idea = Idea::new(
            IdeaTime::from_ur(a.time("DETECTION_TIME")),
            "Attempt.Login",
            "brute_force_detector",
            &["Flow", "Statistical"],
        );
        idea.description = Some(match svc {
            Some(s) => format!("Multiple unsuccessful login attempts on {s}"),
            None => "Multiple unsuccessful login attempts".to_string(),
        });
        idea.flow_count = Some(u64::from(a.u32("EVENT_SCALE")));
        let lower = svc.map(str::to_lowercase);
        let proto: Vec<&str> = std::iter::once("tcp").chain(lower.as_deref()).collect();
        idea.source
            .push(Endpoint::with_proto(&proto).ip(a.ip("SRC_IP")));
        let mut target = Endpoint::with_proto(&proto);
        target.port.push(port);
        // Extension: the victims named in NOTE (when the alert has it).
        for v in note_victims(&a.string("NOTE")) {
            target.add_ur_ip(v);
        }
        idea.target.push(target);
        Ok(Some(idea))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UniRecAlert;
    use unirec::{RecordBuilder, RecordRef, Template, UrTime};

    fn convert(warden: u8, port: u16, note: &str) -> Option<Idea> {
        let t = Template::parse("time DETECTION_TIME,uint8 WARDEN_TYPE,ipaddr SRC_IP,uint8 PROTOCOL,uint16 DST_PORT,uint32 EVENT_SCALE,string NOTE").unwrap();
        let mut b = RecordBuilder::new(&t);
        let f = |n| t.find(n).unwrap();
        b.set_time(
            f("DETECTION_TIME"),
            UrTime::from_secs_millis(1_714_557_898, 0),
        )
        .unwrap();
        b.set_u8(f("WARDEN_TYPE"), warden).unwrap();
        b.set_ip(f("SRC_IP"), UrIp::parse("192.0.2.66").unwrap())
            .unwrap();
        b.set_u8(f("PROTOCOL"), 6).unwrap();
        b.set_u16(f("DST_PORT"), port).unwrap();
        b.set_u32(f("EVENT_SCALE"), 30).unwrap();
        b.set_var(f("NOTE"), note.as_bytes()).unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let rec = RecordRef::new_checked(&t, &buf).unwrap();
        BruteforceReporter
            .convert(&Alert::UniRec(UniRecAlert { rec }))
            .unwrap()
    }

    #[test]
    fn ssh_alert() {
        let idea = convert(2, 22, "I:10.0.0.2,10.0.0.1,O:10.0.0.1,").unwrap();
        insta::assert_json_snapshot!(idea.to_json(), { ".ID" => "[ID]", ".CreateTime" => "[CreateTime]" });
    }

    #[test]
    fn other_services_and_types() {
        assert!(convert(1, 22, "").is_none());
        let i = convert(2, 3389, "I:O:").unwrap();
        assert_eq!(
            i.description.as_deref(),
            Some("Multiple unsuccessful login attempts on MS-WBT-SERVER")
        );
        assert!(i.target[0].ip4.is_empty());
        let i = convert(2, 2222, "").unwrap();
        assert_eq!(
            i.description.as_deref(),
            Some("Multiple unsuccessful login attempts")
        );
        assert_eq!(i.source[0].proto, vec!["tcp"]);
    }
}
