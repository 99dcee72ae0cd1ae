//! The IPFIX collector's library (issue 11, in progress): bounds-checked
//! views of IPFIX, NetFlow v9 and v5 messages ([`wire`]) and the element →
//! UniRec field table after ipfixcol2's UniRec output ([`mapping`]). The
//! collector binary (UDP/TCP/file input, template state per exporter and
//! domain, UniRec output) is not built yet.
#![forbid(unsafe_code)]

pub mod mapping;
pub mod wire;
