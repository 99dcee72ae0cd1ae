//! Checked zero-copy record views and a record builder.
//!
//! Contract: [`RecordRef::new_checked`] validates the record length and every
//! variable-length entry once; afterwards no accessor can panic or read out of
//! bounds. Accessors return `None` for an index that is not in the template or a
//! field of another type.

use crate::addr::{UrIp, UrMac};
use crate::template::Template;
use crate::time::UrTime;
use crate::types::{FieldType, Scalar};

/// Largest record (= TRAP message) UniRec can carry.
pub const MAX_RECORD_SIZE: usize = u16::MAX as usize;

/// A record that does not fit its template, or a value that does not fit a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error(
        "record of {len} bytes is shorter than the fixed part of its template ({fixed} bytes)"
    )]
    TooShort { len: usize, fixed: usize },
    #[error("field `{name}` points outside the record (offset {offset}, length {length}, {available} bytes of variable data)")]
    BadVariable {
        name: String,
        offset: usize,
        length: usize,
        available: usize,
    },
    #[error("record would be {0} bytes, more than UniRec's 65535")]
    TooLarge(usize),
    #[error("no field with index {0} in the template")]
    NoField(usize),
    #[error("field `{name}` is `{ty}`, the value given is `{given}`")]
    TypeMismatch {
        name: String,
        ty: FieldType,
        given: &'static str,
    },
}

/// A decoded field value, borrowing variable-length data from the record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Char(u8),
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    Float(f32),
    Double(f64),
    Ip(UrIp),
    Mac(UrMac),
    Time(UrTime),
    String(&'a [u8]),
    Bytes(&'a [u8]),
    Array(ArrayRef<'a>),
}

impl Value<'_> {
    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Char(_) => "char",
            Value::U8(_) => "uint8",
            Value::I8(_) => "int8",
            Value::U16(_) => "uint16",
            Value::I16(_) => "int16",
            Value::U32(_) => "uint32",
            Value::I32(_) => "int32",
            Value::U64(_) => "uint64",
            Value::I64(_) => "int64",
            Value::Float(_) => "float",
            Value::Double(_) => "double",
            Value::Ip(_) => "ipaddr",
            Value::Mac(_) => "macaddr",
            Value::Time(_) => "time",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
        }
    }
}

/// The packed elements of an array field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArrayRef<'a> {
    elem: Scalar,
    data: &'a [u8],
}

impl<'a> ArrayRef<'a> {
    pub fn new(elem: Scalar, data: &'a [u8]) -> ArrayRef<'a> {
        ArrayRef { elem, data }
    }
    pub fn element_type(&self) -> Scalar {
        self.elem
    }
    /// Number of whole elements (a trailing partial element is ignored, as C does).
    pub fn len(&self) -> usize {
        self.data.len() / self.elem.size()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, i: usize) -> Option<Value<'a>> {
        let size = self.elem.size();
        decode_scalar(self.elem, self.data.get(i * size..(i + 1) * size)?)
    }
    pub fn iter(&self) -> impl Iterator<Item = Value<'a>> + 'a {
        let elem = self.elem;
        self.data
            .chunks_exact(elem.size())
            .filter_map(move |c| decode_scalar(elem, c))
    }
    pub fn raw(&self) -> &'a [u8] {
        self.data
    }
}

fn arr<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.try_into().ok()
}

/// Decodes one scalar from exactly `s.size()` bytes.
pub fn decode_scalar(s: Scalar, b: &[u8]) -> Option<Value<'_>> {
    Some(match s {
        Scalar::Char => Value::Char(*b.first()?),
        Scalar::U8 => Value::U8(*b.first()?),
        Scalar::I8 => Value::I8(*b.first()? as i8),
        Scalar::U16 => Value::U16(u16::from_le_bytes(arr(b)?)),
        Scalar::I16 => Value::I16(i16::from_le_bytes(arr(b)?)),
        Scalar::U32 => Value::U32(u32::from_le_bytes(arr(b)?)),
        Scalar::I32 => Value::I32(i32::from_le_bytes(arr(b)?)),
        Scalar::U64 => Value::U64(u64::from_le_bytes(arr(b)?)),
        Scalar::I64 => Value::I64(i64::from_le_bytes(arr(b)?)),
        Scalar::Float => Value::Float(f32::from_le_bytes(arr(b)?)),
        Scalar::Double => Value::Double(f64::from_le_bytes(arr(b)?)),
        Scalar::IpAddr => Value::Ip(UrIp(arr(b)?)),
        Scalar::MacAddr => Value::Mac(UrMac(arr(b)?)),
        Scalar::Time => Value::Time(UrTime(u64::from_le_bytes(arr(b)?))),
    })
}

