//! amplification2idea: dns_amplification alerts to IDEA.

use crate::{Alert, Endpoint, Idea, IdeaTime, InputKind, Reporter};

pub struct AmplificationReporter;

impl Reporter for AmplificationReporter {
    const MODULE_NAME: &'static str = "amplificationdetector";

    fn input(&self) -> InputKind {
        InputKind::UniRec(
            "ipaddr DST_IP,ipaddr SRC_IP,uint64 REQ_BYTES,uint64 RSP_BYTES,time TIME_FIRST,time TIME_LAST,\
uint32 EVENT_ID,uint32 REQ_FLOWS,uint32 REQ_PACKETS,uint32 RSP_FLOWS,uint32 RSP_PACKETS,uint16 SRC_PORT",
        )
    }

    fn convert(&mut self, alert: &Alert<'_>) -> Result<Option<Idea>, String> {
        let Alert::UniRec(a) = alert else {
            return Ok(None);
        };
        let last = IdeaTime::from_ur(a.time("TIME_LAST"));
        let mut idea = Idea::new(
            last,
            "Availability.DDoS",
            "amplification_detection",
            &["Flow", "Statistical"],
        );
        idea.set_window(IdeaTime::from_ur(a.time("TIME_FIRST")), last);
        let (rf, rp, rb) = (
            u64::from(a.u32("RSP_FLOWS")),
            u64::from(a.u32("RSP_PACKETS")),
            a.u64("RSP_BYTES"),
        );
        let (qf, qp, qb) = (
            u64::from(a.u32("REQ_FLOWS")),
            u64::from(a.u32("REQ_PACKETS")),
            a.u64("REQ_BYTES"),
        );
        idea.flow_count = Some(rf);
        idea.packet_count = Some(rp);
        idea.byte_count = Some(rb);
        let port = a.u16("SRC_PORT");
        let proto: &[&str] = match port {
            53 => {
                idea.description = Some("DNS amplification".into());
                &["udp", "domain"]
            }
            123 => {
                idea.description = Some("NTP amplification".into());
                &["udp", "ntp"]
            }
            _ => {
                idea.description = Some(format!("Amplification attack using UDP port {port}"));
                &["udp"]
            }
        };
        let mut src = Endpoint::with_proto(proto).ip(a.ip("SRC_IP"));
        src.kind.push("Backscatter".into());
        src.port.push(port);
        src.in_flow_count = Some(qf);
        src.in_packet_count = Some(qp);
        src.in_byte_count = Some(qb);
        src.out_flow_count = Some(rf);
        src.out_packet_count = Some(rp);
        src.out_byte_count = Some(rb);
        idea.source.push(src);
        let mut tgt = Endpoint::with_proto(proto).ip(a.ip("DST_IP"));
        tgt.in_flow_count = Some(rf);
        tgt.in_packet_count = Some(rp);
        tgt.in_byte_count = Some(rb);
        idea.target.push(tgt);
        Ok(Some(idea))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UniRecAlert;
    use unirec::{RecordBuilder, RecordRef, Template, UrIp, UrTime};

    #[test]
    fn dns_amplification_alert() {
        let t = Template::parse("ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint32 REQ_FLOWS,uint32 REQ_PACKETS,uint64 REQ_BYTES,uint32 RSP_FLOWS,uint32 RSP_PACKETS,uint64 RSP_BYTES,time TIME_FIRST,time TIME_LAST,uint32 EVENT_ID").unwrap();
        let mut b = RecordBuilder::new(&t);
        let f = |n| t.find(n).unwrap();
        b.set_ip(f("SRC_IP"), UrIp::parse("192.0.2.53").unwrap())
            .unwrap();
        b.set_ip(f("DST_IP"), UrIp::parse("203.0.113.10").unwrap())
            .unwrap();
        b.set_u16(f("SRC_PORT"), 53).unwrap();
        b.set_u32(f("REQ_FLOWS"), 10).unwrap();
        b.set_u32(f("REQ_PACKETS"), 30).unwrap();
        b.set_u64(f("REQ_BYTES"), 1800).unwrap();
        b.set_u32(f("RSP_FLOWS"), 10).unwrap();
        b.set_u32(f("RSP_PACKETS"), 30).unwrap();
        b.set_u64(f("RSP_BYTES"), 24000).unwrap();
        b.set_time(f("TIME_FIRST"), UrTime::from_secs_millis(1_714_557_600, 0))
            .unwrap();
        b.set_time(f("TIME_LAST"), UrTime::from_secs_millis(1_714_557_661, 0))
            .unwrap();
        b.set_u32(f("EVENT_ID"), 1).unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let rec = RecordRef::new_checked(&t, &buf).unwrap();
        let idea = AmplificationReporter
            .convert(&Alert::UniRec(UniRecAlert { rec }))
            .unwrap()
            .unwrap();
        insta::assert_json_snapshot!(idea.to_json(), { ".ID" => "[ID]", ".CreateTime" => "[CreateTime]" });
    }
}
