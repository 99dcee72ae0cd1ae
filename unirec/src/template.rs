//! Templates: the ordered set of fields a record holds, and where each one lives.
//!
//! UniRec lays fields out in a canonical order, whatever order a spec names them
//! in: by [`FieldType::sort_key`] descending, ties by name compared bytewise. Fixed
//! fields are packed without padding; each variable-length field has a 4-byte
//! entry (`u16` offset from the end of the fixed part, `u16` length) in the fixed
//! part, and its data follows the fixed part.

use crate::types::FieldType;
use std::fmt;

/// One field of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    name: Box<str>,
    ty: FieldType,
    /// Offset of the value (fixed field) or of the offset/length entry (variable
    /// field) from the start of the record.
    offset: usize,
}

impl Field {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn ty(&self) -> FieldType {
        self.ty
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// Why a spec could not become a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("UniRec field `{0}` has no type and name (expected `TYPE NAME`)")]
    Malformed(String),
    #[error("unknown UniRec type `{ty}` for field `{name}`")]
    UnknownType { ty: String, name: String },
    #[error("invalid UniRec field name `{0}` (letters, digits and `_`, starting with a letter)")]
    BadName(String),
    #[error("UniRec field `{name}` is defined both as `{first}` and as `{second}`")]
    Conflict {
        name: String,
        first: FieldType,
        second: FieldType,
    },
    #[error("UniRec template is too large: {0} bytes in the fixed part (max 65535)")]
    TooLarge(usize),
}

/// A UniRec template: fields in record order with precomputed offsets.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Template {
    fields: Vec<Field>,
    fixed_size: usize,
    first_variable: usize,
    spec: String,
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Template {
    /// Parses a spec such as `ipaddr SRC_IP,uint16 SRC_PORT,string URL`.
    ///
    /// Whitespace around types, names and commas is tolerated and the order is
    /// free, as for `ur_define_set_of_fields`. A field named twice with the same
    /// type counts once; with two types it is an error.
    pub fn parse(spec: &str) -> Result<Template, TemplateError> {
        let mut fields = Vec::new();
        for item in spec.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let mut words = item.split_whitespace();
            let (ty, name) = match (words.next(), words.next(), words.next()) {
                (Some(t), Some(n), None) => (t, n),
                // `uint16 *NAME` is accepted by the C macros; be as lenient.
                _ => return Err(TemplateError::Malformed(item.to_string())),
            };
            let (ty, name) = match name.strip_prefix('*') {
                Some(rest) if !ty.ends_with('*') => (format!("{ty}*"), rest),
                _ => (ty.to_string(), name),
            };
            let field_type =
                FieldType::from_name(&ty).ok_or_else(|| TemplateError::UnknownType {
                    ty: ty.clone(),
                    name: name.to_string(),
                })?;
            fields.push((name.to_string(), field_type));
        }
        Template::from_fields(fields)
    }

    /// Builds a template from `(name, type)` pairs in any order.
    pub fn from_fields<N: AsRef<str>>(
        fields: impl IntoIterator<Item = (N, FieldType)>,
    ) -> Result<Template, TemplateError> {
        let mut list: Vec<(Box<str>, FieldType)> = Vec::new();
        for (name, ty) in fields {
            let name = name.as_ref();
            if !valid_name(name) {
                return Err(TemplateError::BadName(name.to_string()));
            }
            match list.iter().find(|(n, _)| &**n == name) {
                Some((_, t)) if *t == ty => continue,
                Some((_, t)) => {
                    return Err(TemplateError::Conflict {
                        name: name.to_string(),
                        first: *t,
                        second: ty,
                    })
                }
                None => list.push((name.into(), ty)),
            }
        }
        list.sort_by(|(an, at), (bn, bt)| {
            bt.sort_key()
                .cmp(&at.sort_key())
                .then_with(|| an.as_bytes().cmp(bn.as_bytes()))
        });
        let mut offset = 0;
        let mut out = Vec::with_capacity(list.len());
        let mut spec = String::new();
        for (name, ty) in list {
            if !spec.is_empty() {
                spec.push(',');
            }
            spec.push_str(&format!("{ty} {name}"));
            out.push(Field { name, ty, offset });
            offset += ty.fixed_size();
        }
        if offset > u16::MAX as usize {
            return Err(TemplateError::TooLarge(offset));
        }
        let first_variable = out
            .iter()
            .position(|f| f.ty.is_variable())
            .unwrap_or(out.len());
        Ok(Template {
            fields: out,
            fixed_size: offset,
            first_variable,
            spec,
        })
    }

