//! ddos_detector2idea: ddos_detector alerts to IDEA.

use crate::{Alert, Endpoint, Idea, IdeaTime, InputKind, Reporter};

pub struct DdosReporter;

impl Reporter for DdosReporter {
    const MODULE_NAME: &'static str = "ddos_detector";

    fn input(&self) -> InputKind {
        InputKind::UniRec(
            "ipaddr DST_IP,uint64 BYTES,time TIME_FIRST,time TIME_LAST,uint64 EVENT_ID",
        )
    }

    fn convert(&mut self, alert: &Alert<'_>) -> Result<Option<Idea>, String> {
        let Alert::UniRec(a) = alert else {
            return Ok(None);
        };
        let last = IdeaTime::from_ur(a.time("TIME_LAST"));
        let mut idea = Idea::new(
            last,
            "Availability.DoS",
            "ddos_detector",
            &["Flow", "Statistical"],
        );
        idea.alt_names.push(a.u64("EVENT_ID").to_string());
        idea.set_window(IdeaTime::from_ur(a.time("TIME_FIRST")), last);
        idea.byte_count = Some(a.u64("BYTES"));
        idea.description = Some("Volume of traffic and number of its sources increased.".into());
        idea.target.push(Endpoint::default().ip(a.ip("DST_IP")));
        Ok(Some(idea))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UniRecAlert;
    use unirec::{RecordBuilder, RecordRef, Template, UrIp, UrTime};

    #[test]
    fn flood_alert() {
        let t = Template::parse("ipaddr DST_IP,uint64 BYTES,time TIME_FIRST,time TIME_LAST,uint64 EVENT_ID,uint16 EVENT_SEQ").unwrap();
        let mut b = RecordBuilder::new(&t);
        let f = |n| t.find(n).unwrap();
        b.set_ip(f("DST_IP"), UrIp::parse("198.51.100.10").unwrap())
            .unwrap();
        b.set_u64(f("BYTES"), 24_000_000).unwrap();
        b.set_time(f("TIME_FIRST"), UrTime::from_secs_millis(1_714_557_600, 0))
            .unwrap();
        b.set_time(f("TIME_LAST"), UrTime::from_secs_millis(1_714_558_320, 0))
            .unwrap();
        b.set_u64(f("EVENT_ID"), (7 << 32) | 1).unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let rec = RecordRef::new_checked(&t, &buf).unwrap();
        let idea = DdosReporter
            .convert(&Alert::UniRec(UniRecAlert { rec }))
            .unwrap()
            .unwrap();
        insta::assert_json_snapshot!(idea.to_json(), { ".ID" => "[ID]", ".CreateTime" => "[CreateTime]" });
    }
}
