//! bl_downloader — fetches IP blacklists (HTTP(S) or files) on an interval and
//! writes the detector files of `ipblacklistfilter`.
//!
//! Configuration (TOML; NEMEA uses XML with the same items):
//!
//! ```toml
//! interval = 600                          # default seconds between downloads
//! timeout = 5                             # seconds for each download
//! ca_file = "/etc/ssl/certs/local-ca.pem" # optional: trust these CAs for https
//! ipv4_file = "/tmp/blacklistfilter/ip4.blist"
//! ipv6_file = "/tmp/blacklistfilter/ip6.blist"
//!
//! [[blacklist]]
//! id = 1                                  # 1..64: bit id-1 of the bitmaps
//! name = "Feodo Tracker"
//! category = "Intrusion.Botnet"           # IDEA category (for blacklist2idea)
//! source = "https://example.org/ips.txt"  # https://, http://, file:// or a path
//! format = "plaintext"                    # or "csv" with csv_col (1-based)
//! interval = 300                          # optional, overrides the default
//! ```
//!
//! Plaintext lists: one entity per line (`#`, `;` and `//` comments), the
//! first word is taken: IPv4 or IPv6 address, optionally `/prefix`
//! (`/32` and `/128` dropped) or `IPv4:port` (a port-restricted entry).
//! Lines that are not addresses are skipped. A list that fails to download
//! keeps its last good content; the detector files are replaced atomically
//! (written next to the target and renamed) only when their text changes.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("{url}: {detail}")]
    Fetch { url: String, detail: String },
    #[error("{path}: {err}")]
    Write {
        path: String,
        #[source]
        err: std::io::Error,
    },
}

fn default_interval() -> u64 {
    600
}
fn default_timeout() -> u64 {
    5
}
fn default_v4() -> PathBuf {
    PathBuf::from("/tmp/blacklistfilter/ip4.blist")
}
fn default_v6() -> PathBuf {
    PathBuf::from("/tmp/blacklistfilter/ip6.blist")
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_interval")]
    pub interval: u64,
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    #[serde(default = "default_v4")]
    pub ipv4_file: PathBuf,
    #[serde(default = "default_v6")]
    pub ipv6_file: PathBuf,
    /// PEM CA certificates that https servers are verified against instead
    /// of the built-in Mozilla roots (for internal list servers).
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub blacklist: Vec<ListConfig>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    pub id: u8,
    pub name: String,
    #[serde(default)]
    pub category: String,
    pub source: String,
    #[serde(default = "plaintext")]
    pub format: String,
    pub csv_col: Option<usize>,
    pub interval: Option<u64>,
}

fn plaintext() -> String {
    "plaintext".into()
}

impl Config {
    pub fn parse(text: &str, file: &str) -> Result<Config, Error> {
        let c: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default();
            Error::Config(format!("{file}: {}{line}", e.message()))
        })?;
        let mut seen = [false; 65];
        for l in &c.blacklist {
            if !(1..=64).contains(&l.id) {
                return Err(Error::Config(format!(
                    "{file}: blacklist {}: id {} is not in 1..64",
                    l.name, l.id
                )));
            }
            if std::mem::replace(&mut seen[usize::from(l.id)], true) {
                return Err(Error::Config(format!(
                    "{file}: blacklist id {} is used twice",
                    l.id
                )));
            }
            match (l.format.as_str(), l.csv_col) {
                ("plaintext", _) => {}
                ("csv", Some(c)) if c >= 1 => {}
                ("csv", _) => {
                    return Err(Error::Config(format!(
                        "{file}: blacklist {}: csv needs csv_col >= 1",
                        l.name
                    )))
                }
                (f, _) => {
                    return Err(Error::Config(format!(
                        "{file}: blacklist {}: unknown format `{f}`",
                        l.name
                    )))
                }
            }
        }
        Ok(c)
    }
}

/// An entity of a list: a prefix, optionally restricted to a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entity {
    pub addr: IpAddr,
    pub prefix: u8,
    pub port: Option<u16>,
}

