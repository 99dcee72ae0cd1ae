//! The IPFIX collector (NEMEA's `ipfixcol2` with its UniRec output as a
//! module): bounds-checked views of IPFIX, NetFlow v9 and v5 messages
//! ([`wire`]), the element → UniRec field table after ipfixcol2's
//! `unirec-elements.txt` ([`mapping`]), template state and conversion to
//! UniRec records without sockets ([`collector`]), ipfixcol2's startup XML
//! ([`config`]). The binary (`src/main.rs`) adds the UDP/TCP/file inputs and
//! the TRAP outputs.
#![forbid(unsafe_code)]

pub mod collector;
pub mod config;
pub mod mapping;
pub mod wire;
