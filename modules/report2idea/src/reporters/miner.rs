//! minerdetector2idea: miner_detector alerts to IDEA.

use crate::{Alert, Endpoint, Idea, IdeaTime, InputKind, Reporter};

pub struct MinerReporter;

/// Text of the miner_detector SERVER_RULE codes.
fn rule_text(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "SYN towards the server",
        2 => "server port below 1024",
        3 => "server port below 1024 (answer direction)",
        4 => "lower port taken as the server's",
        _ => return None,
    })
}

impl Reporter for MinerReporter {
    const MODULE_NAME: &'static str = "minerdetector";

    fn input(&self) -> InputKind {
        InputKind::UniRec(
            "ipaddr DST_IP,ipaddr SRC_IP,time TIME_FIRST,time TIME_LAST,uint32 EVENT_SCALE,uint16 DST_PORT",
        )
    }

    fn convert(&mut self, alert: &Alert<'_>) -> Result<Option<Idea>, String> {
        let Alert::UniRec(a) = alert else {
            return Ok(None);
        };
        let last = IdeaTime::from_ur(a.time("TIME_LAST"));
        let mut idea = Idea::new(
            last,
            "Suspicious.Miner",
            "minerdetector",
            &["Flow", "Blacklist"],
        );
        idea.set_window(IdeaTime::from_ur(a.time("TIME_FIRST")), last);
        let (src, dst, port) = (a.ip("SRC_IP"), a.ip("DST_IP"), a.u16("DST_PORT"));
        let scale = u64::from(a.u32("EVENT_SCALE"));
        idea.flow_count = Some(scale);
        idea.conn_count = Some(scale);
        let mut note = format!("Source IP {src} might be a miner.");
        // Extension: which orientation rule found the pool side (when present).
        if let Some(r) = rule_text(a.u8("SERVER_RULE")) {
            note.push_str(&format!(" Pool side: {r}."));
        }
        idea.note = Some(note);
        idea.description = Some(format!(
            "{src} might be a miner, because it connected to {dst}:{port} which is flagged as a mining pool server."
        ));
        idea.source.push(Endpoint::with_proto(&["tcp"]).ip(src));
        let mut t = Endpoint::with_proto(&["tcp"]).ip(dst);
        t.port.push(port);
        idea.target.push(t);
        Ok(Some(idea))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UniRecAlert;
    use unirec::{RecordBuilder, RecordRef, Template, UrIp, UrTime};

    #[test]
    fn miner_alert() {
        let t = Template::parse("time TIME_FIRST,time TIME_LAST,ipaddr SRC_IP,ipaddr DST_IP,uint16 DST_PORT,uint32 EVENT_SCALE,uint8 SERVER_RULE").unwrap();
        let mut b = RecordBuilder::new(&t);
        let f = |n| t.find(n).unwrap();
        b.set_ip(f("SRC_IP"), UrIp::parse("10.0.0.1").unwrap())
            .unwrap();
        b.set_ip(f("DST_IP"), UrIp::parse("192.0.2.10").unwrap())
            .unwrap();
        b.set_u16(f("DST_PORT"), 3333).unwrap();
        b.set_u32(f("EVENT_SCALE"), 1200).unwrap();
        b.set_u8(f("SERVER_RULE"), 4).unwrap();
        b.set_time(f("TIME_FIRST"), UrTime::from_secs_millis(1_714_557_600, 0))
            .unwrap();
        b.set_time(f("TIME_LAST"), UrTime::from_secs_millis(1_714_558_195, 0))
            .unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let rec = RecordRef::new_checked(&t, &buf).unwrap();
        let idea = MinerReporter
            .convert(&Alert::UniRec(UniRecAlert { rec }))
            .unwrap()
            .unwrap();
        insta::assert_json_snapshot!(idea.to_json(), { ".ID" => "[ID]", ".CreateTime" => "[CreateTime]" });
    }
}
