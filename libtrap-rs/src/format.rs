//! Data formats and the hello that announces them.
//!
//! Hello (8 bytes + spec): `u8 type`, 3 zero bytes, `u32` big-endian spec
//! length, then the spec without a NUL. An output sends it to every client
//! that connects and writes it at the start of every file.

/// The data format of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataFormat {
    /// Raw bytes, no spec.
    Raw,
    /// UniRec records; the spec is a template string.
    UniRec(String),
    /// JSON documents; the spec is a free label (may be empty).
    Json(String),
}

/// Size of the fixed part of a hello.
pub const HELLO_SIZE: usize = 8;

/// The largest spec a hello may announce; longer means the bytes are not a hello.
pub const MAX_SPEC_LEN: usize = 1 << 20;

impl DataFormat {
    pub fn type_code(&self) -> u8 {
        match self {
            DataFormat::Raw => 1,
            DataFormat::UniRec(_) => 2,
            DataFormat::Json(_) => 3,
        }
    }

    pub fn spec(&self) -> &str {
        match self {
            DataFormat::Raw => "",
            DataFormat::UniRec(s) | DataFormat::Json(s) => s,
        }
    }

    /// The hello bytes announcing this format.
    pub fn hello(&self) -> Vec<u8> {
        let spec = self.spec().as_bytes();
        let mut out = Vec::with_capacity(HELLO_SIZE + spec.len());
        out.extend_from_slice(&[self.type_code(), 0, 0, 0]);
        out.extend_from_slice(&(spec.len() as u32).to_be_bytes());
        out.extend_from_slice(spec);
        out
    }

    /// A hello of type 0: "no format yet" (the client is then disconnected).
    pub fn unknown_hello() -> [u8; HELLO_SIZE] {
        [0; HELLO_SIZE]
    }
}

/// The fixed part of a received hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloHeader {
    pub type_code: u8,
    pub spec_len: usize,
}

impl HelloHeader {
    /// Parses the 8 fixed bytes; `Err` explains why they cannot be a hello.
    pub fn parse(b: &[u8; HELLO_SIZE]) -> Result<HelloHeader, String> {
        let type_code = b[0];
        if type_code > 3 {
            return Err(format!(
                "data type byte is {type_code} (0-3 expected): not TRAP data"
            ));
        }
        let spec_len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if spec_len > MAX_SPEC_LEN {
            return Err(format!("format spec of {spec_len} bytes: not TRAP data"));
        }
        Ok(HelloHeader {
            type_code,
            spec_len,
        })
    }

    /// Combines the header with its spec bytes; `None` for type 0 ("unknown").
    pub fn into_format(self, spec: &[u8]) -> Result<Option<DataFormat>, String> {
        let spec = String::from_utf8_lossy(spec).into_owned();
        Ok(match self.type_code {
            0 => None,
            1 => Some(DataFormat::Raw),
            2 if spec.is_empty() => return Err("UniRec format with an empty spec".into()),
            2 => Some(DataFormat::UniRec(spec)),
            _ => Some(DataFormat::Json(spec)),
        })
    }
}

/// What an input accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Required {
    Raw,
    /// Any UniRec template (logger, traffic_repeater): always reported as a
    /// format change so the module builds its template from the sender's.
    AnyUniRec,
    /// A UniRec template that must contain these `type NAME` fields.
    UniRec(String),
    /// A UniRec template with all the fields of one of these (a detector
    /// that reads flows or session_probe's session features).
    UniRecAnyOf(Vec<String>),
    /// JSON; `None` or `""` accept any label.
    Json(Option<String>),
}

/// Result of comparing a sender's format with what an input requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Negotiated {
    /// Exactly what was asked for.
    Same,
    /// Acceptable, but the sender's format has more (or any) fields: the
    /// receiver must use the sender's template.
    Subset,
    Mismatch(String),
}

fn pairs(spec: &str) -> impl Iterator<Item = (&str, &str)> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| item.split_once(' ').unwrap_or((item, "")))
}