/// A validated view of one record.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    tmpl: &'a Template,
    data: &'a [u8],
}

macro_rules! typed_getter {
    ($name:ident, $scalar:ident, $variant:ident, $ty:ty) => {
        #[doc = concat!("The `", stringify!($scalar), "` field at `idx`.")]
        #[inline]
        pub fn $name(&self, idx: usize) -> Option<$ty> {
            match self.value(idx)? {
                Value::$variant(v) => Some(v),
                _ => None,
            }
        }
    };
}

impl<'a> RecordRef<'a> {
    /// Checks that `data` is a whole record of `tmpl`.
    pub fn new_checked(tmpl: &'a Template, data: &'a [u8]) -> Result<RecordRef<'a>, RecordError> {
        let fixed = tmpl.fixed_size();
        if data.len() < fixed {
            return Err(RecordError::TooShort {
                len: data.len(),
                fixed,
            });
        }
        let available = data.len() - fixed;
        for f in &tmpl.fields()[tmpl.first_variable()..] {
            let (offset, length) = var_entry(data, f.offset());
            if offset + length > available {
                return Err(RecordError::BadVariable {
                    name: f.name().to_string(),
                    offset,
                    length,
                    available,
                });
            }
        }
        Ok(RecordRef { tmpl, data })
    }

    pub fn template(&self) -> &'a Template {
        self.tmpl
    }

    /// The whole record as bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// `N` bytes of the fixed part at `offset` (a field offset a module
    /// looked up once per template), zeros where the record is shorter.
    #[inline]
    pub fn fixed<const N: usize>(&self, offset: usize) -> [u8; N] {
        self.data
            .get(offset..offset.saturating_add(N))
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; N])
    }

    /// The bytes of field `idx`: the value of a fixed field, the data of a
    /// variable one.
    #[inline]
    pub fn raw(&self, idx: usize) -> Option<&'a [u8]> {
        let f = self.tmpl.field(idx)?;
        match f.ty() {
            FieldType::Scalar(s) => self.data.get(f.offset()..f.offset() + s.size()),
            _ => {
                let (off, len) = var_entry(self.data, f.offset());
                let start = self.tmpl.fixed_size() + off;
                self.data.get(start..start + len)
            }
        }
    }

    /// The value of field `idx`.
    #[inline]
    pub fn value(&self, idx: usize) -> Option<Value<'a>> {
        let ty = self.tmpl.field(idx)?.ty();
        let raw = self.raw(idx)?;
        match ty {
            FieldType::Scalar(s) => decode_scalar(s, raw),
            FieldType::String => Some(Value::String(raw)),
            FieldType::Bytes => Some(Value::Bytes(raw)),
            FieldType::Array(s) => Some(Value::Array(ArrayRef::new(s, raw))),
        }
    }

    typed_getter!(get_u8, uint8, U8, u8);
    typed_getter!(get_i8, int8, I8, i8);
    typed_getter!(get_u16, uint16, U16, u16);
    typed_getter!(get_i16, int16, I16, i16);
    typed_getter!(get_u32, uint32, U32, u32);
    typed_getter!(get_i32, int32, I32, i32);
    typed_getter!(get_u64, uint64, U64, u64);
    typed_getter!(get_i64, int64, I64, i64);
    typed_getter!(get_f32, float, Float, f32);
    typed_getter!(get_f64, double, Double, f64);
    typed_getter!(get_ip, ipaddr, Ip, UrIp);
    typed_getter!(get_mac, macaddr, Mac, UrMac);
    typed_getter!(get_time, time, Time, UrTime);
    typed_getter!(get_array, array, Array, ArrayRef<'a>);

    /// The `string` or `bytes` field at `idx`.
    pub fn get_bytes(&self, idx: usize) -> Option<&'a [u8]> {
        match self.value(idx)? {
            Value::String(b) | Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// Reads a variable field's (offset, length) entry. The caller guarantees that
/// `at + 4 <= data.len()` (it lies in the fixed part); a short slice reads as 0.
fn var_entry(data: &[u8], at: usize) -> (usize, usize) {
    match data.get(at..at + 4) {
        Some(e) => (
            usize::from(u16::from_le_bytes([e[0], e[1]])),
            usize::from(u16::from_le_bytes([e[2], e[3]])),
        ),
        None => (0, 0),
    }
}

/// Builds records of one template. Reuse one builder for many records: after
/// the first few it no longer allocates.
#[derive(Clone, Debug)]
pub struct RecordBuilder<'t> {
    tmpl: &'t Template,
    fixed: Vec<u8>,
    vars: Vec<Vec<u8>>,
}

/// A builder's storage without its template (see
/// [`RecordBuilder::with_buffers`]).
#[derive(Clone, Debug, Default)]
pub struct RecordBuffers {
    fixed: Vec<u8>,
    vars: Vec<Vec<u8>>,
}

macro_rules! typed_setter {
    ($name:ident, $scalar:ident, $ty:ty) => {
        #[doc = concat!("Sets the `", stringify!($scalar), "` field at `idx`.")]
        #[inline]
        pub fn $name(&mut self, idx: usize, v: $ty) -> Result<(), RecordError> {
            self.put_fixed(idx, Scalar::$scalar, &v.to_le_bytes())
        }
    };
}

impl<'t> RecordBuilder<'t> {
    pub fn new(tmpl: &'t Template) -> RecordBuilder<'t> {
        RecordBuilder {
            tmpl,
            fixed: vec![0; tmpl.fixed_size()],
            vars: vec![Vec::new(); tmpl.variable_count()],
        }
    }

    pub fn template(&self) -> &'t Template {
        self.tmpl
    }

    /// A builder over `buffers` kept from an earlier builder (of this or
    /// another template): a struct that owns its template and replaces it
    /// keeps the buffers instead of a builder borrowing the template, and
    /// builds without allocating once the buffers have grown. The record
    /// starts cleared.
    pub fn with_buffers(tmpl: &'t Template, buffers: RecordBuffers) -> RecordBuilder<'t> {
        let RecordBuffers {
            mut fixed,
            mut vars,
        } = buffers;
        fixed.clear();
        fixed.resize(tmpl.fixed_size(), 0);
        vars.resize_with(tmpl.variable_count(), Vec::new);
        vars.iter_mut().for_each(Vec::clear);
        RecordBuilder { tmpl, fixed, vars }
    }

    /// The fixed part of the record being built, for a writer that looked
    /// up its fields' offsets and types once per template (a collector's
    /// compiled conversion) rather than at every value.
    #[inline]
    pub fn fixed_mut(&mut self) -> &mut [u8] {
        &mut self.fixed
    }

    /// Gives the buffers back, for [`with_buffers`](Self::with_buffers).
    pub fn into_buffers(self) -> RecordBuffers {
        RecordBuffers {
            fixed: self.fixed,
            vars: self.vars,
        }
    }

    /// Zeroes every fixed field and empties every variable one.
    pub fn clear(&mut self) {
        self.fixed.fill(0);
        self.vars.iter_mut().for_each(Vec::clear);
    }

    fn mismatch(&self, idx: usize, given: &'static str) -> RecordError {
        match self.tmpl.field(idx) {
            Some(f) => RecordError::TypeMismatch {
                name: f.name().to_string(),
                ty: f.ty(),
                given,
            },
            None => RecordError::NoField(idx),
        }
    }

    #[inline]
    fn put_fixed(&mut self, idx: usize, s: Scalar, bytes: &[u8]) -> Result<(), RecordError> {
        match self.tmpl.field(idx) {
            Some(f) if f.ty() == FieldType::Scalar(s) => {
                let off = f.offset();
                match self.fixed.get_mut(off..off + bytes.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(bytes);
                        Ok(())
                    }
                    None => Err(RecordError::NoField(idx)),
                }
            }
            _ => Err(self.mismatch(idx, s.name())),
        }
    }

    typed_setter!(set_u8, U8, u8);
    typed_setter!(set_i8, I8, i8);
    typed_setter!(set_u16, U16, u16);
    typed_setter!(set_i16, I16, i16);
    typed_setter!(set_u32, U32, u32);
    typed_setter!(set_i32, I32, i32);
    typed_setter!(set_u64, U64, u64);
    typed_setter!(set_i64, I64, i64);
    typed_setter!(set_f32, Float, f32);
    typed_setter!(set_f64, Double, f64);

    pub fn set_char(&mut self, idx: usize, v: u8) -> Result<(), RecordError> {
        self.put_fixed(idx, Scalar::Char, &[v])
    }
    pub fn set_ip(&mut self, idx: usize, v: UrIp) -> Result<(), RecordError> {
        self.put_fixed(idx, Scalar::IpAddr, &v.0)
    }
    pub fn set_mac(&mut self, idx: usize, v: UrMac) -> Result<(), RecordError> {
        self.put_fixed(idx, Scalar::MacAddr, &v.0)
    }
    pub fn set_time(&mut self, idx: usize, v: UrTime) -> Result<(), RecordError> {
        self.put_fixed(idx, Scalar::Time, &v.0.to_le_bytes())
    }

    /// Gives mutable access to the data of variable field `idx` (string, bytes,
    /// or an array's packed little-endian elements).
    pub fn var_mut(&mut self, idx: usize) -> Result<&mut Vec<u8>, RecordError> {
        let first = self.tmpl.first_variable();
        if idx < first || idx >= self.tmpl.len() {
            return Err(self.mismatch(idx, "variable-length data"));
        }
        self.vars
            .get_mut(idx - first)
            .ok_or(RecordError::NoField(idx))
    }

    /// Sets a variable field's data.
    pub fn set_var(&mut self, idx: usize, data: &[u8]) -> Result<(), RecordError> {
        let v = self.var_mut(idx)?;
        v.clear();
        v.extend_from_slice(data);
        Ok(())
    }

    /// Sets field `idx` from a decoded value of the same type.
    pub fn set(&mut self, idx: usize, v: &Value<'_>) -> Result<(), RecordError> {
        let ty = self.tmpl.field(idx).ok_or(RecordError::NoField(idx))?.ty();
        match (*v, ty) {
            (Value::Char(x), _) => self.set_char(idx, x),
            (Value::U8(x), _) => self.set_u8(idx, x),
            (Value::I8(x), _) => self.set_i8(idx, x),
            (Value::U16(x), _) => self.set_u16(idx, x),
            (Value::I16(x), _) => self.set_i16(idx, x),
            (Value::U32(x), _) => self.set_u32(idx, x),
            (Value::I32(x), _) => self.set_i32(idx, x),
            (Value::U64(x), _) => self.set_u64(idx, x),
            (Value::I64(x), _) => self.set_i64(idx, x),
            (Value::Float(x), _) => self.set_f32(idx, x),
            (Value::Double(x), _) => self.set_f64(idx, x),
            (Value::Ip(x), _) => self.set_ip(idx, x),
            (Value::Mac(x), _) => self.set_mac(idx, x),
            (Value::Time(x), _) => self.set_time(idx, x),
            (Value::String(b), FieldType::String)
            | (Value::Bytes(b), FieldType::Bytes)
            | (Value::String(b), FieldType::Bytes)
            | (Value::Bytes(b), FieldType::String) => self.set_var(idx, b),
            (Value::Array(a), FieldType::Array(e)) if a.element_type() == e => {
                self.set_var(idx, a.raw())
            }
            _ => Err(self.mismatch(idx, v.type_name())),
        }
    }

    /// Size of the record [`finish`](Self::finish) would write.
    pub fn size(&self) -> usize {
        self.fixed.len() + self.vars.iter().map(Vec::len).sum::<usize>()
    }

    /// Appends the record to `out`: fixed part with offset/length entries, then
    /// the variable data in record order.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let size = self.size();
        if size > MAX_RECORD_SIZE {
            return Err(RecordError::TooLarge(size));
        }
        let first = self.tmpl.first_variable();
        let mut offset = 0usize;
        for (field, data) in self.tmpl.fields()[first..].iter().zip(&self.vars) {
            let at = field.offset();
            // Both fit in u16: the whole record is at most 65535 bytes.
            let entry = [offset as u16, data.len() as u16];
            if let Some(dst) = self.fixed.get_mut(at..at + 4) {
                dst[..2].copy_from_slice(&entry[0].to_le_bytes());
                dst[2..].copy_from_slice(&entry[1].to_le_bytes());
            }
            offset += data.len();
        }
        out.reserve(size);
        out.extend_from_slice(&self.fixed);
        for data in &self.vars {
            out.extend_from_slice(data);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_A: [u8; 47] = [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x80, 0x01, 0xe1, 0x0b, 0x5e, 0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc,
        0x50, 0x00, 0x06, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x04, 0x00, 0x61, 0x62, 0x01, 0x00,
        0x02, 0x01,
    ];

    fn vector_a_template() -> Template {
        Template::parse(
            "ipaddr SRC_IP,time TIME_FIRST,macaddr SRC_MAC,uint16 DST_PORT,uint8 PROTOCOL,string URL,uint16* PORTS",
        )
        .unwrap()
    }

    #[test]
    fn builds_vector_a_byte_for_byte() {
        let t = vector_a_template();
        let mut b = RecordBuilder::new(&t);
        b.set_ip(0, UrIp::parse("10.0.0.1").unwrap()).unwrap();
        b.set_time(1, UrTime::from_secs_millis(1_577_836_801, 500))
            .unwrap();
        b.set_mac(2, UrMac::parse("00:11:22:aa:bb:cc").unwrap())
            .unwrap();
        b.set_u16(3, 80).unwrap();
        b.set_u8(4, 6).unwrap();
        b.set_var(5, b"ab").unwrap();
        b.set_var(6, &[1, 0, 2, 1]).unwrap();
        let mut out = Vec::new();
        b.finish(&mut out).unwrap();
        assert_eq!(out, VECTOR_A);
    }

    #[test]
    fn reads_vector_a() {
        let t = vector_a_template();
        let r = RecordRef::new_checked(&t, &VECTOR_A).unwrap();
        assert_eq!(r.get_ip(0).unwrap().to_string(), "10.0.0.1");
        assert_eq!(r.get_time(1).unwrap().millis(), 500);
        assert_eq!(r.get_u16(3), Some(80));
        assert_eq!(r.get_u8(4), Some(6));
        assert_eq!(r.get_bytes(5), Some(&b"ab"[..]));
        let ports: Vec<_> = r.get_array(6).unwrap().iter().collect();
        assert_eq!(ports, [Value::U16(1), Value::U16(258)]);
        // Wrong type or index: None, never a panic.
        assert_eq!(r.get_u32(3), None);
        assert_eq!(r.value(99), None);
    }

    #[test]
    fn reads_vector_b_with_out_of_order_variable_data() {
        let t = Template::parse(
            "ipaddr SRC_IP,time TIME_FIRST,uint32 ABC,uint32 BCD,bytes STREAMBYTES,string TEXT",
        )
        .unwrap();
        let data = [
            0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xc8, 0x76, 0xbe, 0xff,
            0xe3, 0x2b, 0x6c, 0x57, 0, 0, 0, 1, 0, 0, 0, 2, 6, 0, 4, 0, 0, 0, 6, 0, 0x61, 0x62,
            0x63, 0x64, 0x65, 0x66, 0xde, 0xad, 0xfe, 0xed,
        ];
        let r = RecordRef::new_checked(&t, &data).unwrap();
        let tf = r.get_time(1).unwrap();
        assert_eq!((tf.secs(), tf.millis()), (1_466_706_915, 999));
        assert_eq!(r.get_u32(2), Some(16_777_216));
        assert_eq!(r.get_u32(3), Some(33_554_432));
        assert_eq!(r.get_bytes(4), Some(&[0xde, 0xad, 0xfe, 0xed][..]));
        assert_eq!(r.get_bytes(5), Some(&b"abcdef"[..]));
    }

    #[test]
    fn rejects_short_and_out_of_bounds_records() {
        let t = vector_a_template();
        assert!(matches!(
            RecordRef::new_checked(&t, &VECTOR_A[..40]),
            Err(RecordError::TooShort { len: 40, fixed: 41 })
        ));
        let mut bad = VECTOR_A;
        bad[0x27] = 9; // PORTS length 9 > 6 bytes available
        let e = RecordRef::new_checked(&t, &bad).unwrap_err();
        assert!(e.to_string().contains("PORTS"), "{e}");
        // Truncated variable data.
        assert!(RecordRef::new_checked(&t, &VECTOR_A[..45]).is_err());
    }

    #[test]
    fn builder_checks_types_and_size() {
        let t = vector_a_template();
        let mut b = RecordBuilder::new(&t);
        assert!(matches!(
            b.set_u32(3, 1),
            Err(RecordError::TypeMismatch { .. })
        ));
        assert!(b.set_var(3, b"x").is_err());
        assert!(matches!(b.set_u8(42, 1), Err(RecordError::NoField(42))));
        b.set_var(5, &vec![b'x'; 70_000]).unwrap();
        assert!(matches!(
            b.finish(&mut Vec::new()),
            Err(RecordError::TooLarge(_))
        ));
    }

    /// Regression (fuzz ipfix_wire, leak): ipfixcol leaked a template per
    /// format change to keep a builder; buffers moved from builder to
    /// builder, across templates, must give the records a new builder gives.
    #[test]
    fn buffers_carry_over_between_templates() {
        let wide = vector_a_template();
        let narrow = Template::parse("uint16 DST_PORT,string URL").unwrap();
        let mut b = RecordBuilder::new(&wide);
        b.set_var(5, b"left over").unwrap();
        b.set_u16(3, 80).unwrap();
        let mut b = RecordBuilder::with_buffers(&narrow, b.into_buffers());
        b.set_u16(0, 443).unwrap();
        b.set_var(1, b"ab").unwrap();
        let (mut reused, mut fresh) = (Vec::new(), Vec::new());
        b.finish(&mut reused).unwrap();
        let mut f = RecordBuilder::new(&narrow);
        f.set_u16(0, 443).unwrap();
        f.set_var(1, b"ab").unwrap();
        f.finish(&mut fresh).unwrap();
        assert_eq!(reused, fresh);
        let mut b = RecordBuilder::with_buffers(&wide, b.into_buffers());
        let (mut reused, mut fresh) = (Vec::new(), Vec::new());
        b.finish(&mut reused).unwrap();
        RecordBuilder::new(&wide).finish(&mut fresh).unwrap();
        assert_eq!(reused, fresh);
    }

    #[test]
    fn largest_record_fits() {
        let t = Template::parse("string S").unwrap();
        let mut b = RecordBuilder::new(&t);
        b.set_var(0, &vec![b'a'; 65_531]).unwrap();
        let mut out = Vec::new();
        b.finish(&mut out).unwrap();
        assert_eq!(out.len(), 65_535);
        let r = RecordRef::new_checked(&t, &out).unwrap();
        assert_eq!(r.get_bytes(0).map(<[u8]>::len), Some(65_531));
    }

    #[test]
    fn copy_between_templates_by_name() {
        let a = vector_a_template();
        let b_t = Template::parse("uint16 DST_PORT,string URL").unwrap();
        let r = RecordRef::new_checked(&a, &VECTOR_A).unwrap();
        let mut b = RecordBuilder::new(&b_t);
        for (i, f) in b_t.fields().iter().enumerate() {
            let v = r.value(a.find(f.name()).unwrap()).unwrap();
            b.set(i, &v).unwrap();
        }
        let mut out = Vec::new();
        b.finish(&mut out).unwrap();
        assert_eq!(out, [80, 0, 0, 0, 2, 0, b'a', b'b']);
    }
}
