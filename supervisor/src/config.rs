//! The configuration model shared by the TOML and the XML format: profiles
//! of modules, each module with its program, parameters and interfaces.

use crate::error::ConfigError;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;

/// Default number of restarts allowed per minute (NEMEA's `module-restarts`).
pub const DEFAULT_RESTARTS: u32 = 3;
/// Highest accepted `module-restarts` value (as NEMEA).
pub const MAX_RESTARTS: u32 = 30;

/// A whole configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Global default of restarts per minute.
    pub module_restarts: u32,
    pub profiles: Vec<Profile>,
}

/// A profile (NEMEA's `<modules>` element): a named group of modules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub enabled: bool,
    pub modules: Vec<Module>,
}

/// One module: a program run with its parameters and `-i` interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    pub enabled: bool,
    pub path: String,
    pub params: Option<String>,
    /// Overrides the global restart limit.
    pub module_restarts: Option<u32>,
    pub interfaces: Vec<Interface>,
}

/// Interface type, as NEMEA's XML names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum IfcType {
    #[serde(rename = "TCP", alias = "t", alias = "tcp")]
    Tcp,
    #[serde(
        rename = "UNIXSOCKET",
        alias = "u",
        alias = "unix",
        alias = "unixsocket"
    )]
    UnixSocket,
    #[serde(rename = "FILE", alias = "f", alias = "file")]
    File,
    #[serde(rename = "BLACKHOLE", alias = "b", alias = "blackhole")]
    Blackhole,
    #[serde(rename = "TLS", alias = "T", alias = "tls")]
    Tls,
    /// libtrap-rs's `j:` (NATS JetStream; not in NEMEA).
    #[serde(rename = "JETSTREAM", alias = "j", alias = "jetstream")]
    JetStream,
}

impl IfcType {
    /// The IFC_SPEC letter.
    pub fn letter(self) -> char {
        match self {
            IfcType::Tcp => 't',
            IfcType::UnixSocket => 'u',
            IfcType::File => 'f',
            IfcType::Blackhole => 'b',
            IfcType::Tls => 'T',
            IfcType::JetStream => 'j',
        }
    }