/// libtrap's textual comparison (`trap_ctx_cmp_data_fmt`).
pub fn negotiate(required: &Required, got: &DataFormat) -> Negotiated {
    match (required, got) {
        (Required::Raw, DataFormat::Raw) => Negotiated::Same,
        (Required::AnyUniRec, DataFormat::UniRec(_)) => Negotiated::Subset,
        (Required::UniRec(want), DataFormat::UniRec(have)) => {
            let have_pairs: Vec<_> = pairs(have).collect();
            let missing: Vec<String> = pairs(want)
                .filter(|p| !have_pairs.contains(p))
                .map(|(t, n)| format!("{t} {n}"))
                .collect();
            if !missing.is_empty() {
                Negotiated::Mismatch(format!(
                    "the sender's template lacks {} (it sends `{have}`)",
                    missing.join(", ")
                ))
            } else if have.len() > want.len() {
                Negotiated::Subset
            } else {
                Negotiated::Same
            }
        }
        (Required::UniRecAnyOf(alts), DataFormat::UniRec(_)) => {
            let mut first = None;
            for want in alts {
                match negotiate(&Required::UniRec(want.clone()), got) {
                    Negotiated::Mismatch(m) => {
                        first.get_or_insert(m);
                    }
                    ok => return ok,
                }
            }
            Negotiated::Mismatch(match (first, alts.len()) {
                (Some(m), n) if n > 1 => format!(
                    "{m}, nor the fields of the {} other templates this input reads",
                    n - 1
                ),
                (Some(m), _) => m,
                (None, _) => "this input reads no template".into(),
            })
        }
        (Required::Json(None), DataFormat::Json(_)) => Negotiated::Same,
        (Required::Json(Some(w)), DataFormat::Json(h)) if w.is_empty() || w == h => {
            Negotiated::Same
        }
        (Required::Json(Some(w)), DataFormat::Json(h)) => {
            Negotiated::Mismatch(format!("JSON label `{h}`, expected `{w}`"))
        }
        (want, have) => Negotiated::Mismatch(format!(
            "the sender sends {}, this input needs {}",
            type_name(have.type_code()),
            match want {
                Required::Raw => "RAW",
                Required::Json(_) => "JSON",
                _ => "UniRec",
            }
        )),
    }
}

fn type_name(code: u8) -> &'static str {
    match code {
        1 => "RAW",
        2 => "UniRec",
        3 => "JSON",
        _ => "an unknown format",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_bytes_match_libtrap() {
        let h = DataFormat::UniRec("uint32 A,uint32 B".into()).hello();
        let mut want = vec![2, 0, 0, 0, 0, 0, 0, 0x11];
        want.extend_from_slice(b"uint32 A,uint32 B");
        assert_eq!(h, want);
        assert_eq!(DataFormat::Raw.hello(), [1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn hello_header_rejects_garbage() {
        assert!(HelloHeader::parse(&[7, 0, 0, 0, 0, 0, 0, 1]).is_err());
        assert!(HelloHeader::parse(&[2, 0, 0, 0, 0x7f, 0, 0, 0]).is_err());
        let h = HelloHeader::parse(&[2, 0, 0, 0, 0, 0, 0, 8]).unwrap();
        assert_eq!(
            h.into_format(b"uint32 A").unwrap(),
            Some(DataFormat::UniRec("uint32 A".into()))
        );
        assert!(h.into_format(b"").is_err());
        let h = HelloHeader::parse(&[0; 8]).unwrap();
        assert_eq!(h.into_format(b"").unwrap(), None);
    }

    #[test]
    fn negotiation_matrix() {
        let u = |s: &str| DataFormat::UniRec(s.into());
        let req = |s: &str| Required::UniRec(s.into());
        assert_eq!(
            negotiate(&req("uint32 A,uint32 B"), &u("uint32 A,uint32 B")),
            Negotiated::Same
        );
        // Same fields in another order and the same length: OK without change.
        assert_eq!(
            negotiate(&req("uint32 B,uint32 A"), &u("uint32 A,uint32 B")),
            Negotiated::Same
        );
        assert_eq!(
            negotiate(&req("uint32 A"), &u("uint32 A,uint32 B")),
            Negotiated::Subset
        );
        assert!(
            matches!(negotiate(&req("uint32 A,uint32 C"), &u("uint32 A,uint32 B")), Negotiated::Mismatch(m) if m.contains("uint32 C"))
        );
        assert!(matches!(
            negotiate(&req("uint16 A"), &u("uint32 A")),
            Negotiated::Mismatch(_)
        ));
        assert_eq!(
            negotiate(&Required::AnyUniRec, &u("uint32 A")),
            Negotiated::Subset
        );
        let alts = Required::UniRecAnyOf(vec!["uint32 A".into(), "uint32 C".into()]);
        assert_eq!(negotiate(&alts, &u("uint32 C")), Negotiated::Same);
        assert_eq!(
            negotiate(&alts, &u("uint32 A,uint32 B")),
            Negotiated::Subset
        );
        assert!(
            matches!(negotiate(&alts, &u("uint32 B")), Negotiated::Mismatch(m) if m.contains("uint32 A") && m.contains("1 other"))
        );
        assert!(matches!(
            negotiate(&Required::AnyUniRec, &DataFormat::Raw),
            Negotiated::Mismatch(_)
        ));
        assert_eq!(
            negotiate(&Required::Raw, &DataFormat::Raw),
            Negotiated::Same
        );
        assert_eq!(
            negotiate(
                &Required::Json(Some(String::new())),
                &DataFormat::Json("x".into())
            ),
            Negotiated::Same
        );
        assert!(matches!(
            negotiate(
                &Required::Json(Some("y".into())),
                &DataFormat::Json("x".into())
            ),
            Negotiated::Mismatch(_)
        ));
    }
}
