//! The two databases behind one [`Store`].

use std::fmt;
use std::time::Duration;

/// How the frame is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// Raw bytes (SQLite BLOB, PostgreSQL bytea).
    Blob,
    /// Lower-case hex text.
    Hex,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Blob => "blob",
            Encoding::Hex => "hex",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub encoding: Encoding,
    pub dedup: bool,
    /// An existing database keeps the encoding and dedup it was made with
    /// (for reading it back) instead of refusing other ones.
    pub adopt: bool,
}

/// One stored packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    pub link: u16,
    pub wire_len: u32,
    pub cap_len: u32,
    pub hash: u64,
    pub packet: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached now (connection lost, server starting
    /// or stopping, locked): the batch is kept and tried again.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (full disk, bad schema, bad URL): the run ends.
    #[error("{0}")]
    Fatal(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// A database of packets.
pub trait Store {
    /// Stores `rows` in one transaction; returns how many were new (the
    /// others were duplicates). On an error nothing of the batch is stored.
    fn insert(&mut self, rows: &[Row]) -> Result<u64, StoreError>;
    /// Drops the connection and makes a new one (after [`StoreError::Unavailable`]).
    fn reconnect(&mut self) -> Result<(), StoreError>;
    /// Rows from `from_ns` to `to_ns` (inclusive) in time order (ties in
    /// insertion order), each given to `each`; stops at its first error.
    fn scan(
        &mut self,
        from_ns: i64,
        to_ns: i64,
        each: &mut dyn FnMut(Row) -> std::io::Result<()>,
    ) -> Result<(), StoreError>;
    /// Rows stored.
    fn count(&mut self) -> Result<u64, StoreError>;
    /// What the database is, for messages.
    fn describe(&self) -> String;
}

/// Opens (and creates, when new) the database `url`: `postgres://…` or
/// `postgresql://…` for PostgreSQL, anything else is a SQLite file
/// (`sqlite:` / `sqlite://` prefixes are allowed).
pub fn open(url: &str, opts: Options) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(pg::Pg::open(url, opts)?));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() {
        return Err(StoreError::Fatal(
            "--db is empty: give a SQLite file or postgres://USER@HOST:PORT/DB".into(),
        ));
    }
    Ok(Box::new(lite::Lite::open(path, opts)?))
}

fn hex(b: &[u8], out: &mut String) {
    const D: &[u8; 16] = b"0123456789abcdef";
    out.reserve(b.len() * 2);
    for &x in b {
        out.push(D[usize::from(x >> 4)] as char);
        out.push(D[usize::from(x & 15)] as char);
    }
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let v = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.chunks_exact(2)
        .map(|p| Some(v(p[0])? << 4 | v(p[1])?))
        .collect()
}

/// The meta check both databases share.
fn check_meta(
    what: &dyn fmt::Display,
    key: &str,
    stored: Option<String>,
    wanted: &str,
    fix: &str,
) -> Result<(), StoreError> {
    match stored {
        Some(s) if s != wanted => Err(StoreError::Fatal(format!(
            "{what} was made with {key}={s}, not {wanted}: {fix}"
        ))),
        _ => Ok(()),
    }
}

/// The stored choices replace the asked ones.
fn adopt(opts: &mut Options, encoding: Option<&str>, dedup: Option<&str>) {
    match encoding {
        Some("hex") => opts.encoding = Encoding::Hex,
        Some("blob") => opts.encoding = Encoding::Blob,
        _ => {}
    }
    match dedup {
        Some("on") => opts.dedup = true,
        Some("off") => opts.dedup = false,
        _ => {}
    }
}

fn fix_encoding(stored_is: &str) -> String {
    format!("give --encoding {stored_is} or another --db")
}

const FIX_DEDUP_ON: &str = "it keeps one packet per hash; give another --db for --no-dedup";
const FIX_DEDUP_OFF: &str = "it holds duplicates; drop --no-dedup only with another --db";

mod lite {
    use super::*;
    use rusqlite::{params, Connection, ErrorCode, OpenFlags};

    pub struct Lite {
        path: String,
        conn: Connection,
        opts: Options,
        hexbuf: String,
    }

