//! packet_store: packet records into a database, and back out as pcap.
//!
//! Rows go in batches, one transaction each, so a batch is stored whole or
//! not at all. With dedup (the default, the Traffic Snooper's rule) the
//! packet hash is a unique key and a packet whose hash is already stored is
//! skipped (`ON CONFLICT DO NOTHING`); `--no-dedup` stores every packet.
//! The frame goes in as a blob (`BLOB` / `bytea`) or as hex text.
//!
//! Schema (both databases):
//!
//! ```sql
//! packets(id, ts_ns BIGINT, link INTEGER, wire_len INTEGER, cap_len INTEGER,
//!         hash BIGINT, packet BLOB|BYTEA|TEXT)   -- index on ts_ns, (unique) index on hash
//! snoop_meta(key TEXT PRIMARY KEY, value TEXT)   -- encoding=blob|hex, dedup=on|off
//! ```
//!
//! `ts_ns` is the capture time in nanoseconds since the epoch (UniRec time,
//! so exactly the pcap's microseconds ·1000), `hash` the PKT_HASH's 64 bits
//! as a signed integer. A database keeps the encoding and dedup choice it
//! was made with; opening it with the other one is an error.
//!
//! SQLite links Debian's libsqlite3 (libsqlite3-dev) rather than compiling
//! the bundled amalgamation: the build is faster on 2 cores, the library is
//! the one the distribution patches, and `sqlite3` on the same machine reads
//! the file with the same version. PostgreSQL goes through the synchronous
//! `postgres` client; a batch is sent with `COPY` into a session's staging
//! table and moved with one `INSERT … SELECT … ON CONFLICT DO NOTHING`.

pub mod db;
pub mod select;

pub use db::{open, Encoding, Options, Row, Store, StoreError};
pub use select::Selection;
