//! The status page (`supervisor --http ADDR`): what it serves and the pure
//! parts behind it — the ring of records/s samples per module, interface
//! rates from successive service-interface counters, the JSON documents
//! (`/api/status`, `/api/history`), routing of request targets and the
//! checks a control request must pass. The sockets are in `daemon.rs`,
//! which serves these with the metrics port's limits.
//!
//! The page (`web/index.html`, `web/status.js`, `web/style.css`) is compiled
//! into the binary: no CDN, no framework; the script polls the two JSON
//! documents and draws the plot as inline SVG.

use crate::status::{IfcStats, ModuleView, ProfileView};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Samples kept per module: five minutes at the supervisor's one poll a
/// second.
pub const HISTORY_LEN: usize = 300;

/// The page itself.
pub const INDEX_HTML: &str = include_str!("web/index.html");
/// Its script: polls `/api/status` and `/api/history`, renders the tables
/// and the SVG plot.
pub const STATUS_JS: &str = include_str!("web/status.js");
pub const STYLE_CSS: &str = include_str!("web/style.css");

/// Longest module or profile name a control request may carry.
const MAX_NAME: usize = 256;

/// Messages per second of each interface of a module over the last poll
/// period (inputs: received, outputs: sent), in the service interface's
/// order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Rates {
    pub inputs: Vec<f64>,
    pub outputs: Vec<f64>,
}

impl Rates {
    /// The module's records/s: what it received, or what it sent when it has
    /// no input (a generator, a collector).
    pub fn records(&self) -> f64 {
        if self.inputs.is_empty() {
            self.outputs.iter().sum()
        } else {
            self.inputs.iter().sum()
        }
    }
}

/// Rates between two readings of one process's counters `dt` apart; `None`
/// when they cannot be compared (no time passed, other interfaces, a counter
/// that went back).
pub fn rates(prev: &IfcStats, cur: &IfcStats, dt: Duration) -> Option<Rates> {
    let secs = dt.as_secs_f64();
    if secs <= 0.0
        || prev.inputs.len() != cur.inputs.len()
        || prev.outputs.len() != cur.outputs.len()
    {
        return None;
    }
    let per_s = |a: u64, b: u64| b.checked_sub(a).map(|d| d as f64 / secs);
    Some(Rates {
        inputs: prev
            .inputs
            .iter()
            .zip(&cur.inputs)
            .map(|(a, b)| per_s(a.messages, b.messages))
            .collect::<Option<_>>()?,
        outputs: prev
            .outputs
            .iter()
            .zip(&cur.outputs)
            .map(|(a, b)| per_s(a.sent, b.sent))
            .collect::<Option<_>>()?,
    })
}

/// One point of the plot: a module's records/s over the period ending at
/// `t` (ms since the Unix epoch).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Sample {
    pub t: u64,
    pub rate: f64,
}

#[derive(Debug, Default)]
struct Track {
    /// The last reading: PID, when, counters.
    base: Option<(i32, Instant, IfcStats)>,
    rates: Option<Rates>,
    samples: VecDeque<Sample>,
}

/// Per module, the rates of the last period and a bounded ring of
/// records/s samples.
#[derive(Debug)]
pub struct History {
    tracks: HashMap<String, Track>,
    capacity: usize,
}

impl Default for History {
    fn default() -> Self {
        History::new(HISTORY_LEN)
    }
}