    /// NEMEA's XML spelling.
    pub fn name(self) -> &'static str {
        match self {
            IfcType::Tcp => "TCP",
            IfcType::UnixSocket => "UNIXSOCKET",
            IfcType::File => "FILE",
            IfcType::Blackhole => "BLACKHOLE",
            IfcType::Tls => "TLS",
            IfcType::JetStream => "JETSTREAM",
        }
    }

    pub fn from_xml(s: &str) -> Option<IfcType> {
        Some(match s {
            "TCP" => IfcType::Tcp,
            "UNIXSOCKET" => IfcType::UnixSocket,
            "FILE" => IfcType::File,
            "BLACKHOLE" => IfcType::Blackhole,
            "TLS" => IfcType::Tls,
            "JETSTREAM" => IfcType::JetStream,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Direction {
    #[serde(rename = "IN", alias = "in")]
    In,
    #[serde(rename = "OUT", alias = "out")]
    Out,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::In => "IN",
            Direction::Out => "OUT",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub kind: IfcType,
    pub direction: Direction,
    pub params: Option<String>,
    pub note: Option<String>,
}

impl Interface {
    /// `<letter>:<params>`, with NEMEA's rewrite of `host,port` to `host:port`.
    pub fn spec(&self) -> String {
        let params = self.params.as_deref().unwrap_or("");
        let params = if matches!(self.kind, IfcType::Tcp | IfcType::Tls) {
            params.replacen(',', ":", 1)
        } else {
            params.to_string()
        };
        if params.is_empty() {
            self.kind.letter().to_string()
        } else {
            format!("{}:{}", self.kind.letter(), params)
        }
    }
}

impl Module {
    /// The restart limit in force for this module.
    pub fn restart_limit(&self, global: u32) -> u32 {
        self.module_restarts.unwrap_or(global)
    }

    /// argv\[1..\]: the split parameters, then `-i SPEC` (inputs first).
    pub fn args(&self) -> Result<Vec<String>, ConfigError> {
        let mut args = match &self.params {
            Some(p) => split_params(p).map_err(|why| ConfigError::Invalid {
                at: format!("module {}", self.name),
                why: format!("params: {why}"),
            })?,
            None => Vec::new(),
        };
        let ifcs: Vec<String> = self
            .interfaces
            .iter()
            .filter(|i| i.direction == Direction::In)
            .chain(
                self.interfaces
                    .iter()
                    .filter(|i| i.direction == Direction::Out),
            )
            .map(Interface::spec)
            .collect();
        if !ifcs.is_empty() {
            args.push("-i".into());
            args.push(ifcs.join(","));
        }
        Ok(args)
    }

    /// Socket names of this module's unix-socket outputs.
    pub fn unix_outputs(&self) -> Vec<String> {
        self.interfaces
            .iter()
            .filter(|i| i.kind == IfcType::UnixSocket && i.direction == Direction::Out)
            .filter_map(|i| i.params.as_deref())
            .map(|p| p.split(':').next().unwrap_or("").to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Splits NEMEA's `params` text: words separated by spaces, `"…"` and `'…'`
/// group words (a quote must start a word, empty quotes are an error).
pub fn split_params(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '"' || c == '\'' {
            chars.next();
            let mut word = String::new();
            let mut closed = false;
            for d in chars.by_ref() {
                if d == c {
                    closed = true;
                    break;
                }
                word.push(d);
            }
            if !closed {
                return Err(format!("unterminated {c} quote"));
            }
            if word.is_empty() {
                return Err("empty quotes".into());
            }
            if chars.peek().is_some_and(|d| !d.is_whitespace()) {
                return Err(format!("text right after the closing {c} quote"));
            }
            out.push(word);
        } else {
            let mut word = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                word.push(d);
                chars.next();
            }
            out.push(word);
        }
    }
    Ok(out)
}

impl Config {
    /// Loads a configuration file: `.toml` as the native format, anything
    /// else as NEMEA's XML template (with `<!-- include -->` lines).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let cfg = if path.extension().is_some_and(|e| e == "toml") {
            crate::toml_cfg::load(path)?
        } else {
            crate::xml::load(path)?.0
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the rules both formats share.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |at: String, why: &str| ConfigError::Invalid {
            at,
            why: why.to_string(),
        };
        if self.module_restarts > MAX_RESTARTS {
            return Err(bad(
                "supervisor".into(),
                "module-restarts must be between 0 and 30",
            ));
        }
        let mut profiles = HashSet::new();
        let mut modules = HashSet::new();
        for p in &self.profiles {
            if p.name.trim().is_empty() {
                return Err(bad("profile".into(), "empty profile name"));
            }
            if !profiles.insert(p.name.as_str()) {
                return Err(bad(format!("profile {}", p.name), "duplicate profile name"));
            }
            for m in &p.modules {
                let at = format!("profile {}, module {}", p.name, m.name);
                if m.name.trim().is_empty() {
                    return Err(bad(format!("profile {}", p.name), "empty module name"));
                }
                if m.name.contains(['/', '\0']) || m.name.chars().any(char::is_whitespace) {
                    return Err(bad(at, "module name must not contain '/' or spaces"));
                }
                if !modules.insert(m.name.as_str()) {
                    return Err(bad(at, "duplicate module name"));
                }
                if m.path.trim().is_empty() {
                    return Err(bad(at, "missing path"));
                }
                if m.module_restarts.is_some_and(|r| r > MAX_RESTARTS) {
                    return Err(bad(at, "module-restarts must be between 0 and 30"));
                }
                if let Some(p) = &m.params {
                    split_params(p).map_err(|why| bad(at.clone(), &format!("params: {why}")))?;
                }
            }
        }
        Ok(())
    }

    /// Every module with its profile, in index order.
    pub fn modules(&self) -> impl Iterator<Item = (&Profile, &Module)> {
        self.profiles
            .iter()
            .flat_map(|p| p.modules.iter().map(move |m| (p, m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_split_like_nemea() {
        assert_eq!(
            split_params("  -a 1  \"x y\" 'z' -b").unwrap(),
            ["-a", "1", "x y", "z", "-b"]
        );
        assert!(split_params("\"\"").is_err());
        assert!(split_params("\"abc").is_err());
        assert!(split_params("\"a\"b").is_err());
        assert_eq!(split_params("").unwrap(), Vec::<String>::new());
    }

    fn ifc(kind: IfcType, direction: Direction, params: &str) -> Interface {
        Interface {
            kind,
            direction,
            params: Some(params.into()),
            note: None,
        }
    }

    #[test]
    fn args_put_inputs_first() {
        let m = Module {
            name: "rep".into(),
            enabled: true,
            path: "traffic_repeater".into(),
            params: Some("-n".into()),
            module_restarts: None,
            interfaces: vec![
                ifc(IfcType::UnixSocket, Direction::Out, "out:buffer=off"),
                ifc(IfcType::Tcp, Direction::In, "localhost,7600"),
            ],
        };
        assert_eq!(
            m.args().unwrap(),
            ["-n", "-i", "t:localhost:7600,u:out:buffer=off"]
        );
        assert_eq!(m.unix_outputs(), ["out"]);
    }

    #[test]
    fn jetstream_interfaces_keep_their_colons() {
        let m = Module {
            name: "log".into(),
            enabled: true,
            path: "logger".into(),
            params: None,
            module_restarts: None,
            interfaces: vec![ifc(
                IfcType::JetStream,
                Direction::In,
                "nemea.flows:server=nats://198.51.100.1:4222:durable=log",
            )],
        };
        assert_eq!(
            m.args().unwrap(),
            [
                "-i",
                "j:nemea.flows:server=nats://198.51.100.1:4222:durable=log"
            ]
        );
        assert_eq!(IfcType::from_xml("JETSTREAM"), Some(IfcType::JetStream));
        assert_eq!(IfcType::JetStream.name(), "JETSTREAM");
    }

    /// The shipped TOML profiles with .sup twins (configs/NAME.toml and
    /// configs/NAME/*.sup) describe the same modules.
    fn shipped_twins(name: &str, profile: &str) -> Config {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let toml = Config::load(&configs.join(format!("{name}.toml"))).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("t.xml");
        std::fs::write(
            &template,
            format!(
                "<nemea-supervisor>\n<modules>\n<name>{profile}</name>\n<enabled>true</enabled>\n<!-- include {} -->\n</modules>\n</nemea-supervisor>\n",
                configs.join(name).display()
            ),
        )
        .unwrap();
        let xml = Config::load(&template).unwrap();
        let names = |c: &Config| {
            let mut v: Vec<Module> = c.modules().map(|(_, m)| m.clone()).collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        };
        assert_eq!(names(&toml), names(&xml), "{name}");
        toml
    }

    /// Whose filters reach the module as one argument each.
    #[test]
    fn shipped_stream_tools_agree_in_both_formats() {
        let toml = shipped_twins("stream-tools", "Stream tools");
        let ssh = toml
            .modules()
            .find(|(_, m)| m.name == "ssh_filter")
            .unwrap()
            .1;
        assert_eq!(
            ssh.args().unwrap(),
            [
                "-F",
                "DST_PORT == 22 && PROTOCOL == TCP",
                "-i",
                "u:flow_data_source,u:ssh_flows"
            ]
        );
    }

    /// The Traffic Snooper's chain, shipped disabled.
    #[test]
    fn shipped_snooper_agrees_in_both_formats() {
        let toml = shipped_twins("snooper", "Traffic snooper");
        let arg = |name: &str| {
            toml.modules()
                .find(|(_, m)| m.name == name)
                .unwrap_or_else(|| panic!("{name}"))
                .1
                .args()
                .unwrap()
        };
        assert_eq!(arg("packet_capture"), ["-I", "eth1", "-i", "u:raw_packets"]);
        assert_eq!(
            arg("packet_dedup"),
            [
                "--window",
                "1",
                "--normalize",
                "-i",
                "u:raw_packets,u:raw_packets_dedup"
            ]
        );
        assert_eq!(
            arg("packet_store"),
            [
                "--db",
                "/var/lib/nemea/snoop.sqlite",
                "--batch",
                "1000",
                "-i",
                "u:raw_packets_dedup"
            ]
        );
        assert!(toml.profiles.iter().all(|p| !p.enabled), "shipped disabled");
    }

    #[test]
    fn shipped_traffic_analyzer_agrees_in_both_formats() {
        let toml = shipped_twins("traffic-analyzer", "Traffic analyzer");
        let probe = toml
            .modules()
            .find(|(_, m)| m.name == "session_probe")
            .unwrap()
            .1;
        assert_eq!(
            probe.args().unwrap(),
            [
                "-I",
                "eth0",
                "-w",
                "5",
                "-i",
                "u:ddos_features,u:mining_features"
            ]
        );
        let fw = toml
            .modules()
            .find(|(_, m)| m.name == "fw_actuator")
            .unwrap()
            .1;
        assert_eq!(
            fw.args().unwrap(),
            ["--interface", "eth0", "--ttl", "600", "-i", "u:ddos_alerts"]
        );
    }

    #[test]
    fn shipped_triggered_capture_agrees_in_both_formats() {
        let toml = shipped_twins("triggered-capture", "Triggered capture");
        let args = |name: &str| {
            toml.modules()
                .find(|(_, m)| m.name == name)
                .unwrap_or_else(|| panic!("{name} missing"))
                .1
                .args()
                .unwrap()
        };
        assert_eq!(
            args("sflow_collector"),
            ["--udp", "6343", "-i", "u:trigger_flows"]
        );
        assert_eq!(
            args("trigger_blacklistfilter")[4..],
            ["-i", "u:trigger_flows,u:trigger_flagged"]
        );
        let capture = args("capture_trigger");
        assert_eq!(capture[..2], ["-I", "eth1"]);
        assert_eq!(
            capture[capture.len() - 2..],
            ["-i", "u:trigger_flagged,u:capture_events"]
        );
        assert_eq!(
            args("trigger_bl_downloader"),
            ["-c", "/etc/nemea/bl_downloader-trigger.toml"]
        );
        // Only one of the two flow sources runs.
        let flow_meter = toml
            .modules()
            .find(|(_, m)| m.name == "trigger_flow_meter")
            .unwrap()
            .1;
        assert!(!flow_meter.enabled);
    }

    #[test]
    fn shipped_stream_aggregation_agrees_in_both_formats() {
        let toml = shipped_twins("stream-aggregation", "Stream aggregation");
        let merger = toml.modules().find(|(_, m)| m.name == "merger").unwrap().1;
        assert_eq!(
            merger.args().unwrap(),
            ["-i", "u:flow_data_source,u:flow_data_source2,u:flow_merged"]
        );
    }
}
