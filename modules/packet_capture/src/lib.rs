//! The Traffic Snooper's packet records, shared by `packet_capture` (which
//! makes them), `packet_dedup` and `packet_store` (which read them).
//!
//! A packet record is one captured Ethernet frame: [`PACKET_SPEC`]. `TIME` is
//! the capture timestamp, `LINK` the `-L` value of the capturing module (which
//! mirror port), `WIRE_LEN` the frame's length on the wire, `CAP_LEN` the
//! bytes kept (the snaplen cuts), `PKT_HASH` the xxh64 (seed 0) of the kept
//! bytes, `PACKET` the kept bytes. No I/O here: [`pcap`] writes capture files
//! into any `Write`, [`wire`] reads frames.

pub mod pcap;
pub mod wire;

use unirec::{RecordBuilder, RecordRef, Template, UrTime};

/// The UniRec template of a packet record.
pub const PACKET_SPEC: &str =
    "time TIME,uint16 LINK,uint32 WIRE_LEN,uint32 CAP_LEN,uint64 PKT_HASH,bytes PACKET";

/// The hash of a frame's kept bytes, as `PKT_HASH` carries it.
pub fn frame_hash(frame: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(frame, 0)
}

/// One packet, as a record carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub time: UrTime,
    pub link: u16,
    pub wire_len: u32,
    pub hash: u64,
    pub data: &'a [u8],
}

impl Packet<'_> {
    /// The capture time as (seconds, microseconds), as pcap files keep it.
    pub fn micros(&self) -> (u32, u32) {
        split_micros(self.time)
    }
}

/// (seconds, microseconds) of a UniRec time, the microseconds rounded to the
/// nearest (a time made from microseconds gives them back exactly).
pub fn split_micros(t: UrTime) -> (u32, u32) {
    let us = (u64::from(t.fraction()) * 1_000_000 + (1 << 31)) >> 32;
    if us >= 1_000_000 {
        (t.secs().saturating_add(1), 0)
    } else {
        (t.secs(), us as u32)
    }
}

/// Why a record is not a packet record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("the input template lacks `{0}` (packet records are {PACKET_SPEC})")]
    MissingField(&'static str),
    #[error("bad packet record: {0}")]
    Record(String),
}

/// The packet fields of a template, found once per template.
#[derive(Clone, Copy, Debug)]
pub struct PacketFields {
    time: usize,
    link: usize,
    wire_len: usize,
    hash: usize,
    packet: usize,
}

impl PacketFields {
    /// Finds the fields in `tmpl` (other fields may be there too).
    pub fn resolve(tmpl: &Template) -> Result<PacketFields, PacketError> {
        use unirec::FieldType as T;
        let find = |name: &'static str, ty: T| {
            tmpl.find_typed(name, ty)
                .ok_or(PacketError::MissingField(name))
        };
        Ok(PacketFields {
            time: find("TIME", T::Scalar(unirec::Scalar::Time))?,
            link: find("LINK", T::Scalar(unirec::Scalar::U16))?,
            wire_len: find("WIRE_LEN", T::Scalar(unirec::Scalar::U32))?,
            hash: find("PKT_HASH", T::Scalar(unirec::Scalar::U64))?,
            packet: find("PACKET", T::Bytes)?,
        })
    }

    /// The packet in record `data` of template `tmpl` (the one resolved).
    pub fn read<'a>(&self, tmpl: &'a Template, data: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        let r =
            RecordRef::new_checked(tmpl, data).map_err(|e| PacketError::Record(e.to_string()))?;
        let bad = || PacketError::Record("a field cannot be read".into());
        Ok(Packet {
            time: r.get_time(self.time).ok_or_else(bad)?,
            link: r.get_u16(self.link).ok_or_else(bad)?,
            wire_len: r.get_u32(self.wire_len).ok_or_else(bad)?,
            hash: r.get_u64(self.hash).ok_or_else(bad)?,
            data: r.get_bytes(self.packet).ok_or_else(bad)?,
        })
    }
}