    fn err(path: &str, what: &str, e: rusqlite::Error) -> StoreError {
        let code = e.sqlite_error_code();
        let msg = format!("{path}: {what}: {e}");
        match code {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(msg)
            }
            Some(ErrorCode::DiskFull) => StoreError::Fatal(format!(
                "{msg} (free space on the file system holding it; what was stored before is intact)"
            )),
            Some(ErrorCode::CannotOpen) => StoreError::Fatal(format!(
                "{msg} (does the directory exist and is it writable?)"
            )),
            _ => StoreError::Fatal(msg),
        }
    }

    impl Lite {
        pub fn open(path: &str, opts: Options) -> Result<Lite, StoreError> {
            let (conn, opts) = Self::connect(path, opts)?;
            Ok(Lite {
                path: path.to_string(),
                conn,
                opts,
                hexbuf: String::new(),
            })
        }

        fn connect(path: &str, mut opts: Options) -> Result<(Connection, Options), StoreError> {
            let e = |what: &str| {
                let what = what.to_string();
                move |x| err(path, &what, x)
            };
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(e("cannot open"))?;
            conn.busy_timeout(Duration::from_secs(2))
                .map_err(e("busy timeout"))?;
            let mode: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .map_err(e("cannot switch to WAL"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Fatal(format!(
                    "{path}: the journal mode stays {mode}, not WAL (is it on a file system without shared memory?)"
                )));
            }
            let col = match opts.encoding {
                Encoding::Blob => "BLOB",
                Encoding::Hex => "TEXT",
            };
            conn.execute_batch(&format!(
                "PRAGMA synchronous=NORMAL;
                 CREATE TABLE IF NOT EXISTS snoop_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS packets (
                     id INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, link INTEGER NOT NULL,
                     wire_len INTEGER NOT NULL, cap_len INTEGER NOT NULL, hash INTEGER NOT NULL,
                     packet {col} NOT NULL);
                 CREATE INDEX IF NOT EXISTS packets_ts ON packets(ts_ns);"
            ))
            .map_err(e("cannot create the tables"))?;
            let meta = |k: &str| -> Result<Option<String>, StoreError> {
                conn.query_row("SELECT value FROM snoop_meta WHERE key=?1", [k], |r| {
                    r.get(0)
                })
                .map(Some)
                .or_else(|x| match x {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    x => Err(err(path, "cannot read snoop_meta", x)),
                })
            };
            let enc = meta("encoding")?;
            let dedup_stored = meta("dedup")?;
            if opts.adopt {
                adopt(&mut opts, enc.as_deref(), dedup_stored.as_deref());
            }
            check_meta(
                &path,
                "encoding",
                enc.clone(),
                opts.encoding.name(),
                &fix_encoding(enc.as_deref().unwrap_or("")),
            )?;
            let dedup = if opts.dedup { "on" } else { "off" };
            let fix = if opts.dedup {
                FIX_DEDUP_OFF
            } else {
                FIX_DEDUP_ON
            };
            check_meta(&path, "dedup", dedup_stored, dedup, fix)?;
            let index = if opts.dedup {
                "CREATE UNIQUE INDEX IF NOT EXISTS packets_hash ON packets(hash)"
            } else {
                "CREATE INDEX IF NOT EXISTS packets_hash ON packets(hash)"
            };
            conn.execute_batch(&format!(
                "{index};
                 INSERT OR IGNORE INTO snoop_meta VALUES ('encoding', '{}'), ('dedup', '{dedup}');",
                opts.encoding.name()
            ))
            .map_err(e("cannot create the hash index"))?;
            Ok((conn, opts))
        }
    }

    impl Store for Lite {
        fn insert(&mut self, rows: &[Row]) -> Result<u64, StoreError> {
            let path = self.path.clone();
            let p = path.as_str();
            let e = |what: &'static str| move |x| err(p, what, x);
            let tx = self
                .conn
                .transaction()
                .map_err(e("cannot begin a transaction"))?;
            let mut new = 0u64;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO packets (ts_ns, link, wire_len, cap_len, hash, packet)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                    )
                    .map_err(e("cannot prepare the insert"))?;
                for r in rows {
                    let hash = r.hash as i64;
                    let n = match self.opts.encoding {
                        Encoding::Blob => st.execute(params![
                            r.ts_ns, r.link, r.wire_len, r.cap_len, hash, r.packet
                        ]),
                        Encoding::Hex => {
                            self.hexbuf.clear();
                            hex(&r.packet, &mut self.hexbuf);
                            st.execute(params![
                                r.ts_ns,
                                r.link,
                                r.wire_len,
                                r.cap_len,
                                hash,
                                self.hexbuf
                            ])
                        }
                    }
                    .map_err(e("cannot insert"))?;
                    new += n as u64;
                }
            }
            tx.commit().map_err(e("cannot commit"))?;
            Ok(new)
        }

        fn reconnect(&mut self) -> Result<(), StoreError> {
            self.conn = Self::connect(&self.path, self.opts)?.0;
            Ok(())
        }

        fn scan(
            &mut self,
            from_ns: i64,
            to_ns: i64,
            each: &mut dyn FnMut(Row) -> std::io::Result<()>,
        ) -> Result<(), StoreError> {
            let path = self.path.clone();
            let p = path.as_str();
            let e = |what: &'static str| move |x| err(p, what, x);
            let mut st = self
                .conn
                .prepare(
                    "SELECT ts_ns, link, wire_len, cap_len, hash, packet FROM packets
                     WHERE ts_ns BETWEEN ?1 AND ?2 ORDER BY ts_ns, id",
                )
                .map_err(e("cannot query"))?;
            let mut rows = st
                .query(params![from_ns, to_ns])
                .map_err(e("cannot query"))?;
            let hexed = self.opts.encoding == Encoding::Hex;
            while let Some(r) = rows.next().map_err(e("cannot read a row"))? {
                let packet = if hexed {
                    let s: String = r.get(5).map_err(e("cannot read a row"))?;
                    unhex(s.as_bytes()).ok_or_else(|| {
                        StoreError::Fatal(format!("{}: a packet is not hex", self.path))
                    })?
                } else {
                    r.get(5).map_err(e("cannot read a row"))?
                };
                let row = Row {
                    ts_ns: r.get(0).map_err(e("cannot read a row"))?,
                    link: r.get(1).map_err(e("cannot read a row"))?,
                    wire_len: r.get(2).map_err(e("cannot read a row"))?,
                    cap_len: r.get(3).map_err(e("cannot read a row"))?,
                    hash: r.get::<_, i64>(4).map_err(e("cannot read a row"))? as u64,
                    packet,
                };
                each(row).map_err(|x| StoreError::Fatal(x.to_string()))?;
            }
            Ok(())
        }

        fn count(&mut self) -> Result<u64, StoreError> {
            self.conn
                .query_row("SELECT count(*) FROM packets", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(|x| err(&self.path, "cannot count", x))
        }

        fn describe(&self) -> String {
            self.path.clone()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn hex_and_back() {
            let mut s = String::new();
            hex(&[0, 0xAB, 0xFF], &mut s);
            assert_eq!(s, "00abff");
            assert_eq!(unhex(s.as_bytes()).unwrap(), vec![0, 0xAB, 0xFF]);
            assert!(unhex(b"0").is_none() && unhex(b"zz").is_none());
        }
    }
}

