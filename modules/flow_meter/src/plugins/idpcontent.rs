//! `idpcontent`: the first bytes of the flow's payload in each direction.
//!
//! Exports `bytes IDP_CONTENT, IDP_CONTENT_REV`: at most the first 100
//! bytes of the first packet with a (captured) payload in the source and
//! the reverse direction. As in ipfixprobe, every flow gets the extension
//! (so every flow is sent, with empty fields where nothing was seen).

use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;

/// Bytes kept per direction.
const SIZE: usize = 100;

/// The plugin (no options).
pub struct IdpContent;

#[derive(Clone, Copy)]
struct Content {
    seen: bool,
    len: u8,
    data: [u8; SIZE],
}

#[derive(Clone, Copy)]
struct IdpContentExt([Content; 2]);

impl Default for IdpContentExt {
    fn default() -> Self {
        IdpContentExt(
            [Content {
                seen: false,
                len: 0,
                data: [0; SIZE],
            }; 2],
        )
    }
}

impl IdpContentExt {
    fn update(&mut self, pkt: &Packet) {
        let c = &mut self.0[usize::from(!pkt.source_pkt)];
        let payload = pkt.payload();
        if c.seen || payload.is_empty() {
            return;
        }
        let n = payload.len().min(SIZE);
        if let (Some(dst), Some(src)) = (c.data.get_mut(..n), payload.get(..n)) {
            dst.copy_from_slice(src);
        }
        c.len = n as u8;
        c.seen = true;
    }
}

impl Extension for IdpContentExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        for (i, c) in self.0.iter().enumerate() {
            out.put(
                i,
                FieldValue::Bytes(&c.data[..usize::from(c.len).min(SIZE)]),
            );
        }
    }
}

impl IdpContent {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(IdpContent))
    }
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new(
        "IDP_CONTENT",
        ty::BYTES,
        Some(Ie {
            pen: PEN_CESNET,
            id: 850,
        }),
    ),
    FieldDef::new(
        "IDP_CONTENT_REV",
        ty::BYTES,
        Some(Ie {
            pen: PEN_CESNET,
            id: 851,
        }),
    ),
];

impl ProcessPlugin for IdpContent {
    fn name(&self) -> &'static str {
        "idpcontent"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::POST_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        let mut e = IdpContentExt::default();
        e.update(pkt);
        f.exts.add(e);
        Verdict::CONTINUE
    }
    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if let Some(e) = f.exts.get_mut::<IdpContentExt>() {
            e.update(pkt);
        }
        Verdict::CONTINUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(src: bool, payload: &[u8]) -> Packet {
        Packet {
            source_pkt: src,
            payload_len: payload.len() as u16,
            payload: payload.to_vec(),
            ..Packet::default()
        }
    }

    #[test]
    fn first_non_empty_payload_per_direction() {
        let mut e = IdpContentExt::default();
        e.update(&pkt(true, b""));
        e.update(&pkt(false, b"HTTP/1.1 200 OK"));
        e.update(&pkt(true, &[7u8; 150]));
        e.update(&pkt(true, b"later"));
        e.update(&pkt(false, b"later"));
        assert_eq!(usize::from(e.0[0].len), SIZE);
        assert_eq!(e.0[0].data, [7u8; SIZE]);
        assert_eq!(&e.0[1].data[..usize::from(e.0[1].len)], b"HTTP/1.1 200 OK");
    }
}
