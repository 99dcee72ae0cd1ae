//! haddrscan_aggregator — merges the alerts of `haddrscan_detector` per
//! (scanner, port) over a time window into one record with up to 16 target
//! addresses (NEMEA's haddrscan_aggregator.py).
//!
//! The first alert of a key fills DST_IP0..3, later ones DST_IP4..7 and
//! DST_IP8..11, then keep overwriting DST_IP12..15. ADDR_CNT is summed,
//! TIME_FIRST/TIME_LAST widen.
#![forbid(unsafe_code)]

use detector_common::{field, DetectError, WindowAggregator};
use libtrap::DataFormat;
use std::collections::HashMap;
use unirec::{RecordBuilder, RecordError, RecordRef, Template, UrIp, UrTime};

/// The detector's alert template.
pub const INPUT_SPEC: &str = "uint8 EVENT_TYPE,time TIME_FIRST,time TIME_LAST,ipaddr SRC_IP,\
uint16 DST_PORT,uint8 PROTOCOL,uint32 ADDR_CNT,uint32 ADDR_THRSD,ipaddr DST_IP0,ipaddr DST_IP1,\
ipaddr DST_IP2,ipaddr DST_IP3";

/// The output template (as the Python aggregator's).
pub const OUTPUT_SPEC: &str = "ipaddr SRC_IP,uint32 ADDR_CNT,uint32 ADDR_THRSD,time TIME_FIRST,\
time TIME_LAST,uint16 DST_PORT,uint8 EVENT_TYPE,uint8 PROTOCOL,ipaddr DST_IP0,ipaddr DST_IP1,\
ipaddr DST_IP2,ipaddr DST_IP3,ipaddr DST_IP4,ipaddr DST_IP5,ipaddr DST_IP6,ipaddr DST_IP7,\
ipaddr DST_IP8,ipaddr DST_IP9,ipaddr DST_IP10,ipaddr DST_IP11,ipaddr DST_IP12,ipaddr DST_IP13,\
ipaddr DST_IP14,ipaddr DST_IP15";

/// One (detector or aggregated) alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    pub src_ip: UrIp,
    pub dst_port: u16,
    pub event_type: u8,
    pub protocol: u8,
    pub addr_cnt: u32,
    pub addr_thrsd: u32,
    pub time_first: UrTime,
    pub time_last: UrTime,
    pub dst: [UrIp; 16],
    alerts: u32,
}

fn zero() -> UrIp {
    UrIp::from_v4(std::net::Ipv4Addr::UNSPECIFIED)
}

impl Scan {
    /// Reads a detector alert (a record of a template with the fields of
    /// [`INPUT_SPEC`]).
    pub fn from_record(rec: &RecordRef<'_>) -> Scan {
        let t = rec.template();
        let f = |n: &str| t.find(n).unwrap_or(usize::MAX);
        let mut dst = [zero(); 16];
        for (n, d) in dst.iter_mut().enumerate().take(4) {
            *d = rec.get_ip(f(&format!("DST_IP{n}"))).unwrap_or_else(zero);
        }
        Scan {
            src_ip: rec.get_ip(f("SRC_IP")).unwrap_or_default(),
            dst_port: rec.get_u16(f("DST_PORT")).unwrap_or(0),
            event_type: rec.get_u8(f("EVENT_TYPE")).unwrap_or(0),
            protocol: rec.get_u8(f("PROTOCOL")).unwrap_or(0),
            addr_cnt: rec.get_u32(f("ADDR_CNT")).unwrap_or(0),
            addr_thrsd: rec.get_u32(f("ADDR_THRSD")).unwrap_or(0),
            time_first: rec.get_time(f("TIME_FIRST")).unwrap_or_default(),
            time_last: rec.get_time(f("TIME_LAST")).unwrap_or_default(),
            dst,
            alerts: 1,
        }
    }

    /// Writes the aggregated record into a builder of [`OUTPUT_SPEC`].
    pub fn encode(&self, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let t = b.template();
        let i = |n: &str| field(t, n);
        b.set_ip(i("SRC_IP"), self.src_ip)?;
        b.set_u32(i("ADDR_CNT"), self.addr_cnt)?;
        b.set_u32(i("ADDR_THRSD"), self.addr_thrsd)?;
        b.set_time(i("TIME_FIRST"), self.time_first)?;
        b.set_time(i("TIME_LAST"), self.time_last)?;
        b.set_u16(i("DST_PORT"), self.dst_port)?;
        b.set_u8(i("EVENT_TYPE"), self.event_type)?;
        b.set_u8(i("PROTOCOL"), self.protocol)?;
        for (n, ip) in self.dst.iter().enumerate() {
            b.set_ip(i(&format!("DST_IP{n}")), *ip)?;
        }
        Ok(())
    }
}

