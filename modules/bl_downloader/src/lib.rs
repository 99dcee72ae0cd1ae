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
//! Lines that are not addresses are skipped.
//!
//! A download is checked before it replaces a list ([`parse_list`]): a body
//! that fails to download, is not JSON (for a JSON list), is an HTML page
//! (starts with `<`), has more lines (or JSON entries) that are not
//! addresses than ones that are, or has no entries at all keeps the last
//! good list. A list that may really be empty says so with
//! `allow_empty = true`: then a body with no entries (nothing, only
//! comments, or `[]`) empties it. At start-up the last good lists are those
//! of the existing detector files ([`parse_detector_file`]), so a broken
//! feed keeps its list across restarts and `--once` runs too. The detector
//! files are replaced atomically (written next to the target and renamed)
//! only when their text changes.

use detector_common::files::{read_bytes_limited, read_text, ReadError, MAX_FILE_SIZE};
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
    /// The io::Error is in the text, so it is not also a `source()`
    /// (that would print the cause twice under anyhow's `{:#}`).
    #[error("{path}: {err}")]
    Write { path: String, err: std::io::Error },
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A body that is not a list; the last good one is kept.
    #[error("{url}: {err}")]
    List { url: String, err: ListError },
}

/// Why a downloaded body does not replace a list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("not a JSON list ({0})")]
    Json(String),
    #[error("a JSON {0}, not a list of entries")]
    NotArray(&'static str),
    #[error("an HTML page (it starts with `<`), not a list")]
    Html,
    #[error("{bad} of {total} lines are not addresses (line {line}: {text:?})")]
    BadLines {
        bad: usize,
        total: usize,
        line: usize,
        text: String,
    },
    #[error("{bad} of {total} entries have no address under `{key}` (entry {entry})")]
    BadEntries {
        bad: usize,
        total: usize,
        entry: usize,
        key: String,
    },
    #[error("no {family}entries (allow_empty = true lets this list be empty)")]
    Empty { family: &'static str },
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
    /// plaintext, csv (with csv_col) or json (with json_address_key).
    #[serde(default = "plaintext")]
    pub format: String,
    pub csv_col: Option<usize>,
    pub interval: Option<u64>,
    /// 4 or 6: keep only the addresses of this family.
    pub ip_version: Option<u8>,
    /// json: the key of an entry's address.
    pub json_address_key: Option<String>,
    /// json: the key of an entry's port (a port-restricted entry).
    pub json_port_key: Option<String>,
    /// json: the key of an entry's prefix length.
    pub json_prefix_key: Option<String>,
    /// json: keep only entries whose `filter_key` has the text `filter_value`.
    pub filter_key: Option<String>,
    pub filter_value: Option<String>,
    /// A body without entries empties the list (otherwise it keeps the last
    /// good one, as NEMEA's downloader does).
    #[serde(default)]
    pub allow_empty: bool,
}

fn plaintext() -> String {
    "plaintext".into()
}

impl ListConfig {
    /// A plaintext list with nothing but its id, name and source set.
    pub fn new(id: u8, name: String, source: String) -> ListConfig {
        ListConfig {
            id,
            name,
            category: String::new(),
            source,
            format: plaintext(),
            csv_col: None,
            interval: None,
            ip_version: None,
            json_address_key: None,
            json_port_key: None,
            json_prefix_key: None,
            filter_key: None,
            filter_value: None,
            allow_empty: false,
        }
    }
}

impl Config {
    /// Reads a configuration file: NEMEA's bl_downloader XML when it starts
    /// with `<`, TOML otherwise.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let file = path.display().to_string();
        let text = read_text(path)?;
        if text.trim_start().starts_with('<') {
            Config::parse_nemea_xml(&text, &file)
        } else {
            Config::parse(&text, &file)
        }
    }

    /// NEMEA's `bl_downloader_config.xml`: `general` (download_interval in
    /// minutes, socket_timeout), `detector_files` (IP4, IP6) and the
    /// `array type="IP"` of `blacklist_array`. URL/DNS lists are left out
    /// (there is no URL filter); unknown elements are an error.
    pub fn parse_nemea_xml(text: &str, file: &str) -> Result<Config, Error> {
        let doc =
            roxmltree::Document::parse(text).map_err(|e| Error::Config(format!("{file}: {e}")))?;
        let line = |n: roxmltree::Node| doc.text_pos_at(n.range().start).row;
        let bad =
            |n: roxmltree::Node, what: String| Error::Config(format!("{file}:{}: {what}", line(n)));
        let mut c = Config {
            interval: default_interval(),
            timeout: default_timeout(),
            ipv4_file: default_v4(),
            ipv6_file: default_v6(),
            ca_file: None,
            blacklist: Vec::new(),
        };
        let value = |n: roxmltree::Node| n.text().unwrap_or("").trim().to_string();
        let number = |n: roxmltree::Node| -> Result<u64, Error> {
            let v = value(n);
            v.parse()
                .map_err(|_| bad(n, format!("`{v}` is not a whole number")))
        };
        for s in child_elements(doc.root_element()) {
            match s.attribute("name") {
                Some("general") => {
                    for e in child_elements(s) {
                        match e.attribute("name") {
                            Some("download_interval") => c.interval = number(e)? * 60,
                            Some("socket_timeout") => c.timeout = number(e)?,
                            other => {
                                return Err(bad(e, format!("unknown general element {other:?}")))
                            }
                        }
                    }
                }
                Some("detector_files") => {
                    for e in child_elements(s) {
                        match e.attribute("name") {
                            Some("IP4") => c.ipv4_file = PathBuf::from(value(e)),
                            Some("IP6") => c.ipv6_file = PathBuf::from(value(e)),
                            Some("URL" | "DNS") => {}
                            other => {
                                return Err(bad(e, format!("unknown detector file {other:?}")))
                            }
                        }
                    }
                }
                Some("blacklist_array") => {
                    for array in child_elements(s) {
                        if array.attribute("type") != Some("IP") {
                            continue;
                        }
                        for bl in child_elements(array) {
                            c.blacklist.push(xml_list(bl, &value, &bad)?);
                        }
                    }
                }
                other => return Err(bad(s, format!("unknown section {other:?}"))),
            }
        }
        c.check(file)?;
        Ok(c)
    }

    pub fn parse(text: &str, file: &str) -> Result<Config, Error> {
        let c: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default();
            Error::Config(format!("{file}: {}{line}", e.message()))
        })?;
        c.check(file)?;
        Ok(c)
    }

    /// Ids in 1..64 and used once; each format with what it needs.
    fn check(&self, file: &str) -> Result<(), Error> {
        let c = self;
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
            if l.ip_version.is_some_and(|v| v != 4 && v != 6) {
                return Err(Error::Config(format!(
                    "{file}: blacklist {}: ip_version must be 4 or 6",
                    l.name
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
                ("json", _) if l.json_address_key.is_some() => {}
                ("json", _) => {
                    return Err(Error::Config(format!(
                        "{file}: blacklist {}: json needs json_address_key",
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
        Ok(())
    }
}

fn child_elements<'a, 'i>(n: roxmltree::Node<'a, 'i>) -> Vec<roxmltree::Node<'a, 'i>> {
    n.children().filter(|c| c.is_element()).collect()
}

/// One `<struct>` of NEMEA's IP blacklist array.
fn xml_list(
    bl: roxmltree::Node,
    value: &dyn Fn(roxmltree::Node) -> String,
    bad: &dyn Fn(roxmltree::Node, String) -> Error,
) -> Result<ListConfig, Error> {
    let mut l = ListConfig::new(0, String::new(), String::new());
    for e in child_elements(bl) {
        let v = value(e);
        let num = |what: &str| -> Result<u64, Error> {
            v.parse()
                .map_err(|_| bad(e, format!("{what}: `{v}` is not a whole number")))
        };
        match e.attribute("name").unwrap_or("") {
            "id" => {
                l.id = u8::try_from(num("id")?)
                    .map_err(|_| bad(e, format!("id {v} is not in 1..64")))?
            }
            "name" => l.name = v,
            "category" => l.category = v,
            "source" => l.source = v,
            "file_format" => l.format = v.to_ascii_lowercase(),
            "csv_col" => l.csv_col = Some(num("csv_col")? as usize),
            "download_interval" => l.interval = Some(num("download_interval")? * 60),
            "ip_version" => l.ip_version = Some(u8::try_from(num("ip_version")?).unwrap_or(0)),
            "json_address_key" => l.json_address_key = Some(v),
            "json_port_key" => l.json_port_key = Some(v),
            "json_prefix_key" => l.json_prefix_key = Some(v),
            "filter_key" => l.filter_key = Some(v),
            "filter_value" => l.filter_value = Some(v),
            "allow_empty" => {
                l.allow_empty = match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(bad(e, format!("allow_empty: `{v}` is not true or false"))),
                }
            }
            // Only web downloads exist.
            "method" => {}
            other => return Err(bad(e, format!("unknown blacklist element `{other}`"))),
        }
    }
    if l.name.is_empty() || l.source.is_empty() {
        return Err(bad(bl, "a blacklist needs a name and a source".into()));
    }
    Ok(l)
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

/// The entities of a downloaded list (only those of `ip_version` when set),
/// or why the body does not replace the list: see the module doc.
pub fn parse_list(text: &str, l: &ListConfig) -> Result<Vec<Entity>, ListError> {
    let mut out = if l.format == "json" {
        parse_json(text, l)?
    } else {
        parse_lines(text, l)?
    };
    let family = match l.ip_version {
        Some(4) => {
            out.retain(|e| e.addr.is_ipv4());
            "IPv4 "
        }
        Some(6) => {
            out.retain(|e| e.addr.is_ipv6());
            "IPv6 "
        }
        _ => "",
    };
    if out.is_empty() && !l.allow_empty {
        return Err(ListError::Empty { family });
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A JSON list: an array of objects with the address (and optionally the
/// port and the prefix length) under the configured keys. Unlike NEMEA's
/// downloader, which then keeps nothing, a list without a filter keeps
/// every entry. Entries the filter leaves out are not counted; more of the
/// others without a valid address than with one is a broken list.
fn parse_json(text: &str, l: &ListConfig) -> Result<Vec<Entity>, ListError> {
    use serde_json::Value;
    let entries = match serde_json::from_str(text) {
        Ok(Value::Array(entries)) => entries,
        Ok(other) => {
            return Err(ListError::NotArray(match other {
                Value::Object(_) => "object",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "boolean",
                _ => "null",
            }))
        }
        Err(e) => return Err(ListError::Json(e.to_string())),
    };
    let text_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let key = |k: &Option<String>, e: &Value| k.as_deref().and_then(|k| e.get(k)).map(text_of);
    let mut out = Vec::new();
    let (mut total, mut bad, mut first_bad) = (0, 0, 0);
    for (i, e) in entries.iter().enumerate() {
        if let (Some(_), Some(want)) = (&l.filter_key, &l.filter_value) {
            if key(&l.filter_key, e).as_deref() != Some(want.as_str()) {
                continue;
            }
        }
        total += 1;
        let ent = key(&l.json_address_key, e).and_then(|addr| {
            let word = match key(&l.json_prefix_key, e) {
                Some(p) if p != "32" && p != "128" => format!("{addr}/{p}"),
                _ => addr,
            };
            parse_entity(&word)
        });
        let Some(mut ent) = ent else {
            bad += 1;
            if bad == 1 {
                first_bad = i + 1;
            }
            continue;
        };
        if let Some(port) = key(&l.json_port_key, e).and_then(|p| p.parse().ok()) {
            if ent.prefix == if ent.addr.is_ipv4() { 32 } else { 128 } {
                ent.port = Some(port);
            }
        }
        out.push(ent);
    }
    if bad > out.len() {
        return Err(ListError::BadEntries {
            bad,
            total,
            entry: first_bad,
            key: l.json_address_key.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// A plaintext or csv list; more lines (other than blank lines and
/// comments) that are not addresses than ones that are is a broken list.
fn parse_lines(text: &str, l: &ListConfig) -> Result<Vec<Entity>, ListError> {
    if text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('<')
    {
        return Err(ListError::Html);
    }
    let mut out = Vec::new();
    let (mut total, mut bad) = (0, 0);
    let mut first_bad = (0, String::new());
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) || line.starts_with("//") {
            continue;
        }
        total += 1;
        let word = match (l.format.as_str(), l.csv_col) {
            ("csv", Some(c)) => line.split(',').nth(c.saturating_sub(1)).unwrap_or(""),
            _ => line.split([' ', '\t', ',', ';', '#']).next().unwrap_or(""),
        };
        match parse_entity(word) {
            Some(e) => out.push(e),
            None => {
                bad += 1;
                if bad == 1 {
                    first_bad = (n + 1, line.chars().take(40).collect());
                }
            }
        }
    }
    if bad > out.len() {
        return Err(ListError::BadLines {
            bad,
            total,
            line: first_bad.0,
            text: first_bad.1,
        });
    }
    Ok(out)
}

/// The lists in a detector file this program wrote (`entity,bitmap` with
/// optional `;id:port,port` groups): each list's entities, by id. Lines
/// that do not read so are skipped (the file is only a starting point).
pub fn parse_detector_file(text: &str) -> BTreeMap<u8, Vec<Entity>> {
    let mut lists: BTreeMap<u8, Vec<Entity>> = BTreeMap::new();
    for line in text.lines() {
        let mut groups = line.trim().split(';');
        let Some((word, bitmap)) = groups.next().and_then(|h| h.split_once(',')) else {
            continue;
        };
        let (Some(ent), Ok(bitmap)) = (parse_entity(word), bitmap.trim().parse::<u64>()) else {
            continue;
        };
        let mut ports: BTreeMap<u8, Vec<u16>> = BTreeMap::new();
        for g in groups {
            let Some((id, list)) = g.split_once(':') else {
                continue;
            };
            let Ok(id) = id.trim().parse::<u8>() else {
                continue;
            };
            let p = ports.entry(id).or_default();
            p.extend(list.split(',').filter_map(|p| p.trim().parse::<u16>().ok()));
        }
        for bit in 0..64u8 {
            if bitmap & (1 << bit) == 0 {
                continue;
            }
            let id = bit + 1;
            let list = lists.entry(id).or_default();
            match ports.get(&id).filter(|p| !p.is_empty()) {
                Some(ps) => list.extend(ps.iter().map(|&p| Entity {
                    port: Some(p),
                    ..ent
                })),
                None => list.push(Entity { port: None, ..ent }),
            }
        }
    }
    for ents in lists.values_mut() {
        ents.sort_unstable();
        ents.dedup();
    }
    lists
}

/// One detector-file line: the bitmap and the port lists per blacklist id.
type Line = (u64, BTreeMap<u8, Vec<u16>>);

/// The detector file texts (IPv4, IPv6) for the lists' current entities.
pub fn detector_files(lists: &BTreeMap<u8, Vec<Entity>>) -> (String, String) {
    // (addr, prefix) → (bitmap, id → ports)
    let mut m: BTreeMap<(IpAddr, u8), Line> = BTreeMap::new();
    for (&id, ents) in lists {
        // Addresses a list has without a port: all their ports match, so a
        // port-restricted entry of the same list adds nothing.
        let whole: std::collections::BTreeSet<(IpAddr, u8)> = ents
            .iter()
            .filter(|e| e.port.is_none())
            .map(|e| (e.addr, e.prefix))
            .collect();
        for e in ents {
            let slot = m.entry((e.addr, e.prefix)).or_default();
            slot.0 |= 1u64 << (id - 1);
            match e.port {
                Some(p) if !whole.contains(&(e.addr, e.prefix)) => {
                    slot.1.entry(id).or_default().push(p)
                }
                _ => {}
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

/// The per-list files of NEMEA's `--repo-path` copy: for each list,
/// `ip4/<name>.blist` and `ip6/<name>.blist` (path, text), one
/// `entity:ports` line per address or prefix (ports comma-separated, empty
/// for the whole address).
pub fn repo_files(
    lists: &BTreeMap<u8, Vec<Entity>>,
    names: &BTreeMap<u8, String>,
) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for (id, ents) in lists {
        let Some(name) = names.get(id) else { continue };
        // A list name is a file name here: keep it inside the repository.
        let name = name.replace(['/', '\\', '\0'], "_");
        for (dir, v4) in [("ip4", true), ("ip6", false)] {
            let mut ports: BTreeMap<(IpAddr, u8), Vec<u16>> = BTreeMap::new();
            for e in ents.iter().filter(|e| e.addr.is_ipv4() == v4) {
                let p = ports.entry((e.addr, e.prefix)).or_default();
                p.extend(e.port);
            }
            let full = if v4 { 32 } else { 128 };
            let mut text = String::new();
            for ((addr, prefix), mut p) in ports {
                p.sort_unstable();
                p.dedup();
                let list: Vec<String> = p.iter().map(u16::to_string).collect();
                if prefix == full {
                    text.push_str(&format!("{addr}:{}\n", list.join(",")));
                } else {
                    text.push_str(&format!("{addr}/{prefix}:{}\n", list.join(",")));
                }
            }
            out.push((PathBuf::from(dir).join(format!("{name}.blist")), text));
        }
    }
    out
}

/// Writes `text` to `path` atomically (a temporary file in the same
/// directory, then rename). Returns false when the file already had it.
pub fn replace_file(path: &Path, text: &str) -> Result<bool, Error> {
    // (Read no more than could match, whatever the file is.)
    if read_bytes_limited(path, text.len() as u64 + 1).is_ok_and(|old| old == text.as_bytes()) {
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
const MAX_BODY: u64 = MAX_FILE_SIZE;

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

    /// The text of `source` (invalid UTF-8 replaced; at most 256 MiB).
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
        let body = read_bytes_limited(Path::new(path), MAX_BODY)?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// The CA certificates of a PEM file (at least one).
fn read_ca_file(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, Error> {
    let bad = |detail: String| Error::Config(format!("ca_file {}: {detail}", path.display()));
    let pem = read_bytes_limited(path, MAX_FILE_SIZE)
        .map_err(|e| Error::Config(format!("ca_file: {e}")))?;
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

    #[test]
    fn errors_say_their_cause_once() {
        use std::error::Error as _;
        let e = Error::Write {
            path: "x".into(),
            err: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(e.to_string(), "x: permission denied");
        assert!(e.source().is_none());
    }

    fn list(id: u8) -> ListConfig {
        ListConfig::new(id, format!("l{id}"), String::new())
    }

    /// Emerging Threats' `emerging-Block-IPs.txt`: a comment header, blank
    /// lines, section comments, plain addresses and CIDR prefixes (Spamhaus
    /// DROP nets among them), Windows line ends in some mirrors.
    #[test]
    fn emerging_threats_block_list() {
        let et = "#\n# Emerging Threats - Block Rules\n#\n# Rev 4711 (2026-12-03)\n#\n\n\
                  #  Spamhaus DROP Nets\n192.0.2.0/24\n198.51.100.128/25\n\n\
                  #  Dshield Top Attackers\n203.0.113.5\r\n203.0.113.77\n  \n\
                  #  Feodo\n203.0.113.5\n\n";
        let ents = parse_list(et, &list(3)).unwrap();
        let text: Vec<String> = ents
            .iter()
            .map(|e| format!("{}/{}", e.addr, e.prefix))
            .collect();
        assert_eq!(
            text,
            [
                "192.0.2.0/24",
                "198.51.100.128/25",
                "203.0.113.5/32",
                "203.0.113.77/32"
            ]
        );
        let mut m = BTreeMap::new();
        m.insert(3, ents);
        let (v4, v6) = detector_files(&m);
        assert_eq!(
            v4,
            "192.0.2.0/24,4\n198.51.100.128/25,4\n203.0.113.5,4\n203.0.113.77,4\n"
        );
        assert_eq!(v6, "");
        // The same feed answered by an error page or cut to its comments is
        // refused (the last good list stays).
        assert_eq!(
            parse_list("<html><body>502 Bad Gateway</body></html>", &list(3)),
            Err(ListError::Html)
        );
        assert_eq!(
            parse_list("#\n# Emerging Threats - Block Rules\n#\n\n", &list(3)),
            Err(ListError::Empty { family: "" })
        );
    }

    #[test]
    fn extraction_and_files() {
        let a = parse_list(
            "# comment\n192.0.2.1\n198.51.100.0/24 some text\n10.0.0.1/32\nnot an ip\n\
             2001:db8::1/128\n2001:db8:1::/48\n203.0.113.9:8080\n192.0.2.1\n10.1.2.3/16\n",
            &list(1),
        )
        .unwrap();
        assert_eq!(a.len(), 7);
        let mut csv = list(2);
        csv.format = "csv".into();
        csv.csv_col = Some(2);
        let b = parse_list("x,192.0.2.1,y\nfirst,198.51.100.7\n", &csv).unwrap();
        let mut m = BTreeMap::new();
        m.insert(1, a);
        m.insert(2, b);
        let (v4, v6) = detector_files(&m);
        assert_eq!(
            v4,
            "10.0.0.1,1\n10.1.0.0/16,1\n192.0.2.1,3\n198.51.100.0/24,1\n198.51.100.7,2\n203.0.113.9,1;1:8080\n"
        );
        assert_eq!(v6, "2001:db8::1,1\n2001:db8:1::/48,1\n");
        // A whole address and a port of it on one list: every port matches.
        let c = parse_list("203.0.113.9:8080\n203.0.113.9\n", &list(4)).unwrap();
        let (v4, _) = detector_files(&BTreeMap::from([(4, c)]));
        assert_eq!(v4, "203.0.113.9,8\n");
    }

    const NEMEA_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration>
    <struct name="general">
        <element name="download_interval">10</element>
        <element name="socket_timeout">7</element>
    </struct>
    <struct name="detector_files">
        <element name="IP4">/var/bl/ip4.blist</element>
        <element name="IP6">/var/bl/ip6.blist</element>
        <element name="URL">/var/bl/url.blist</element>
        <element name="DNS">/var/bl/dns.blist</element>
    </struct>
    <struct name="blacklist_array">
        <array type="IP">
            <struct>
                <!-- a comment -->
                <element name="id">1</element>
                <element name="category">Intrusion.Botnet</element>
                <element name="method">web</element>
                <element name="name">Feodo Tracker</element>
                <element name="file_format">plaintext</element>
                <element name="source">https://feodotracker.abuse.ch/downloads/ipblocklist.txt</element>
                <element name="download_interval">10</element>
                <element name="ip_version">4</element>
            </struct>
            <struct>
                <element name="id">5</element>
                <element name="category">Intrusion.Botnet</element>
                <element name="method">web</element>
                <element name="name">ThreatFox</element>
                <element name="file_format">JSON</element>
                <element name="json_address_key">ip</element>
                <element name="json_port_key">port</element>
                <element name="filter_key">status</element>
                <element name="filter_value">online</element>
                <element name="source">https://example.org/threatfox.json</element>
                <element name="download_interval">60</element>
                <element name="ip_version">4</element>
            </struct>
        </array>
        <array type="URL/DNS">
            <struct>
                <element name="id">1</element>
                <element name="name">PhishTank</element>
                <element name="source">http://example.org/urls</element>
            </struct>
        </array>
    </struct>
</configuration>
"#;

    #[test]
    fn nemea_xml_config() {
        let c = Config::parse_nemea_xml(NEMEA_XML, "bl.xml").unwrap();
        assert_eq!((c.interval, c.timeout), (600, 7));
        assert_eq!(c.ipv4_file, PathBuf::from("/var/bl/ip4.blist"));
        assert_eq!(c.ipv6_file, PathBuf::from("/var/bl/ip6.blist"));
        assert_eq!(c.blacklist.len(), 2, "URL/DNS lists are left out");
        let (feodo, tfox) = (&c.blacklist[0], &c.blacklist[1]);
        assert_eq!((feodo.id, feodo.name.as_str()), (1, "Feodo Tracker"));
        assert_eq!(feodo.category, "Intrusion.Botnet");
        assert_eq!(feodo.interval, Some(600));
        assert_eq!(feodo.ip_version, Some(4));
        assert_eq!(tfox.format, "json");
        // ip_version 4 drops the IPv6 address of a list.
        assert_eq!(
            parse_list("192.0.2.1\n2001:db8::1\n", feodo).unwrap(),
            [Entity {
                addr: "192.0.2.1".parse().unwrap(),
                prefix: 32,
                port: None
            }]
        );
        let json = r#"[{"ip": "198.51.100.7", "port": 443, "status": "online"},
            {"ip": "198.51.100.8", "port": "8080", "status": "offline"},
            {"ip": "198.51.100.9", "status": "online"},
            {"ip": "not an ip", "status": "online"}, 5]"#;
        let got: Vec<String> = parse_list(json, tfox)
            .unwrap()
            .iter()
            .map(|e| format!("{}:{:?}", e.addr, e.port))
            .collect();
        assert_eq!(got, ["198.51.100.7:Some(443)", "198.51.100.9:None"]);
        assert!(parse_list("{not json", tfox).is_err());

        for (bad, want) in [
            ("<configuration><struct name=\"x\"/></configuration>", "bl.xml:1: unknown section"),
            ("<configuration>", "bl.xml: "),
            (
                "<configuration><struct name=\"blacklist_array\"><array type=\"IP\"><struct>\n<element name=\"id\">x</element></struct></array></struct></configuration>",
                "bl.xml:2: id: `x` is not a whole number",
            ),
            (
                "<configuration><struct name=\"blacklist_array\"><array type=\"IP\"><struct><element name=\"colour\">x</element></struct></array></struct></configuration>",
                "unknown blacklist element `colour`",
            ),
        ] {
            let e = Config::parse_nemea_xml(bad, "bl.xml").unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn repo_copy_files() {
        let mut l = list(1);
        let ents = parse_list(
            "192.0.2.1\n192.0.2.1:80\n192.0.2.1:443\n10.0.0.0/8\n2001:db8::/32\n",
            &l,
        )
        .unwrap();
        l.name = "a/b".into();
        let lists = BTreeMap::from([(1u8, ents)]);
        let names = BTreeMap::from([(1u8, l.name.clone())]);
        let files = repo_files(&lists, &names);
        assert_eq!(
            files,
            [
                (
                    PathBuf::from("ip4/a_b.blist"),
                    "10.0.0.0/8:\n192.0.2.1:80,443\n".to_string()
                ),
                (
                    PathBuf::from("ip6/a_b.blist"),
                    "2001:db8::/32:\n".to_string()
                ),
            ]
        );
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
        assert!(e.starts_with("ca_file: cannot read "), "{e}");
    }

    /// Issue 16, finding 2: a broken feed parsed to "0 entities" and the
    /// list was rewritten empty. Each of these bodies is refused, naming why.
    #[test]
    fn broken_bodies_are_refused() {
        let mut json = list(5);
        json.format = "json".into();
        json.json_address_key = Some("ip".into());
        let mut csv = list(6);
        csv.format = "csv".into();
        csv.csv_col = Some(2);
        let html = "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n\
                    <body>Try again later</body></html>\n";
        for (body, l, want) in [
            (
                r#"[{"ip": "60.0.0.1"}, {"ip": "60.0.0.2""#,
                &json,
                "not a JSON list (EOF while parsing an object at line 1 column 38)",
            ),
            (
                r#"{"error": "quota"}"#,
                &json,
                "a JSON object, not a list of entries",
            ),
            (
                html,
                &json,
                "not a JSON list (expected value at line 1 column 1)",
            ),
            (
                html,
                &list(1),
                "an HTML page (it starts with `<`), not a list",
            ),
            (
                "\u{feff}  \n<html>",
                &csv,
                "an HTML page (it starts with `<`), not a list",
            ),
            (
                "Service temporarily unavailable\n",
                &list(1),
                "1 of 1 lines are not addresses (line 1: \"Service temporarily unavailable\")",
            ),
            (
                "# list\n192.0.2.1\nerror: quota\nexceeded\n",
                &list(1),
                "2 of 3 lines are not addresses (line 3: \"error: quota\")",
            ),
            (
                "a,b\nc,d\n",
                &csv,
                "2 of 2 lines are not addresses (line 1: \"a,b\")",
            ),
            (
                r#"[{"ip": "60.0.0.1"}, {"addr": "60.0.0.2"}, {"ip": "x"}]"#,
                &json,
                "2 of 3 entries have no address under `ip` (entry 2)",
            ),
            (
                "",
                &list(1),
                "no entries (allow_empty = true lets this list be empty)",
            ),
            ("# nothing listed today\n", &list(1), "no entries"),
            ("[]", &json, "no entries"),
            (
                "2001:db8::1\n",
                &{
                    let mut l = list(1);
                    l.ip_version = Some(4);
                    l
                },
                "no IPv4 entries",
            ),
        ] {
            let e = parse_list(body, l).unwrap_err().to_string();
            assert!(e.starts_with(want), "{body:?}: {e}");
        }
        // A line of garbage among more addresses is skipped, as before.
        assert_eq!(parse_list("ip\n192.0.2.1\n", &list(1)).unwrap().len(), 1);
        // With allow_empty, a body without entries (but no garbage) is an
        // empty list; garbage is still refused.
        let mut empty = list(1);
        empty.allow_empty = true;
        assert_eq!(parse_list("", &empty), Ok(vec![]));
        assert_eq!(parse_list("# none\n\n", &empty), Ok(vec![]));
        assert!(parse_list("<html>", &empty).is_err());
        assert!(parse_list("oops\n", &empty).is_err());
        json.allow_empty = true;
        assert_eq!(parse_list("[]", &json), Ok(vec![]));
        assert!(parse_list("[", &json).is_err());
        // The allow_empty element of NEMEA's XML.
        let xml = NEMEA_XML.replacen(
            "<element name=\"ip_version\">4</element>\n            </struct>",
            "<element name=\"ip_version\">4</element>\n<element name=\"allow_empty\">true</element></struct>",
            1,
        );
        let c = Config::parse_nemea_xml(&xml, "bl.xml").unwrap();
        assert!(c.blacklist[0].allow_empty && !c.blacklist[1].allow_empty);
        let c = Config::parse(
            "[[blacklist]]\nid = 1\nname = \"a\"\nsource = \"x\"\nallow_empty = true\n",
            "c",
        )
        .unwrap();
        assert!(c.blacklist[0].allow_empty);
    }

    #[test]
    fn detector_files_read_back() {
        let a = parse_list(
            "192.0.2.1\n10.0.0.0/8\n203.0.113.9:8080\n203.0.113.9:443\n2001:db8::/32\n",
            &list(1),
        )
        .unwrap();
        let b = parse_list("192.0.2.1\n203.0.113.9\n2001:db8::1\n", &list(64)).unwrap();
        let lists = BTreeMap::from([(1, a), (64, b)]);
        let (v4, v6) = detector_files(&lists);
        let mut back = parse_detector_file(&v4);
        for (id, ents) in parse_detector_file(&v6) {
            back.entry(id).or_default().extend(ents);
        }
        for ents in back.values_mut() {
            ents.sort_unstable();
        }
        assert_eq!(back, lists);
        // Lines that do not read are skipped.
        let got = parse_detector_file("junk\n300.0.0.1,1\n192.0.2.1,x\n192.0.2.2,2;2:80,x\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[&2][0].port, Some(80));
    }

    /// Issue 16, finding 10: a file:// list of /dev/zero was read until
    /// memory ran out.
    #[test]
    fn file_sources_are_bounded() {
        let f = Fetcher::new(Duration::from_secs(1), None).unwrap();
        let e = f.fetch("file:///dev/zero").unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot read /dev/zero: larger than 256 MiB (the limit for a file read into memory)"
        );
        let e = Config::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read /dev/zero: larger than 256 MiB"),
            "{e}"
        );
        let d = tempfile::tempdir().unwrap();
        let e = f
            .fetch(&d.path().display().to_string())
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("a directory, not a file"), "{e}");
    }
}
