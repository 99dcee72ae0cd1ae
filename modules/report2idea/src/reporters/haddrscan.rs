//! haddrscan2idea: horizontal scans (aggregated or straight from the
//! detector) to IDEA.

use crate::{aggr_win, is_unset, Alert, Endpoint, Idea, IdeaTime, InputKind, Reporter};

pub struct HaddrscanReporter {
    /// The aggregation window (s), for Node.AggrWin.
    pub aggr_win: u64,
}

impl Reporter for HaddrscanReporter {
    const MODULE_NAME: &'static str = "haddrscan";

    /// DST_IP4..15 are read when present (aggregator output).
    fn input(&self) -> InputKind {
        InputKind::UniRec(
            "ipaddr SRC_IP,uint32 ADDR_CNT,time TIME_FIRST,time TIME_LAST,uint16 DST_PORT,\
uint8 EVENT_TYPE,uint8 PROTOCOL,ipaddr DST_IP0,ipaddr DST_IP1,ipaddr DST_IP2,ipaddr DST_IP3",
        )
    }

    fn convert(&mut self, alert: &Alert<'_>) -> Result<Option<Idea>, String> {
        let Alert::UniRec(a) = alert else {
            return Ok(None);
        };
        let last = IdeaTime::from_ur(a.time("TIME_LAST"));
        let mut idea = Idea::new(
            last,
            "Recon.Scanning",
            "haddrscan_detector",
            &["Flow", "Statistical"],
        );
        idea.set_window(IdeaTime::from_ur(a.time("TIME_FIRST")), last);
        idea.description = Some("Horizontal scan using TCP SYN".into());
        idea.flow_count = Some(u64::from(a.u32("ADDR_CNT")));
        idea.source
            .push(Endpoint::with_proto(&["tcp"]).ip(a.ip("SRC_IP")));
        let mut t = Endpoint::with_proto(&["tcp"]);
        t.port.push(a.u16("DST_PORT"));
        t.imprecise = Some(true);
        for n in 0..16 {
            let ip = a.ip(&format!("DST_IP{n}"));
            if !is_unset(ip) {
                t.add_ur_ip(ip);
            }
        }
        idea.target.push(t);
        idea.node[0].aggr_win = Some(aggr_win(self.aggr_win));
        Ok(Some(idea))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UniRecAlert;
    use unirec::{RecordBuilder, RecordRef, Template, UrIp, UrTime};

    #[test]
    fn horizontal_scan() {
        let t = Template::parse("uint8 EVENT_TYPE,time TIME_FIRST,time TIME_LAST,ipaddr SRC_IP,uint16 DST_PORT,uint8 PROTOCOL,uint32 ADDR_CNT,uint32 ADDR_THRSD,ipaddr DST_IP0,ipaddr DST_IP1,ipaddr DST_IP2,ipaddr DST_IP3").unwrap();
        let mut b = RecordBuilder::new(&t);
        let f = |n| t.find(n).unwrap();
        b.set_ip(f("SRC_IP"), UrIp::parse("192.0.2.7").unwrap())
            .unwrap();
        b.set_u16(f("DST_PORT"), 445).unwrap();
        b.set_u32(f("ADDR_CNT"), 50).unwrap();
        b.set_ip(f("DST_IP0"), UrIp::parse("10.0.0.1").unwrap())
            .unwrap();
        b.set_ip(f("DST_IP1"), UrIp::parse("10.0.0.2").unwrap())
            .unwrap();
        for n in ["DST_IP2", "DST_IP3"] {
            b.set_ip(f(n), UrIp::parse("0.0.0.0").unwrap()).unwrap();
        }
        b.set_time(f("TIME_FIRST"), UrTime::from_secs_millis(1_714_557_600, 0))
            .unwrap();
        b.set_time(f("TIME_LAST"), UrTime::from_secs_millis(1_714_557_660, 0))
            .unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let rec = RecordRef::new_checked(&t, &buf).unwrap();
        let idea = HaddrscanReporter { aggr_win: 600 }
            .convert(&Alert::UniRec(UniRecAlert { rec }))
            .unwrap()
            .unwrap();
        insta::assert_json_snapshot!(idea.to_json(), { ".ID" => "[ID]", ".CreateTime" => "[CreateTime]" });
    }
}