fn parse_entity(word: &str) -> Option<Entity> {
    let word = word.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
    if let Some((a, p)) = word.split_once('/') {
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = p.parse().ok().filter(|&p| p <= max)?;
        return Some(Entity {
            addr: canonical(addr, prefix),
            prefix,
            port: None,
        });
    }
    if let Ok(addr) = word.parse::<IpAddr>() {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        return Some(Entity {
            addr,
            prefix,
            port: None,
        });
    }
    // IPv4:port (ThreatFox style)
    let (a, p) = word.rsplit_once(':')?;
    let addr: std::net::Ipv4Addr = a.parse().ok()?;
    Some(Entity {
        addr: IpAddr::V4(addr),
        prefix: 32,
        port: Some(p.parse().ok()?),
    })
}

/// The network address of a prefix.
fn canonical(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v) & m).into())
        }
        IpAddr::V6(v) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v) & m).into())
        }
    }
}

/// The entities of a downloaded list.
pub fn extract(text: &str, l: &ListConfig) -> Vec<Entity> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) || line.starts_with("//") {
            continue;
        }
        let word = match (l.format.as_str(), l.csv_col) {
            ("csv", Some(c)) => line.split(',').nth(c - 1).unwrap_or(""),
            _ => line.split([' ', '\t', ',', ';', '#']).next().unwrap_or(""),
        };
        if let Some(e) = parse_entity(word) {
            out.push(e);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// One detector-file line: the bitmap and the port lists per blacklist id.
type Line = (u64, BTreeMap<u8, Vec<u16>>);

/// The detector file texts (IPv4, IPv6) for the lists' current entities.
pub fn detector_files(lists: &BTreeMap<u8, Vec<Entity>>) -> (String, String) {
    // (addr, prefix) → (bitmap, id → ports)
    let mut m: BTreeMap<(IpAddr, u8), Line> = BTreeMap::new();
    for (&id, ents) in lists {
        for e in ents {
            let slot = m.entry((e.addr, e.prefix)).or_default();
            slot.0 |= 1u64 << (id - 1);
            if let Some(p) = e.port {
                slot.1.entry(id).or_default().push(p);
            }
        }
    }
    let (mut v4, mut v6) = (String::new(), String::new());
    for ((addr, prefix), (bitmap, ports)) in m {
        let out = if addr.is_ipv4() { &mut v4 } else { &mut v6 };
        let full = if addr.is_ipv4() { 32 } else { 128 };
        out.push_str(&addr.to_string());
        if prefix != full {
            out.push_str(&format!("/{prefix}"));
        }
        out.push_str(&format!(",{bitmap}"));
        for (id, mut p) in ports {
            p.sort_unstable();
            p.dedup();
            let list: Vec<String> = p.iter().map(u16::to_string).collect();
            out.push_str(&format!(";{id}:{}", list.join(",")));
        }
        out.push('\n');
    }
    (v4, v6)
}

/// Writes `text` to `path` atomically (a temporary file in the same
/// directory, then rename). Returns false when the file already had it.
pub fn replace_file(path: &Path, text: &str) -> Result<bool, Error> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let err = |err| Error::Write {
        path: path.display().to_string(),
        err,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(true)
}

/// Downloads lists: `http://` and `https://` URLs (through one HTTP client
/// that keeps its connections), `file://PATH` or a plain path.
pub struct Fetcher {
    agent: ureq::Agent,
}

/// The largest list body read (bigger ones are an error, not truncated).
const MAX_BODY: u64 = 256 << 20;

impl Fetcher {
    /// A fetcher with `timeout` for the whole of each download. HTTPS
    /// servers are verified against the certificates of `ca_file` (PEM) when
    /// given, else against the Mozilla roots built into the binary.
    pub fn new(timeout: Duration, ca_file: Option<&Path>) -> Result<Fetcher, Error> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = ca_file {
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(read_ca_file(
                path,
            )?)));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .user_agent("nemea-rs-bl_downloader")
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Fetcher { agent })
    }

    /// The text of `source`.
    pub fn fetch(&self, source: &str) -> Result<String, Error> {
        let fail = |detail: String| Error::Fetch {
            url: source.to_string(),
            detail,
        };
        if source.starts_with("http://") || source.starts_with("https://") {
            let mut resp = self
                .agent
                .get(source)
                .call()
                .map_err(|e| fail(http_error(e)))?;
            let body = resp
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_vec()
                .map_err(|e| fail(http_error(e)))?;
            return Ok(String::from_utf8_lossy(&body).into_owned());
        }
        let path = source.strip_prefix("file://").unwrap_or(source);
        std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))
    }
}