mod pg {
    use super::*;
    use postgres::{Client, NoTls};
    use std::io::Write;

    pub struct Pg {
        url: String,
        shown: String,
        client: Client,
        opts: Options,
        copybuf: Vec<u8>,
        hexbuf: String,
    }

    /// The URL without its password, for messages.
    fn redact(url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        match rest.split_once('@') {
            Some((auth, host)) => match auth.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => url.to_string(),
            },
            None => url.to_string(),
        }
    }

    fn transient(e: &postgres::Error) -> bool {
        if e.is_closed() {
            return true;
        }
        match e.code() {
            // Connection exceptions, shutdown, cannot connect now (starting up).
            Some(c) => {
                let c = c.code();
                c.starts_with("08") || c.starts_with("57P") || c == "40001" || c == "40P01"
            }
            // No SQLSTATE: the socket (refused, reset, timed out).
            None => true,
        }
    }

    fn err(shown: &str, what: &str, e: postgres::Error) -> StoreError {
        let why = match e.as_db_error() {
            Some(d) => format!("{} ({})", d.message(), d.code().code()),
            None => {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(x) = src {
                    s.push_str(&format!(": {x}"));
                    src = x.source();
                }
                s
            }
        };
        let msg = format!("{shown}: {what}: {why}");
        if transient(&e) {
            StoreError::Unavailable(msg)
        } else {
            StoreError::Fatal(msg)
        }
    }

    impl Pg {
        pub fn open(url: &str, opts: Options) -> Result<Pg, StoreError> {
            let shown = redact(url);
            let (client, opts) = Self::connect(url, &shown, opts).map_err(|e| match e {
                // At start an unreachable server is an error, not a wait.
                StoreError::Unavailable(m) => StoreError::Fatal(format!(
                    "{m} (is the server running and the URL right? postgres://USER[:PASSWORD]@HOST:PORT/DATABASE)"
                )),
                e => e,
            })?;
            Ok(Pg {
                url: url.to_string(),
                shown,
                client,
                opts,
                copybuf: Vec::new(),
                hexbuf: String::new(),
            })
        }

        fn connect(
            url: &str,
            shown: &str,
            mut opts: Options,
        ) -> Result<(Client, Options), StoreError> {
            let mut cfg: postgres::Config = url.parse().map_err(|e: postgres::Error| {
                StoreError::Fatal(format!("{shown}: bad PostgreSQL URL: {e}"))
            })?;
            cfg.connect_timeout(Duration::from_secs(3));
            cfg.application_name("packet_store");
            let mut client = cfg
                .connect(NoTls)
                .map_err(|e| err(shown, "cannot connect", e))?;
            let col = match opts.encoding {
                Encoding::Blob => "BYTEA",
                Encoding::Hex => "TEXT",
            };
            let e = |what: &'static str| move |x| err(shown, what, x);
            client
                .batch_execute(&format!(
                    "SET client_min_messages = warning;
                     CREATE TABLE IF NOT EXISTS snoop_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                     CREATE TABLE IF NOT EXISTS packets (
                         id BIGSERIAL PRIMARY KEY, ts_ns BIGINT NOT NULL, link INTEGER NOT NULL,
                         wire_len BIGINT NOT NULL, cap_len BIGINT NOT NULL, hash BIGINT NOT NULL,
                         packet {col} NOT NULL);
                     CREATE INDEX IF NOT EXISTS packets_ts ON packets(ts_ns);"
                ))
                .map_err(e("cannot create the tables"))?;
            let mut meta = |k: &str| -> Result<Option<String>, StoreError> {
                client
                    .query_opt("SELECT value FROM snoop_meta WHERE key=$1", &[&k])
                    .map(|r| r.map(|r| r.get(0)))
                    .map_err(|x| err(shown, "cannot read snoop_meta", x))
            };
            let enc = meta("encoding")?;
            let dedup_stored = meta("dedup")?;
            if opts.adopt {
                adopt(&mut opts, enc.as_deref(), dedup_stored.as_deref());
            }
            check_meta(
                &shown,
                "encoding",
                enc.clone(),
                opts.encoding.name(),
                &fix_encoding(enc.as_deref().unwrap_or("")),
            )?;
            let dedup = if opts.dedup { "on" } else { "off" };
            let fix = if opts.dedup {
                FIX_DEDUP_OFF
            } else {
                FIX_DEDUP_ON
            };
            check_meta(&shown, "dedup", dedup_stored, dedup, fix)?;
            let index = if opts.dedup {
                "CREATE UNIQUE INDEX IF NOT EXISTS packets_hash ON packets(hash)"
            } else {
                "CREATE INDEX IF NOT EXISTS packets_hash ON packets(hash)"
            };
            client
                .batch_execute(&format!(
                    "{index};
                     INSERT INTO snoop_meta VALUES ('encoding', '{}'), ('dedup', '{dedup}')
                         ON CONFLICT DO NOTHING;
                     CREATE TEMP TABLE IF NOT EXISTS snoop_stage
                         (LIKE packets INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;",
                    opts.encoding.name()
                ))
                .map_err(e("cannot create the hash index"))?;
            Ok((client, opts))
        }

        /// The batch in COPY's text format.
        fn copy_text(&mut self, rows: &[Row]) {
            let b = &mut self.copybuf;
            b.clear();
            for r in rows {
                let _ = write!(
                    b,
                    "{}\t{}\t{}\t{}\t{}\t",
                    r.ts_ns, r.link, r.wire_len, r.cap_len, r.hash as i64
                );
                self.hexbuf.clear();
                hex(&r.packet, &mut self.hexbuf);
                if self.opts.encoding == Encoding::Blob {
                    // bytea's hex input `\x…`, its backslash escaped for COPY.
                    b.extend_from_slice(b"\\\\x");
                }
                b.extend_from_slice(self.hexbuf.as_bytes());
                b.push(b'\n');
            }
        }
    }

    impl Store for Pg {
        fn insert(&mut self, rows: &[Row]) -> Result<u64, StoreError> {
            self.copy_text(rows);
            let shown = self.shown.clone();
            let p = shown.as_str();
            let e = |what: &'static str| move |x| err(p, what, x);
            let mut tx = self.client.transaction().map_err(e("cannot begin"))?;
            let mut w = tx
                .copy_in(
                    "COPY snoop_stage (ts_ns, link, wire_len, cap_len, hash, packet) FROM STDIN",
                )
                .map_err(e("cannot start COPY"))?;
            w.write_all(&self.copybuf)
                .map_err(|x| StoreError::Unavailable(format!("{}: COPY: {x}", self.shown)))?;
            w.finish().map_err(e("COPY"))?;
            let n = tx
                .execute(
                    "INSERT INTO packets (ts_ns, link, wire_len, cap_len, hash, packet)
                     SELECT ts_ns, link, wire_len, cap_len, hash, packet FROM snoop_stage
                     ORDER BY id ON CONFLICT DO NOTHING",
                    &[],
                )
                .map_err(e("cannot insert"))?;
            tx.commit().map_err(e("cannot commit"))?;
            Ok(n)
        }

        fn reconnect(&mut self) -> Result<(), StoreError> {
            self.client = Self::connect(&self.url, &self.shown, self.opts)?.0;
            Ok(())
        }

        fn scan(
            &mut self,
            from_ns: i64,
            to_ns: i64,
            each: &mut dyn FnMut(Row) -> std::io::Result<()>,
        ) -> Result<(), StoreError> {
            let shown = self.shown.clone();
            let p = shown.as_str();
            let e = |what: &'static str| move |x| err(p, what, x);
            let hexed = self.opts.encoding == Encoding::Hex;
            let mut tx = self.client.transaction().map_err(e("cannot begin"))?;
            let portal = tx
                .bind(
                    "SELECT ts_ns, link, wire_len, cap_len, hash, packet FROM packets
                     WHERE ts_ns BETWEEN $1 AND $2 ORDER BY ts_ns, id",
                    &[&from_ns, &to_ns],
                )
                .map_err(e("cannot query"))?;
            loop {
                let rows = tx
                    .query_portal(&portal, 10_000)
                    .map_err(e("cannot query"))?;
                if rows.is_empty() {
                    break;
                }
                for r in rows {
                    let packet = if hexed {
                        let s: String = r.try_get(5).map_err(e("cannot read a row"))?;
                        unhex(s.as_bytes()).ok_or_else(|| {
                            StoreError::Fatal(format!("{}: a packet is not hex", self.shown))
                        })?
                    } else {
                        r.try_get(5).map_err(e("cannot read a row"))?
                    };
                    let link: i32 = r.try_get(1).map_err(e("cannot read a row"))?;
                    let wire: i64 = r.try_get(2).map_err(e("cannot read a row"))?;
                    let cap: i64 = r.try_get(3).map_err(e("cannot read a row"))?;
                    let row = Row {
                        ts_ns: r.try_get(0).map_err(e("cannot read a row"))?,
                        link: link as u16,
                        wire_len: wire as u32,
                        cap_len: cap as u32,
                        hash: r.try_get::<_, i64>(4).map_err(e("cannot read a row"))? as u64,
                        packet,
                    };
                    each(row).map_err(|x| StoreError::Fatal(x.to_string()))?;
                }
            }
            tx.commit().map_err(e("cannot end the query"))?;
            Ok(())
        }

        fn count(&mut self) -> Result<u64, StoreError> {
            self.client
                .query_one("SELECT count(*) FROM packets", &[])
                .map(|r| r.get::<_, i64>(0) as u64)
                .map_err(|x| err(&self.shown, "cannot count", x))
        }

        fn describe(&self) -> String {
            self.shown.clone()
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn passwords_stay_out_of_messages() {
            assert_eq!(
                super::redact("postgres://snoop:secret@127.0.0.1:5432/db"),
                "postgres://snoop:***@127.0.0.1:5432/db"
            );
            assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64, hash: u64, data: &[u8]) -> Row {
        Row {
            ts_ns: ts,
            link: 1,
            wire_len: data.len() as u32 + 4,
            cap_len: data.len() as u32,
            hash,
            packet: data.to_vec(),
        }
    }

    fn all(s: &mut dyn Store) -> Vec<Row> {
        let mut v = Vec::new();
        s.scan(i64::MIN, i64::MAX, &mut |r| {
            v.push(r);
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn sqlite_dedups_on_hash_and_keeps_time_order() {
        for enc in [Encoding::Blob, Encoding::Hex] {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("s.sqlite");
            let db = db.to_str().unwrap();
            let opts = Options {
                encoding: enc,
                dedup: true,
                adopt: false,
            };
            let mut s = open(db, opts).unwrap();
            let a = row(30, 1, b"aaa");
            let b = row(10, 2, b"\x00\xffb");
            assert_eq!(s.insert(&[a.clone(), b.clone(), a.clone()]).unwrap(), 2);
            assert_eq!(s.insert(std::slice::from_ref(&b)).unwrap(), 0);
            assert_eq!(all(s.as_mut()), vec![b.clone(), a.clone()]);
            drop(s);
            // Reopened with the other encoding or without dedup: refused.
            let other = match enc {
                Encoding::Blob => Encoding::Hex,
                Encoding::Hex => Encoding::Blob,
            };
            let e = open(
                db,
                Options {
                    encoding: other,
                    ..opts
                },
            )
            .err()
            .unwrap();
            assert!(e.to_string().contains("--encoding"), "{e}");
            let e = open(
                db,
                Options {
                    dedup: false,
                    ..opts
                },
            )
            .err()
            .unwrap();
            assert!(e.to_string().contains("--no-dedup"), "{e}");
            let mut s = open(db, opts).unwrap();
            assert_eq!(s.count().unwrap(), 2);
            drop(s);
            // Adopting, the stored choices win.
            let mut s = open(
                db,
                Options {
                    encoding: other,
                    dedup: false,
                    adopt: true,
                },
            )
            .unwrap();
            assert_eq!(all(s.as_mut()), vec![b.clone(), a.clone()]);
        }
    }

    #[test]
    fn sqlite_without_dedup_stores_every_copy() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        let mut s = open(
            db.to_str().unwrap(),
            Options {
                encoding: Encoding::Blob,
                dedup: false,
                adopt: false,
            },
        )
        .unwrap();
        let a = row(1, 7, b"x");
        assert_eq!(s.insert(&[a.clone(), a.clone()]).unwrap(), 2);
        assert_eq!(s.insert(std::slice::from_ref(&a)).unwrap(), 1);
        assert_eq!(all(s.as_mut()).len(), 3);
        // The WAL journal is on.
        assert!(dir.path().join("s.sqlite-wal").exists());
    }

    #[test]
    fn a_missing_directory_is_named() {
        let e = open(
            "/nonexistent-dir/s.sqlite",
            Options {
                encoding: Encoding::Blob,
                dedup: true,
                adopt: false,
            },
        )
        .err()
        .unwrap();
        assert!(!e.is_transient());
        assert!(e.to_string().contains("/nonexistent-dir/s.sqlite"), "{e}");
    }
}