/// The aggregation table of one window.
#[derive(Debug, Default)]
pub struct Aggregator {
    table: HashMap<(UrIp, u16), Scan>,
    order: Vec<(UrIp, u16)>,
}

impl Aggregator {
    pub fn add(&mut self, s: Scan) {
        let key = (s.src_ip, s.dst_port);
        match self.table.get_mut(&key) {
            None => {
                self.order.push(key);
                self.table.insert(key, s);
            }
            Some(a) => {
                let slot = (a.alerts.min(3) * 4) as usize;
                a.dst[slot..slot + 4].copy_from_slice(&s.dst[..4]);
                a.alerts += 1;
                a.addr_cnt = a.addr_cnt.saturating_add(s.addr_cnt);
                a.time_first = a.time_first.min(s.time_first);
                a.time_last = a.time_last.max(s.time_last);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Everything aggregated, in order of first alert; the table is emptied.
    pub fn flush(&mut self) -> Vec<Scan> {
        let mut out = Vec::new();
        for k in self.order.drain(..) {
            if let Some(s) = self.table.remove(&k) {
                out.push(s);
            }
        }
        out
    }
}

/// The output template.
pub fn output_template() -> Result<Template, unirec::TemplateError> {
    Template::parse(OUTPUT_SPEC)
}

impl WindowAggregator for Aggregator {
    fn input_spec(&self) -> &'static str {
        INPUT_SPEC
    }
    fn output_format(&self) -> Result<DataFormat, DetectError> {
        Ok(DataFormat::UniRec(output_template()?.spec().to_string()))
    }
    fn add_record(&mut self, rec: &RecordRef<'_>) {
        self.add(Scan::from_record(rec));
    }
    fn end_window(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), DetectError> {
        if self.is_empty() {
            return Ok(());
        }
        let t = output_template()?;
        let mut b = RecordBuilder::new(&t);
        for s in self.flush() {
            b.clear();
            s.encode(&mut b)?;
            let mut rec = Vec::with_capacity(b.size());
            b.finish(&mut rec)?;
            out.push(rec);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(src: &str, n: u8, t: u32) -> Scan {
        let mut dst = [zero(); 16];
        for (k, d) in dst.iter_mut().enumerate().take(4) {
            *d = UrIp::parse(&format!("10.0.{n}.{k}")).unwrap();
        }
        Scan {
            src_ip: UrIp::parse(src).unwrap(),
            dst_port: 445,
            event_type: 1,
            protocol: 6,
            addr_cnt: 50,
            addr_thrsd: 50,
            time_first: UrTime::from_secs_millis(t, 0),
            time_last: UrTime::from_secs_millis(t + 10, 0),
            dst,
            alerts: 1,
        }
    }

    #[test]
    fn merges_per_key_and_fills_slots() {
        let mut a = Aggregator::default();
        for n in 0..5 {
            a.add(scan("192.0.2.7", n, 100 - u32::from(n)));
        }
        a.add(scan("192.0.2.8", 9, 100));
        let out = a.flush();
        assert!(a.is_empty());
        assert_eq!(out.len(), 2);
        let s = &out[0];
        assert_eq!(s.addr_cnt, 250);
        assert_eq!(s.time_first.secs(), 96);
        assert_eq!(s.time_last.secs(), 110);
        assert_eq!(s.dst[4].to_string(), "10.0.1.0");
        assert_eq!(s.dst[8].to_string(), "10.0.2.0");
        // The 4th and 5th alerts overwrite DST_IP12..15.
        assert_eq!(s.dst[12].to_string(), "10.0.4.0");
        assert_eq!(out[1].dst[4].to_string(), "0.0.0.0");
    }

    #[test]
    fn round_trip_through_records() {
        let tin = Template::parse(INPUT_SPEC).unwrap();
        let mut b = RecordBuilder::new(&tin);
        let f = |n| tin.find(n).unwrap();
        b.set_ip(f("SRC_IP"), UrIp::parse("192.0.2.7").unwrap())
            .unwrap();
        b.set_u32(f("ADDR_CNT"), 50).unwrap();
        b.set_ip(f("DST_IP2"), UrIp::parse("10.0.0.2").unwrap())
            .unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let s = Scan::from_record(&RecordRef::new_checked(&tin, &buf).unwrap());
        assert_eq!(s.dst[2].to_string(), "10.0.0.2");
        let tout = output_template().unwrap();
        let mut b = RecordBuilder::new(&tout);
        s.encode(&mut b).unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let r = RecordRef::new_checked(&tout, &buf).unwrap();
        assert_eq!(r.get_u32(tout.find("ADDR_CNT").unwrap()), Some(50));
    }
}