impl History {
    pub fn new(capacity: usize) -> History {
        History {
            tracks: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// One poll of module `name` at `at` (`unix_ms` for the plot): `pid` 0
    /// when it does not run (a sample of 0), `stats` its service interface's
    /// answer (`None`: none this time, no sample). A rate needs an earlier
    /// reading of the same process: a restarted module's first poll only
    /// sets the base.
    pub fn record(
        &mut self,
        name: &str,
        pid: i32,
        stats: Option<&IfcStats>,
        at: Instant,
        unix_ms: u64,
    ) {
        let track = match self.tracks.get_mut(name) {
            Some(t) => t,
            None => self.tracks.entry(name.to_string()).or_default(),
        };
        let sample = if pid <= 0 {
            track.base = None;
            track.rates = None;
            Some(0.0)
        } else if let Some(cur) = stats {
            track.rates = match &track.base {
                Some((p, t0, prev)) if *p == pid => rates(prev, cur, at.duration_since(*t0)),
                _ => None,
            };
            track.base = Some((pid, at, cur.clone()));
            track.rates.as_ref().map(Rates::records)
        } else {
            // Not answering this time: the next answer is compared with
            // the last one over the longer period.
            track.rates = None;
            None
        };
        if let Some(rate) = sample {
            if track.samples.len() == self.capacity {
                track.samples.pop_front();
            }
            track.samples.push_back(Sample { t: unix_ms, rate });
        }
    }

    /// The rates of the last period, while known.
    pub fn rates(&self, name: &str) -> Option<&Rates> {
        self.tracks.get(name)?.rates.as_ref()
    }

    /// The samples of a module, oldest first.
    pub fn samples(&self, name: &str) -> impl Iterator<Item = &Sample> {
        self.tracks
            .get(name)
            .into_iter()
            .flat_map(|t| t.samples.iter())
    }

    /// Forgets the modules a reload removed.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.tracks.retain(|name, _| keep(name));
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// What the status document says about the supervisor itself.
#[derive(Clone, Debug, Serialize)]
pub struct PageInfo<'a> {
    pub version: &'static str,
    pub pid: u32,
    pub started: &'a str,
    /// Whether the start/stop/restart endpoints are enabled (`--http-control`).
    pub control: bool,
    /// Seconds between two polls of the modules (between two samples).
    pub period_s: f64,
}

#[derive(Serialize)]
struct StatusDoc<'a> {
    supervisor: &'a PageInfo<'a>,
    profiles: Vec<ProfileDoc<'a>>,
}

#[derive(Serialize)]
struct ProfileDoc<'a> {
    name: &'a str,
    enabled: bool,
    modules: Vec<ModuleDoc<'a>>,
}

#[derive(Serialize)]
struct ModuleDoc<'a> {
    idx: usize,
    name: &'a str,
    enabled: bool,
    /// `running` or `stopped`.
    state: &'static str,
    pid: i32,
    restarts: u64,
    /// Why it does not run (see `ModuleView::reason`).
    reason: Option<&'a str>,
    cpu_user: u64,
    cpu_system: u64,
    mem_vms: u64,
    mem_rss: u64,
    /// The service interface answered the last poll.
    service: bool,
    records_per_s: Option<f64>,
    inputs: Vec<InDoc<'a>>,
    outputs: Vec<OutDoc<'a>>,
}

#[derive(Serialize)]
struct InDoc<'a> {
    #[serde(rename = "type")]
    kind: String,
    id: &'a str,
    connected: bool,
    messages: u64,
    buffers: u64,
    rate: Option<f64>,
}

#[derive(Serialize)]
struct OutDoc<'a> {
    #[serde(rename = "type")]
    kind: String,
    id: &'a str,
    clients: u64,
    sent: u64,
    dropped: u64,
    buffers: u64,
    autoflushes: u64,
    rate: Option<f64>,
}

/// Three decimals are plenty for messages per second.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn module_doc<'a>(m: &'a ModuleView, history: &History) -> ModuleDoc<'a> {
    let rates = if m.running {
        history.rates(&m.module.name)
    } else {
        None
    };
    let stats = m.stats.as_ref().filter(|_| m.running);
    let rate = |list: Option<&Vec<f64>>, i: usize| list.and_then(|l| l.get(i)).copied().map(round);
    ModuleDoc {
        idx: m.idx,
        name: &m.module.name,
        enabled: m.enabled,
        state: if m.running { "running" } else { "stopped" },
        pid: if m.running { m.pid } else { 0 },
        restarts: m.restarts,
        reason: m.reason.as_deref().filter(|_| !m.running),
        cpu_user: m.cpu_user,
        cpu_system: m.cpu_system,
        mem_vms: m.mem_vms,
        mem_rss: m.mem_rss,
        service: stats.is_some(),
        records_per_s: if m.running {
            rates.map(|r| round(r.records()))
        } else {
            Some(0.0)
        },
        inputs: stats
            .iter()
            .flat_map(|s| s.inputs.iter())
            .enumerate()
            .map(|(n, i)| InDoc {
                kind: i.kind.to_string(),
                id: &i.id,
                connected: i.connected,
                messages: i.messages,
                buffers: i.buffers,
                rate: rate(rates.map(|r| &r.inputs), n),
            })
            .collect(),
        outputs: stats
            .iter()
            .flat_map(|s| s.outputs.iter())
            .enumerate()
            .map(|(n, o)| OutDoc {
                kind: o.kind.to_string(),
                id: &o.id,
                clients: o.clients,
                sent: o.sent,
                dropped: o.dropped,
                buffers: o.buffers,
                autoflushes: o.autoflushes,
                rate: rate(rates.map(|r| &r.outputs), n),
            })
            .collect(),
    }
}