/// The CA certificates of a PEM file (at least one).
fn read_ca_file(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, Error> {
    let bad = |detail: String| Error::Config(format!("ca_file {}: {detail}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// ureq's errors in a few words (the status line for HTTP errors).
fn http_error(e: ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
        ureq::Error::BodyExceedsLimit(n) => format!("list larger than {n} bytes"),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(id: u8) -> ListConfig {
        ListConfig {
            id,
            name: format!("l{id}"),
            category: String::new(),
            source: String::new(),
            format: "plaintext".into(),
            csv_col: None,
            interval: None,
        }
    }

    #[test]
    fn extraction_and_files() {
        let a = extract(
            "# comment\n192.0.2.1\n198.51.100.0/24 some text\n10.0.0.1/32\nnot an ip\n\
             2001:db8::1/128\n2001:db8:1::/48\n203.0.113.9:8080\n192.0.2.1\n10.1.2.3/16\n",
            &list(1),
        );
        assert_eq!(a.len(), 7);
        let mut csv = list(2);
        csv.format = "csv".into();
        csv.csv_col = Some(2);
        let b = extract("x,192.0.2.1,y\nfirst,198.51.100.7\n", &csv);
        let mut m = BTreeMap::new();
        m.insert(1, a);
        m.insert(2, b);
        let (v4, v6) = detector_files(&m);
        assert_eq!(
            v4,
            "10.0.0.1,1\n10.1.0.0/16,1\n192.0.2.1,3\n198.51.100.0/24,1\n198.51.100.7,2\n203.0.113.9,1;1:8080\n"
        );
        assert_eq!(v6, "2001:db8::1,1\n2001:db8:1::/48,1\n");
    }

    #[test]
    fn config_checks() {
        let ok = "[[blacklist]]\nid = 1\nname = \"a\"\nsource = \"x\"\n";
        let c = Config::parse(ok, "c").unwrap();
        assert_eq!(c.interval, 600);
        for (bad, want) in [
            (
                "[[blacklist]]\nid = 0\nname = \"a\"\nsource = \"x\"\n",
                "not in 1..64",
            ),
            (&format!("{ok}{ok}"), "used twice"),
            (
                "[[blacklist]]\nid = 1\nname = \"a\"\nsource = \"x\"\nformat = \"csv\"\n",
                "csv_col",
            ),
            ("bogus = 1\n", "unknown field"),
        ] {
            let e = Config::parse(bad, "c").unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn atomic_replace_and_file_fetch() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/ip4.blist");
        assert!(replace_file(&p, "1.2.3.4,1\n").unwrap());
        assert!(!replace_file(&p, "1.2.3.4,1\n").unwrap());
        let f = Fetcher::new(Duration::from_secs(1), None).unwrap();
        assert_eq!(
            f.fetch(&format!("file://{}", p.display())).unwrap(),
            "1.2.3.4,1\n"
        );
        assert_eq!(f.fetch(&p.display().to_string()).unwrap(), "1.2.3.4,1\n");
        assert!(f.fetch("/nonexistent/x").is_err());
    }

    #[test]
    fn bad_ca_file_is_a_config_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ca.pem");
        std::fs::write(&p, "not a certificate\n").unwrap();
        let e = Fetcher::new(Duration::from_secs(1), Some(&p))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = Fetcher::new(Duration::from_secs(1), Some(&d.path().join("missing")))
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("ca_file "), "{e}");
    }
}