    /// Fields in record order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The field at `index`, if any.
    pub fn field(&self, index: usize) -> Option<&Field> {
        self.fields.get(index)
    }

    /// Index of the field called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| &*f.name == name)
    }

    /// Index of the field called `name` if it has type `ty`.
    pub fn find_typed(&self, name: &str, ty: FieldType) -> Option<usize> {
        self.find(name).filter(|&i| self.fields[i].ty == ty)
    }

    /// Size of the fixed part, i.e. the smallest valid record.
    pub fn fixed_size(&self) -> usize {
        self.fixed_size
    }

    /// Index of the first variable-length field (= number of fixed fields).
    pub fn first_variable(&self) -> usize {
        self.first_variable
    }

    /// Number of variable-length fields.
    pub fn variable_count(&self) -> usize {
        self.fields.len() - self.first_variable
    }

    /// The canonical spec: `type NAME` pairs in record order joined by `,`, as
    /// libtrap sends it in the hello and compares it textually.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// logger's `-t` header: `type NAME` items in record order joined by `delimiter`.
    pub fn header(&self, delimiter: u8) -> String {
        let mut out = String::new();
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(delimiter as char);
            }
            out.push_str(&format!("{} {}", f.ty, f.name));
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_fields_like_unirec() {
        let t = Template::parse(
            "uint32 FOO, uint32 BAR, ipaddr IP, string STR, int32* ARR1, ipaddr* IPs, macaddr* MACs, uint64* ARR2, time* TIMEs",
        )
        .unwrap();
        assert_eq!(
            t.spec(),
            "ipaddr IP,uint32 BAR,uint32 FOO,string STR,int32* ARR1,macaddr* MACs,uint64* ARR2,time* TIMEs,ipaddr* IPs"
        );
        assert_eq!(t.fixed_size(), 48);
        assert_eq!(t.first_variable(), 3);
        assert_eq!(t.variable_count(), 6);
    }

    #[test]
    fn bytes_before_string_and_short_arrays_first() {
        let t = Template::parse("string TEXT,bytes STREAMBYTES").unwrap();
        assert_eq!(t.spec(), "bytes STREAMBYTES,string TEXT");
        let t = Template::parse("string S,bytes B,uint8* U8A,time* TA,macaddr* MA").unwrap();
        assert_eq!(t.spec(), "bytes B,string S,uint8* U8A,macaddr* MA,time* TA");
    }

    #[test]
    fn names_compare_bytewise() {
        let t = Template::parse("uint8 a,uint8 Z_,uint8 Z,uint8 A1,uint8 A").unwrap();
        assert_eq!(t.spec(), "uint8 A,uint8 A1,uint8 Z,uint8 Z_,uint8 a");
    }

    #[test]
    fn vector_a_offsets() {
        let t = Template::parse(
            "uint16* PORTS,string URL,uint8 PROTOCOL,uint16 DST_PORT,macaddr SRC_MAC,time TIME_FIRST,ipaddr SRC_IP",
        )
        .unwrap();
        assert_eq!(
            t.spec(),
            "ipaddr SRC_IP,time TIME_FIRST,macaddr SRC_MAC,uint16 DST_PORT,uint8 PROTOCOL,string URL,uint16* PORTS"
        );
        let offsets: Vec<_> = t.fields().iter().map(|f| f.offset()).collect();
        assert_eq!(offsets, [0, 16, 24, 30, 32, 33, 37]);
        assert_eq!(t.fixed_size(), 41);
    }

    #[test]
    fn whitespace_duplicates_and_pointer_form() {
        let t = Template::parse("  uint32   A ,uint32 A,, uint16 *P ").unwrap();
        assert_eq!(t.spec(), "uint32 A,uint16* P");
        assert_eq!(Template::parse("").unwrap().len(), 0);
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(matches!(
            Template::parse("uint32 A,uint16 A"),
            Err(TemplateError::Conflict { .. })
        ));
        assert!(matches!(
            Template::parse("uint33 A"),
            Err(TemplateError::UnknownType { .. })
        ));
        assert!(matches!(
            Template::parse("uint32"),
            Err(TemplateError::Malformed(_))
        ));
        assert!(matches!(
            Template::parse("uint32 1A"),
            Err(TemplateError::BadName(_))
        ));
        let e = Template::parse("foo BAR").unwrap_err().to_string();
        assert!(e.contains("foo") && e.contains("BAR"), "{e}");
    }

    #[test]
    fn header_uses_delimiter() {
        let t = Template::parse("uint8 B,ipaddr A").unwrap();
        assert_eq!(t.header(b';'), "ipaddr A;uint8 B");
    }
}