/// `/api/status`: the supervisor, then each profile with its modules (the
/// `supcli status` table with restarts, CPU, memory) and their interfaces
/// with counters and rates.
pub fn status_json(
    info: &PageInfo,
    profiles: &[ProfileView],
    modules: &[ModuleView],
    history: &History,
) -> String {
    let doc = StatusDoc {
        supervisor: info,
        profiles: profiles
            .iter()
            .enumerate()
            .map(|(pi, p)| ProfileDoc {
                name: &p.name,
                enabled: p.enabled,
                modules: modules
                    .iter()
                    .filter(|m| m.profile == pi)
                    .map(|m| module_doc(m, history))
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&doc).unwrap_or_else(|e| format!("{{\"error\": {}}}", e))
}

#[derive(Serialize)]
struct HistoryDoc<'a> {
    /// ms since the Unix epoch, on the samples' clock.
    now: u64,
    period_s: f64,
    capacity: usize,
    modules: Vec<ModuleHistory<'a>>,
}

#[derive(Serialize)]
struct ModuleHistory<'a> {
    name: &'a str,
    /// `[t, records/s]` pairs, oldest first.
    samples: Vec<(u64, f64)>,
}

/// `/api/history`: every configured module's samples, in configuration order.
pub fn history_json(
    now_ms: u64,
    period_s: f64,
    modules: &[ModuleView],
    history: &History,
) -> String {
    let doc = HistoryDoc {
        now: now_ms,
        period_s,
        capacity: history.capacity(),
        modules: modules
            .iter()
            .map(|m| ModuleHistory {
                name: &m.module.name,
                samples: history
                    .samples(&m.module.name)
                    .map(|s| (s.t, round(s.rate)))
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&doc).unwrap_or_else(|e| format!("{{\"error\": {}}}", e))
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Asset {
        content_type: &'static str,
        body: &'static str,
    },
    Status,
    History,
    /// The Prometheus text, as on `--metrics`.
    Metrics,
    /// `POST /api/{start,stop,restart}/NAME` (NAME percent-encoded): a
    /// module or a profile.
    Control {
        verb: &'static str,
        name: String,
    },
    NotFound,
    /// A known path with another method than the one it takes.
    WrongMethod {
        allow: &'static str,
    },
    BadRequest(&'static str),
}

const VERBS: [&str; 3] = ["start", "stop", "restart"];

/// Routes a request line's method and target (`/path?query`; the query is
/// ignored).
pub fn route(method: &str, target: &str) -> Route {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let get = |r: Route| {
        if method == "GET" {
            r
        } else {
            Route::WrongMethod { allow: "GET" }
        }
    };
    let asset = |content_type, body| Route::Asset { content_type, body };
    match path {
        "/" | "/index.html" => get(asset("text/html; charset=utf-8", INDEX_HTML)),
        "/status.js" => get(asset("text/javascript; charset=utf-8", STATUS_JS)),
        "/style.css" => get(asset("text/css; charset=utf-8", STYLE_CSS)),
        "/api/status" => get(Route::Status),
        "/api/history" => get(Route::History),
        "/metrics" => get(Route::Metrics),
        _ => {
            let Some(rest) = path.strip_prefix("/api/") else {
                return Route::NotFound;
            };
            let Some((verb, name)) = rest.split_once('/') else {
                return Route::NotFound;
            };
            let Some(verb) = VERBS.into_iter().find(|v| *v == verb) else {
                return Route::NotFound;
            };
            if method != "POST" {
                return Route::WrongMethod { allow: "POST" };
            }
            match percent_decode(name) {
                Some(name)
                    if !name.is_empty()
                        && name.len() <= MAX_NAME
                        && !name.chars().any(char::is_control) =>
                {
                    Route::Control { verb, name }
                }
                _ => Route::BadRequest("the module name is not valid percent-encoded UTF-8 (at most 256 bytes, no control characters)\n"),
            }
        }
    }
}

/// Decodes `%XX` escapes of a path segment; `None` for a bad escape or
/// bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let digit = |j: usize| b.get(j).and_then(|&c| char::from(c).to_digit(16));
            out.push((digit(i + 1)? * 16 + digit(i + 2)?) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The header the page's script sends with a control request. A page of
/// another site cannot send it without the browser asking first (a CORS
/// preflight, which this server never grants).
pub const CONTROL_HEADER: &str = "X-Nemea-Control";

/// Whether a control request (its whole head) may act: it carries
/// [`CONTROL_HEADER`], names the server by an IP address or `localhost`
/// (a name could be rebound to this address by someone else's DNS), and,
/// when the browser says where it comes from, comes from this page.
pub fn control_allowed(head: &[u8]) -> Result<(), &'static str> {
    use crate::net::http_header;
    if http_header(head, CONTROL_HEADER).is_none() {
        return Err("control requests carry the X-Nemea-Control header (the status page's buttons send it)\n");
    }
    let Some(host) = http_header(head, "Host").filter(|h| !h.is_empty()) else {
        return Err("control requests need a Host header\n");
    };
    if !host_is_address(host) {
        return Err(
            "control requests must name the supervisor by IP address or localhost in Host\n",
        );
    }
    match http_header(head, "Origin") {
        None => Ok(()),
        Some(origin) if origin.strip_prefix("http://") == Some(host) => Ok(()),
        Some(_) => Err("control requests must come from the status page itself (Origin)\n"),
    }
}

/// `127.0.0.1:9188`, `[::1]:80`, `localhost:9188`, `198.51.100.7`.
fn host_is_address(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, rest)) if rest.is_empty() || port_ok(rest) => {
                return addr.parse::<std::net::Ipv6Addr>().is_ok()
            }
            _ => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) if port_ok(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

fn port_ok(rest: &str) -> bool {
    rest.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Module;
    use crate::status::{InStat, OutStat};

    fn stats(ins: &[u64], outs: &[u64]) -> IfcStats {
        IfcStats {
            inputs: ins
                .iter()
                .map(|&m| InStat {
                    kind: 'u',
                    id: "in".into(),
                    connected: true,
                    messages: m,
                    buffers: 0,
                })
                .collect(),
            outputs: outs
                .iter()
                .map(|&s| OutStat {
                    kind: 'u',
                    id: "out".into(),
                    clients: 1,
                    sent: s,
                    ..OutStat::default()
                })
                .collect(),
        }
    }

    #[test]
    fn rates_from_counter_deltas() {
        let s = Duration::from_secs(2);
        let r = rates(&stats(&[10], &[0, 4]), &stats(&[30], &[6, 4]), s).expect("rates");
        assert_eq!(r.inputs, vec![10.0]);
        assert_eq!(r.outputs, vec![3.0, 0.0]);
        // A module with inputs counts what it receives; a source what it sends.
        assert_eq!(r.records(), 10.0);
        let src = rates(&stats(&[], &[0, 4]), &stats(&[], &[6, 8]), s).expect("rates");
        assert_eq!(src.records(), 5.0);
        // Not comparable: no time, other interfaces, a counter going back.
        assert_eq!(
            rates(&stats(&[1], &[]), &stats(&[2], &[]), Duration::ZERO),
            None
        );
        assert_eq!(rates(&stats(&[1], &[]), &stats(&[2, 3], &[]), s), None);
        assert_eq!(rates(&stats(&[5], &[]), &stats(&[2], &[]), s), None);
    }

    #[test]
    fn history_is_a_bounded_ring_per_process() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut h = History::new(3);
        // The first reading only sets the base.
        h.record("m", 7, Some(&stats(&[0], &[])), at(0), 0);
        assert_eq!(h.samples("m").count(), 0);
        assert!(h.rates("m").is_none());
        h.record("m", 7, Some(&stats(&[100], &[])), at(1), 1000);
        assert_eq!(h.rates("m").map(Rates::records), Some(100.0));
        // A missed answer: no sample, the next one spans both periods.
        h.record("m", 7, None, at(2), 2000);
        assert!(h.rates("m").is_none());
        h.record("m", 7, Some(&stats(&[300], &[])), at(3), 3000);
        let got: Vec<Sample> = h.samples("m").copied().collect();
        assert_eq!(
            got,
            vec![
                Sample {
                    t: 1000,
                    rate: 100.0
                },
                Sample {
                    t: 3000,
                    rate: 100.0
                }
            ]
        );
        // Restarted: the new process's counters are not compared with the
        // old one's.
        h.record("m", 8, Some(&stats(&[5], &[])), at(4), 4000);
        assert!(h.rates("m").is_none());
        // Stopped: a zero sample; the ring keeps the newest three.
        h.record("m", 0, None, at(5), 5000);
        h.record("m", 0, None, at(6), 6000);
        let t: Vec<u64> = h.samples("m").map(|s| s.t).collect();
        assert_eq!(t, vec![3000, 5000, 6000]);
        h.record("gone", 0, None, at(6), 6000);
        h.retain(|n| n == "m");
        assert_eq!(h.samples("gone").count(), 0);
        assert_eq!(h.samples("m").count(), 3);
    }

    fn view(idx: usize, profile: usize, name: &str, pid: i32) -> ModuleView {
        ModuleView {
            idx,
            profile,
            module: Module {
                name: name.into(),
                enabled: true,
                path: "x".into(),
                params: None,
                module_restarts: None,
                interfaces: vec![],
            },
            enabled: true,
            running: pid > 0,
            pid,
            cpu_user: 3,
            cpu_system: 1,
            mem_vms: 4096,
            mem_rss: 2048,
            restarts: 2,
            stats: None,
            reason: (pid == 0).then(|| "profile disabled".to_string()),
        }
    }

    #[test]
    fn status_and_history_documents() {
        let profiles = vec![
            ProfileView {
                name: "Src".into(),
                enabled: true,
            },
            ProfileView {
                name: "Off".into(),
                enabled: false,
            },
        ];
        let mut gen = view(0, 0, "gen", 42);
        gen.stats = Some(stats(&[], &[50]));
        let modules = vec![gen, view(1, 1, "log", 0)];
        let t0 = Instant::now();
        let mut h = History::default();
        h.record("gen", 42, Some(&stats(&[], &[0])), t0, 1000);
        h.record(
            "gen",
            42,
            Some(&stats(&[], &[50])),
            t0 + Duration::from_secs(2),
            3000,
        );
        h.record("log", 0, None, t0, 3000);
        let info = PageInfo {
            version: "0.1.0",
            pid: 9,
            started: "Thu Dec  3 17:00:00 2026",
            control: false,
            period_s: 1.0,
        };
        let v: serde_json::Value =
            serde_json::from_str(&status_json(&info, &profiles, &modules, &h)).expect("json");
        assert_eq!(v["supervisor"]["control"], false);
        let gen = &v["profiles"][0]["modules"][0];
        assert_eq!(gen["name"], "gen");
        assert_eq!(gen["state"], "running");
        assert_eq!(gen["pid"], 42);
        assert_eq!(gen["restarts"], 2);
        assert_eq!(gen["records_per_s"], 25.0);
        assert_eq!(gen["outputs"][0]["sent"], 50);
        assert_eq!(gen["outputs"][0]["rate"], 25.0);
        assert_eq!(gen["reason"], serde_json::Value::Null);
        let log = &v["profiles"][1]["modules"][0];
        assert_eq!(
            (log["state"].as_str(), log["pid"].as_i64()),
            (Some("stopped"), Some(0))
        );
        assert_eq!(log["reason"], "profile disabled");
        assert_eq!(v["profiles"][1]["enabled"], false);

        let v: serde_json::Value =
            serde_json::from_str(&history_json(5000, 1.0, &modules, &h)).expect("json");
        assert_eq!(v["now"], 5000);
        assert_eq!(v["capacity"], HISTORY_LEN);
        assert_eq!(
            v["modules"][0]["samples"],
            serde_json::json!([[3000, 25.0]])
        );
        assert_eq!(v["modules"][1]["samples"], serde_json::json!([[3000, 0.0]]));
    }

    #[test]
    fn routes() {
        assert!(matches!(route("GET", "/"), Route::Asset { body, .. } if body == INDEX_HTML));
        assert!(matches!(
            route("GET", "/status.js?v=1"),
            Route::Asset { content_type, .. } if content_type.starts_with("text/javascript")
        ));
        assert_eq!(route("GET", "/api/status"), Route::Status);
        assert_eq!(route("GET", "/api/history#x"), Route::History);
        assert_eq!(
            route("POST", "/api/status"),
            Route::WrongMethod { allow: "GET" }
        );
        assert_eq!(
            route("POST", "/api/restart/z%20log"),
            Route::Control {
                verb: "restart",
                name: "z log".into()
            }
        );
        assert_eq!(
            route("GET", "/api/stop/zlog"),
            Route::WrongMethod { allow: "POST" }
        );
        assert_eq!(route("POST", "/api/kill/zlog"), Route::NotFound);
        assert_eq!(route("GET", "/etc/passwd"), Route::NotFound);
        assert_eq!(route("GET", "/../Cargo.toml"), Route::NotFound);
        for bad in ["", "%", "%2", "%zz", "%ff", "a%0ab", &"x".repeat(300)] {
            assert!(
                matches!(
                    route("POST", &format!("/api/stop/{bad}")),
                    Route::BadRequest(_)
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("status.js", STATUS_JS),
            ("style.css", STYLE_CSS),
        ] {
            // The SVG namespace is a name, not a download.
            let rest = text.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !rest.contains("http://") && !rest.contains("https://") && !rest.contains("//cdn"),
                "{name}"
            );
        }
        for asset in ["/style.css", "/status.js"] {
            assert!(INDEX_HTML.contains(asset));
            assert!(matches!(route("GET", asset), Route::Asset { .. }));
        }
        // The buttons send what a control request must carry.
        assert!(STATUS_JS.contains(&format!("\"{CONTROL_HEADER}\": \"1\"")));
        for path in ["/api/status", "/api/history"] {
            assert!(STATUS_JS.contains(path));
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%c3%a9").as_deref(), Some("a/bé"));
        assert_eq!(percent_decode("plain+x").as_deref(), Some("plain+x"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%C3"), None);
    }

    #[test]
    fn control_requests_need_header_host_and_origin() {
        let req = |headers: &str| format!("POST /api/stop/m HTTP/1.1\r\n{headers}\r\n");
        let ok = |h: &str| control_allowed(req(h).as_bytes());
        assert_eq!(
            ok("Host: 127.0.0.1:9190\r\nX-Nemea-Control: 1\r\nOrigin: http://127.0.0.1:9190\r\n"),
            Ok(())
        );
        assert_eq!(ok("Host: localhost:80\r\nX-Nemea-Control: 1\r\n"), Ok(()));
        assert_eq!(ok("Host: [::1]:9190\r\nX-Nemea-Control: 1\r\n"), Ok(()));
        assert_eq!(ok("Host: 198.51.100.7\r\nX-Nemea-Control: 1\r\n"), Ok(()));
        // A form of another site: no header.
        assert!(ok("Host: 127.0.0.1:9190\r\nOrigin: http://evil.example\r\n").is_err());
        // Another site's page after rebinding its name to this address.
        assert!(ok("Host: evil.example:9190\r\nX-Nemea-Control: 1\r\n").is_err());
        assert!(ok(
            "Host: 127.0.0.1:9190\r\nX-Nemea-Control: 1\r\nOrigin: http://evil.example\r\n"
        )
        .is_err());
        assert!(ok("X-Nemea-Control: 1\r\n").is_err());
        for host in [
            "127.0.0.1:",
            "127.0.0.1:x",
            "[::1",
            "[::1]x",
            "[zz]:1",
            "1.2.3.4:99999",
        ] {
            assert!(!host_is_address(host), "{host}");
        }
    }
}
