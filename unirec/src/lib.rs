//! UniRec, the record format of CESNET NEMEA, byte-compatible with libunirec.
//!
//! * [`Template`]: a set of typed fields in UniRec's canonical order, parsed
//!   from spec strings such as `ipaddr SRC_IP,uint16 SRC_PORT,string URL`.
//! * [`RecordRef`]: a validated, zero-copy view of one record.
//! * [`RecordBuilder`]: writes records of a template.
//! * [`text`]: the text forms C `logger` prints and `logreplay` reads.
//!
//! This crate does no I/O; `libtrap-rs` moves records between processes.
#![forbid(unsafe_code)]

pub mod addr;
pub mod record;
pub mod template;
pub mod text;
pub mod time;
pub mod types;

pub use addr::{UrIp, UrMac};
pub use record::{
    ArrayRef, RecordBuffers, RecordBuilder, RecordError, RecordRef, Value, MAX_RECORD_SIZE,
};
pub use template::{Field, Template, TemplateError};
pub use time::UrTime;
pub use types::{FieldType, Scalar};
