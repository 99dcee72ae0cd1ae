//! vportscan2idea: `aggregated_portscan` JSON events to IDEA.

use super::json::{field, ip, time};
use crate::{aggr_win, Alert, Endpoint, Idea, InputKind, Reporter};
use serde_json::Value;

pub struct VportscanReporter {
    /// The aggregation window (s), for Node.AggrWin.
    pub aggr_win: u64,
}

impl Reporter for VportscanReporter {
    const MODULE_NAME: &'static str = "vportscan";

    fn input(&self) -> InputKind {
        InputKind::Json("aggregated_portscan")
    }

    fn convert(&mut self, alert: &Alert<'_>) -> Result<Option<Idea>, String> {
        let Alert::Json(ev) = alert else {
            return Ok(None);
        };
        let src = ip(field(ev, "src_ip")?
            .as_str()
            .ok_or("`src_ip` is not a string")?)?;
        let dst = field(ev, "dst_ips")?
            .as_object()
            .ok_or("`dst_ips` is not an object")?;
        let proto = ev
            .get("protocol")
            .and_then(Value::as_u64)
            .and_then(|p| u8::try_from(p).ok())
            .and_then(crate::proto_name)
            .unwrap_or("tcp");
        let (first, last) = (time(ev, "ts_first")?, time(ev, "ts_last")?);
        let mut idea = Idea::new(
            last,
            "Recon.Scanning",
            "vportscan_detector",
            &["Flow", "Statistical"],
        );
        idea.set_window(first, last);
        idea.description = Some(
            if dst.len() > 1 {
                "Block portscan using TCP SYN"
            } else {
                "Vertical scan using TCP SYN"
            }
            .to_string(),
        );
        idea.source.push(Endpoint::with_proto(&[proto]).ip(src));
        let mut target = Endpoint::with_proto(&[proto]);
        let mut flows = 0u64;
        for (addr, n) in dst {
            target.add_ur_ip(ip(addr)?);
            flows += n.as_u64().unwrap_or(0);
        }
        idea.target.push(target);
        idea.flow_count = Some(flows);
        idea.node[0].aggr_win = Some(aggr_win(self.aggr_win));
        Ok(Some(idea))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(ev: Value) -> Result<Option<Idea>, String> {
        VportscanReporter { aggr_win: 300 }.convert(&Alert::Json(&ev))
    }

    #[test]
    fn vertical_scan() {
        let idea = convert(
            json!({"src_ip": "192.0.2.7", "dst_ips": {"198.51.100.20": 50},
            "ts_first": 1714557611.25, "ts_last": 1714557898.0, "protocol": 6}),
        )
        .unwrap()
        .unwrap();
        insta::assert_json_snapshot!(idea.to_json(), { ".ID" => "[ID]", ".CreateTime" => "[CreateTime]" });
    }

    #[test]
    fn block_scan_and_bad_events() {
        let idea = convert(json!({"src_ip": "2001:db8::7",
            "dst_ips": {"2001:db8::20": 50, "2001:db8::21": 100},
            "ts_first": 1.0, "ts_last": 2.0, "protocol": 6}))
        .unwrap()
        .unwrap();
        assert_eq!(
            idea.description.as_deref(),
            Some("Block portscan using TCP SYN")
        );
        assert_eq!(idea.flow_count, Some(150));
        assert_eq!(idea.target[0].ip6, vec!["2001:db8::20", "2001:db8::21"]);
        assert!(convert(json!({"dst_ips": {}}))
            .unwrap_err()
            .contains("src_ip"));
        assert!(
            convert(json!({"src_ip": "x", "dst_ips": {}, "ts_first": 1, "ts_last": 1}))
                .unwrap_err()
                .contains("not an IP")
        );
    }
}