/// Builds packet records of [`PACKET_SPEC`], reusing its buffers.
pub struct PacketEncoder {
    tmpl: Template,
    fields: PacketFields,
    cap_len: usize,
    bufs: unirec::RecordBuffers,
    out: Vec<u8>,
}

impl Default for PacketEncoder {
    fn default() -> Self {
        PacketEncoder::new()
    }
}

impl PacketEncoder {
    pub fn new() -> PacketEncoder {
        let tmpl = Template::parse(PACKET_SPEC).expect("PACKET_SPEC parses");
        let fields = PacketFields::resolve(&tmpl).expect("PACKET_SPEC has the packet fields");
        let cap_len = tmpl.find("CAP_LEN").expect("PACKET_SPEC has CAP_LEN");
        PacketEncoder {
            tmpl,
            fields,
            cap_len,
            bufs: unirec::RecordBuffers::default(),
            out: Vec::with_capacity(2048),
        }
    }

    /// The template (in UniRec's canonical field order).
    pub fn template(&self) -> &Template {
        &self.tmpl
    }

    /// The record of one packet (its hash computed here); valid until the next call.
    /// A frame longer than a UniRec record can hold (65535 bytes with the
    /// fixed fields) is an error.
    pub fn encode(
        &mut self,
        time: UrTime,
        link: u16,
        wire_len: u32,
        frame: &[u8],
    ) -> Result<&[u8], PacketError> {
        let f = self.fields;
        // The builder's buffers are kept between packets: no allocation per packet.
        let mut b = RecordBuilder::with_buffers(&self.tmpl, std::mem::take(&mut self.bufs));
        let err = |e: unirec::RecordError| PacketError::Record(e.to_string());
        self.out.clear();
        let built = (|| {
            b.set_time(f.time, time)?;
            b.set_u16(f.link, link)?;
            b.set_u32(f.wire_len, wire_len)?;
            b.set_u32(self.cap_len, frame.len() as u32)?;
            b.set_u64(f.hash, frame_hash(frame))?;
            b.set_var(f.packet, frame)?;
            b.finish(&mut self.out)
        })();
        self.bufs = b.into_buffers();
        built.map_err(err)?;
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut enc = PacketEncoder::new();
        let t = UrTime::from_secs_micros(1_700_000_000, 123_456);
        let frame = wire::tests::v4_frame(&[], 64, 1);
        let rec = enc.encode(t, 3, 1514, &frame).unwrap().to_vec();
        let tmpl = Template::parse(PACKET_SPEC).unwrap();
        let f = PacketFields::resolve(&tmpl).unwrap();
        let p = f.read(&tmpl, &rec).unwrap();
        assert_eq!(p.time, t);
        assert_eq!(p.micros(), (1_700_000_000, 123_456));
        assert_eq!((p.link, p.wire_len, p.data), (3, 1514, &frame[..]));
        assert_eq!(p.hash, frame_hash(&frame));
        // Cut records are errors, not panics.
        for n in 0..rec.len() {
            let _ = f.read(&tmpl, &rec[..n]);
        }
    }

    #[test]
    fn microseconds_survive_unirec_time() {
        for us in [0, 1, 499_999, 500_000, 999_999] {
            assert_eq!(split_micros(UrTime::from_secs_micros(7, us)), (7, us));
        }
        assert_eq!(split_micros(UrTime((7 << 32) | 0xFFFF_FFFF)), (8, 0));
    }

    #[test]
    fn a_template_without_packet_fields_is_named() {
        let t = Template::parse("time TIME,bytes PACKET").unwrap();
        assert_eq!(
            PacketFields::resolve(&t).unwrap_err(),
            PacketError::MissingField("LINK")
        );
    }

    #[test]
    fn a_frame_too_long_for_a_record_is_an_error() {
        let mut enc = PacketEncoder::new();
        assert!(enc.encode(UrTime(0), 0, 70_000, &vec![0; 70_000]).is_err());
    }
}
