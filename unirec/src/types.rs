//! UniRec field types and their names in template specs.

use std::fmt;

/// A fixed-size value type: a field of its own or the element of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    Char,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    Float,
    Double,
    IpAddr,
    MacAddr,
    Time,
}

impl Scalar {
    /// Size of one value on the wire, in bytes.
    pub const fn size(self) -> usize {
        match self {
            Scalar::Char | Scalar::U8 | Scalar::I8 => 1,
            Scalar::U16 | Scalar::I16 => 2,
            Scalar::U32 | Scalar::I32 | Scalar::Float => 4,
            Scalar::U64 | Scalar::I64 | Scalar::Double | Scalar::Time => 8,
            Scalar::MacAddr => 6,
            Scalar::IpAddr => 16,
        }
    }

    /// The type's name in a spec string (`uint16`, `ipaddr`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Scalar::Char => "char",
            Scalar::U8 => "uint8",
            Scalar::I8 => "int8",
            Scalar::U16 => "uint16",
            Scalar::I16 => "int16",
            Scalar::U32 => "uint32",
            Scalar::I32 => "int32",
            Scalar::U64 => "uint64",
            Scalar::I64 => "int64",
            Scalar::Float => "float",
            Scalar::Double => "double",
            Scalar::IpAddr => "ipaddr",
            Scalar::MacAddr => "macaddr",
            Scalar::Time => "time",
        }
    }

    fn from_name(name: &str) -> Option<Scalar> {
        Some(match name {
            "char" => Scalar::Char,
            "uint8" => Scalar::U8,
            "int8" => Scalar::I8,
            "uint16" => Scalar::U16,
            "int16" => Scalar::I16,
            "uint32" => Scalar::U32,
            "int32" => Scalar::I32,
            "uint64" => Scalar::U64,
            "int64" => Scalar::I64,
            "float" => Scalar::Float,
            "double" => Scalar::Double,
            "ipaddr" => Scalar::IpAddr,
            "macaddr" => Scalar::MacAddr,
            "time" => Scalar::Time,
            _ => return None,
        })
    }
}

/// The type of a UniRec field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// A fixed-size field stored in the fixed part of the record.
    Scalar(Scalar),
    /// Text without a terminating NUL (variable length).
    String,
    /// Arbitrary bytes (variable length).
    Bytes,
    /// A packed array of scalars (variable length); `char` arrays do not exist.
    Array(Scalar),
}

impl FieldType {
    /// Parses a type name as it appears in a spec (`uint32`, `string`, `ipaddr*`).
    pub fn from_name(name: &str) -> Option<FieldType> {
        match name {
            "string" => Some(FieldType::String),
            "bytes" => Some(FieldType::Bytes),
            _ => match name.strip_suffix('*') {
                Some(elem) => match Scalar::from_name(elem)? {
                    Scalar::Char => None,
                    s => Some(FieldType::Array(s)),
                },
                None => Scalar::from_name(name).map(FieldType::Scalar),
            },
        }
    }

    /// True for fields kept in the variable-length part of the record.
    pub const fn is_variable(self) -> bool {
        !matches!(self, FieldType::Scalar(_))
    }

    /// Bytes taken in the fixed part: the value for scalars, the 4-byte
    /// offset/length entry for variable-length fields.
    pub const fn fixed_size(self) -> usize {
        match self {
            FieldType::Scalar(s) => s.size(),
            _ => 4,
        }
    }

    /// UniRec's ordering key: the value size for fixed fields, minus the element
    /// size for variable ones (string and bytes count as -1). Fields are laid out
    /// by this key descending, then by name.
    pub const fn sort_key(self) -> i32 {
        match self {
            FieldType::Scalar(s) => s.size() as i32,
            FieldType::String | FieldType::Bytes => -1,
            FieldType::Array(s) => -(s.size() as i32),
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Scalar(s) => f.write_str(s.name()),
            FieldType::String => f.write_str("string"),
            FieldType::Bytes => f.write_str("bytes"),
            FieldType::Array(s) => write!(f, "{}*", s.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for name in [
            "char", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
            "float", "double", "ipaddr", "macaddr", "time", "string", "bytes", "uint8*", "int8*",
            "uint16*", "int16*", "uint32*", "int32*", "uint64*", "int64*", "float*", "double*",
            "ipaddr*", "macaddr*", "time*",
        ] {
            let t = FieldType::from_name(name).unwrap();
            assert_eq!(t.to_string(), name);
        }
        assert_eq!(FieldType::from_name("char*"), None);
        assert_eq!(FieldType::from_name("uint128"), None);
        assert_eq!(FieldType::from_name("string*"), None);
    }

    #[test]
    fn sort_keys_follow_the_reference_table() {
        let key = |n| FieldType::from_name(n).unwrap().sort_key();
        assert_eq!(key("ipaddr"), 16);
        assert_eq!(key("time"), 8);
        assert_eq!(key("macaddr"), 6);
        assert_eq!(key("float"), 4);
        assert_eq!(key("char"), 1);
        assert_eq!(key("bytes"), -1);
        assert_eq!(key("uint8*"), -1);
        assert_eq!(key("int16*"), -2);
        assert_eq!(key("float*"), -4);
        assert_eq!(key("macaddr*"), -6);
        assert_eq!(key("time*"), -8);
        assert_eq!(key("ipaddr*"), -16);
    }
}
