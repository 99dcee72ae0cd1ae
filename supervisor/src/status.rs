//! What supcli prints: NEMEA's brief and detailed status tables, the loaded
//! configuration, and the `-x` / `-i` JSON (jansson's separators).

use crate::config::{Direction, Module};

const B: &str = "\x1b[1m";
const G: &str = "\x1b[38;5;40;1m";
const R: &str = "\x1b[38;5;196;1m";
const Z: &str = "\x1b[0m";

/// A profile as the tables show it.
#[derive(Clone, Debug)]
pub struct ProfileView {
    pub name: String,
    pub enabled: bool,
}

/// Counters of one input interface (from the module's service socket).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InStat {
    pub kind: char,
    pub id: String,
    pub connected: bool,
    pub messages: u64,
    pub buffers: u64,
}

/// Counters of one output interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutStat {
    pub kind: char,
    pub id: String,
    pub clients: u64,
    pub sent: u64,
    pub dropped: u64,
    pub buffers: u64,
    pub autoflushes: u64,
}

/// Interface counters of a module, parsed from libtrap's service JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfcStats {
    pub inputs: Vec<InStat>,
    pub outputs: Vec<OutStat>,
}

impl IfcStats {
    /// Parses the service-interface reply of a module.
    pub fn parse(json: &str) -> Option<IfcStats> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let u = |o: &serde_json::Value, k: &str| o.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let kind = |o: &serde_json::Value| {
            char::from_u32(u(o, "ifc_type") as u32)
                .filter(char::is_ascii_alphabetic)
                .unwrap_or('?')
        };
        let id = |o: &serde_json::Value| {
            o.get("ifc_id")
                .and_then(|x| x.as_str())
                .unwrap_or("none")
                .to_string()
        };
        let list = |k: &str| v.get(k).and_then(|x| x.as_array()).cloned();
        Some(IfcStats {
            inputs: list("in")?
                .iter()
                .map(|o| InStat {
                    kind: kind(o),
                    id: id(o),
                    connected: u(o, "ifc_state") != 0,
                    messages: u(o, "messages"),
                    buffers: u(o, "buffers"),
                })
                .collect(),
            outputs: list("out")?
                .iter()
                .map(|o| OutStat {
                    kind: kind(o),
                    id: id(o),
                    clients: u(o, "num_clients"),
                    sent: u(o, "sent-messages"),
                    dropped: u(o, "dropped-messages"),
                    buffers: u(o, "buffers"),
                    autoflushes: u(o, "autoflushes"),
                })
                .collect(),
        })
    }
}

/// A module as the tables show it.
#[derive(Clone, Debug)]
pub struct ModuleView {
    pub idx: usize,
    pub profile: usize,
    pub module: Module,
    pub enabled: bool,
    pub running: bool,
    pub pid: i32,
    pub cpu_user: u64,
    pub cpu_system: u64,
    pub mem_vms: u64,
    pub mem_rss: u64,
    /// Times the supervisor started it again after it ended (since the
    /// supervisor started; a start asked for by a client is not counted).
    pub restarts: u64,
    /// `None` while the service interface is not connected.
    pub stats: Option<IfcStats>,
    /// Why it does not run (`None` while it runs or is simply disabled):
    /// `profile disabled`, `binary missing: …`, `restart limit reached (…);
    /// last run: exit status 1`.
    pub reason: Option<String>,
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

fn pad(n: usize) -> String {
    " ".repeat(n.max(1))
}

fn paint(color: bool, c: &str, text: &str) -> String {
    if color {
        format!("{c}{text}{Z}")
    } else {
        text.to_string()
    }
}

fn enabled_cell(color: bool, on: bool) -> String {
    if on {
        format!("|  {}   |", paint(color, G, "true"))
    } else {
        format!("|  {}  |", paint(color, R, "false"))
    }
}

/// NEMEA's brief status table (menu option 4), byte for byte; colours only
/// when `color`. A stopped module's row ends with why it does not run,
/// after NEMEA's last `|` (running rows are NEMEA's exactly).
pub fn brief_status(profiles: &[ProfileView], modules: &[ModuleView], color: bool) -> String {
    if modules.is_empty() {
        return "[WARNING] No module is loaded.\n".into();
    }
    let d = digits(modules.len() as u64 - 1);
    let p = modules
        .iter()
        .map(|m| digits(m.pid.max(0) as u64))
        .max()
        .unwrap_or(1)
        .max(3);
    let longest_profile = profiles.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let longest_module = modules
        .iter()
        .map(|m| m.module.name.len())
        .max()
        .unwrap_or(0);
    let w = ((9 + longest_profile).max(6 + d + longest_module) + 1).max(11 + d);
    let (b, z) = if color { (B, Z) } else { ("", "") };
    let mut s = String::from("--- [CONFIGURATION STATUS] ---\n");
    s += &format!(
        "{b}{}| name{}| enabled | status  | PID{z}{}|\n",
        pad(4 + d),
        pad(w - d - 10),
        pad(p + 1 - 3)
    );
    for (pi, prof) in profiles.iter().enumerate() {
        s += &format!(
            "{b}Profile: {}{}{z}{}\n",
            prof.name,
            pad(w.saturating_sub(9 + prof.name.len())),
            enabled_cell(color, prof.enabled)
        );
        for m in modules.iter().filter(|m| m.profile == pi) {
            let pid = if m.running { m.pid.max(0) as u64 } else { 0 };
            let why = match (&m.reason, m.running) {
                (Some(r), false) => format!(" {r}"),
                _ => String::new(),
            };
            s += &format!(
                "   {}{}| {}{}{} {} | {}{}|{why}\n",
                m.idx,
                pad(d + 1 - digits(m.idx as u64)),
                m.module.name,
                pad(w.saturating_sub(6 + d + m.module.name.len())),
                enabled_cell(color, m.enabled),
                if m.running {
                    paint(color, G, "running")
                } else {
                    paint(color, R, "stopped")
                },
                pid,
                pad(p + 1 - digits(pid)),
            );
        }
        s.push('\n');
    }
    s
}

/// NEMEA's detailed status (menu option 5).
pub fn detailed_status(profiles: &[ProfileView], modules: &[ModuleView]) -> String {
    if modules.is_empty() {
        return "[WARNING] No module is loaded.\n".into();
    }
    let d = digits(modules.len() as u64 - 1);
    let mut s = String::from("--- [PRINTING CONFIGURATION] ---\n");
    for (pi, prof) in profiles.iter().enumerate() {
        s += &format!(
            "Profile: {} ({})\n",
            prof.name,
            if prof.enabled { "enabled" } else { "disabled" }
        );
        for m in modules.iter().filter(|m| m.profile == pi) {
            s += &format!(
                "   {}{}| {} | {} | {}",
                m.idx,
                pad(d + 1 - digits(m.idx as u64)),
                m.module.name,
                if m.enabled { "enabled" } else { "disabled" },
                if m.running { "running" } else { "stopped" }
            );
            if !m.running {
                if let Some(r) = &m.reason {
                    s += &format!(" | {r}");
                }
                s.push('\n');
                continue;
            }
            s += &format!(" | PID: {}\n", m.pid);
            match &m.stats {
                None => s += "      IFC service: not connected\n",
                Some(st) => {
                    s += "      IFC service: connected\n";
                    let mut n = 0;
                    for i in &st.inputs {
                        s += &format!(
                            "      IFC {n}:  IN; {}; {}; {}\n",
                            i.kind,
                            i.id,
                            if i.connected {
                                "connected"
                            } else {
                                "not connected"
                            }
                        );
                        n += 1;
                    }
                    for o in &st.outputs {
                        s += &format!(
                            "      IFC {n}:  OUT; {}; {}; num of clients: {}\n",
                            o.kind, o.id, o.clients
                        );
                        n += 1;
                    }
                }
            }
        }
    }
    s
}

/// NEMEA's "loaded configuration" (menu option 6).
pub fn loaded_config(profiles: &[ProfileView], modules: &[ModuleView]) -> String {
    let mut s = String::from("--- [PRINTING CONFIGURATION] ---\n");
    for (pi, prof) in profiles.iter().enumerate() {
        s += &format!("Profile: {}\n", prof.name);
        for m in modules.iter().filter(|m| m.profile == pi) {
            let c = &m.module;
            s += &format!("   {} | {}\n", m.idx, c.name);
            s += &format!("      PATH: {}\n", c.path);
            s += &format!("      PARAMS: {}\n", c.params.as_deref().unwrap_or("none"));
            for (n, i) in c.interfaces.iter().enumerate() {
                s += &format!(
                    "      IFC {n}:  {}; {}; {}; {}\n",
                    i.direction.name(),
                    i.kind.name(),
                    i.params.as_deref().unwrap_or("none"),
                    i.note.as_deref().unwrap_or("none")
                );
            }
        }
    }
    s
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn module_json(m: &ModuleView, info: bool) -> String {
    let mut parts = Vec::new();
    if info {
        parts.push(format!("\"idx\": {}", m.idx));
        parts.push(format!(
            "\"params\": {}",
            json_str(m.module.params.as_deref().unwrap_or("none"))
        ));
        parts.push(format!("\"path\": {}", json_str(&m.module.path)));
        parts.push(format!(
            "\"status\": \"{}\"",
            if m.running { "running" } else { "stopped" }
        ));
    }
    parts.push(format!("\"CPU-u\": {}", m.cpu_user));
    parts.push(format!("\"CPU-s\": {}", m.cpu_system));
    parts.push(format!("\"MEM-vms\": {}", m.mem_vms));
    parts.push(format!("\"MEM-rss\": {}", m.mem_rss));
    let st = m.stats.clone().unwrap_or_default();
    let ins: Vec<String> = st
        .inputs
        .iter()
        .map(|i| {
            format!(
                "{{\"type\": \"{}\", \"ID\": {}, \"is-conn\": {}, \"messages\": {}, \"buffers\": {}}}",
                i.kind,
                json_str(&i.id),
                u8::from(i.connected),
                i.messages,
                i.buffers
            )
        })
        .collect();
    let outs: Vec<String> = st
        .outputs
        .iter()
        .map(|o| {
            format!(
                "{{\"type\": \"{}\", \"ID\": {}, \"cli-num\": {}, \"sent-msg\": {}, \"drop-msg\": {}, \"buffers\": {}, \"autoflush\": {}}}",
                o.kind,
                json_str(&o.id),
                o.clients,
                o.sent,
                o.dropped,
                o.buffers,
                o.autoflushes
            )
        })
        .collect();
    parts.push(format!("\"inputs\": [{}]", ins.join(", ")));
    parts.push(format!("\"outputs\": [{}]", outs.join(", ")));
    format!("{}: {{{}}}", json_str(&m.module.name), parts.join(", "))
}

/// `supcli -x`: counters of the running modules, one line, no newline.
pub fn stats_json(modules: &[ModuleView]) -> String {
    let items: Vec<String> = modules
        .iter()
        .filter(|m| m.running)
        .map(|m| module_json(m, false))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// `supcli -i`: every module with index, params, path, status and counters.
pub fn info_json(modules: &[ModuleView]) -> String {
    let items: Vec<String> = modules.iter().map(|m| module_json(m, true)).collect();
    format!("{{{}}}", items.join(", "))
}

/// The modules' interface directions, for tests and callers that need them.
pub fn count_ifcs(m: &Module, dir: Direction) -> usize {
    m.interfaces.iter().filter(|i| i.direction == dir).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(idx: usize, profile: usize, name: &str, running: bool, pid: i32) -> ModuleView {
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
            running,
            pid,
            cpu_user: 0,
            cpu_system: 0,
            mem_vms: 0,
            mem_rss: 0,
            restarts: 0,
            stats: None,
            reason: None,
        }
    }

    fn example() -> (Vec<ProfileView>, Vec<ModuleView>) {
        let p = |n: &str, e| ProfileView {
            name: n.into(),
            enabled: e,
        };
        (
            vec![
                p("Data sources", true),
                p("Detectors", true),
                p("Reporters", false),
            ],
            vec![
                module(0, 0, "flow_meter", true, 12345),
                module(1, 1, "vportscan_detector", true, 12400),
                module(2, 1, "haddrscan_detector", false, 0),
                module(3, 2, "vportscan2idea", false, 0),
            ],
        )
    }

    #[test]
    fn brief_status_matches_nemea_example() {
        let (p, m) = example();
        let want = "--- [CONFIGURATION STATUS] ---
     | name               | enabled | status  | PID   |
Profile: Data sources     |  true   |
   0 | flow_meter         |  true   | running | 12345 |

Profile: Detectors        |  true   |
   1 | vportscan_detector |  true   | running | 12400 |
   2 | haddrscan_detector |  true   | stopped | 0     |

Profile: Reporters        |  false  |
   3 | vportscan2idea     |  true   | stopped | 0     |

";
        assert_eq!(brief_status(&p, &m, false), want);
    }

    #[test]
    fn brief_status_colours() {
        let (p, m) = example();
        let s = brief_status(&p, &m, true);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[1],
            "\x1b[1m     | name               | enabled | status  | PID\x1b[0m   |"
        );
        assert_eq!(
            lines[2],
            "\x1b[1mProfile: Data sources     \x1b[0m|  \x1b[38;5;40;1mtrue\x1b[0m   |"
        );
        assert_eq!(
            lines[10],
            "   3 | vportscan2idea     |  \x1b[38;5;40;1mtrue\x1b[0m   | \x1b[38;5;196;1mstopped\x1b[0m | 0     |"
        );
    }

    #[test]
    fn short_names_use_minimum_width() {
        let p = vec![ProfileView {
            name: "P".into(),
            enabled: true,
        }];
        let m = vec![module(0, 0, "a", true, 7)];
        let s = brief_status(&p, &m, false);
        assert_eq!(
            s,
            "--- [CONFIGURATION STATUS] ---\n     | name | enabled | status  | PID |\nProfile: P  |  true   |\n   0 | a    |  true   | running | 7   |\n\n"
        );
    }

    #[test]
    fn stopped_rows_end_with_the_reason() {
        let (p, mut m) = example();
        m[2].reason = Some("binary missing: nosuch is not on PATH".into());
        m[3].reason = Some("profile disabled".into());
        // A reason on a running row is never shown.
        m[0].reason = Some("ignored".into());
        let s = brief_status(&p, &m, false);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[3],
            "   0 | flow_meter         |  true   | running | 12345 |"
        );
        assert_eq!(
            lines[7],
            "   2 | haddrscan_detector |  true   | stopped | 0     | binary missing: nosuch is not on PATH"
        );
        assert_eq!(
            lines[10],
            "   3 | vportscan2idea     |  true   | stopped | 0     | profile disabled"
        );
        // Without reasons the table is NEMEA's.
        let (p, m) = example();
        assert!(brief_status(&p, &m, false)
            .lines()
            .all(|l| !l.starts_with("   ") || l.ends_with('|')));
        let (p, mut m) = example();
        m[2].reason = Some("profile disabled".into());
        assert!(detailed_status(&p, &m)
            .contains("   2 | haddrscan_detector | enabled | stopped | profile disabled\n"));
    }

    #[test]
    fn stats_json_uses_jansson_layout() {
        let mut m = module(0, 0, "logger", true, 5);
        m.stats = IfcStats::parse(
            r#"{"in_cnt": 1, "out_cnt": 0, "in": [{"ifc_state": 1, "ifc_id": "s", "ifc_type": 117, "messages": 4, "buffers": 2}], "out": []}"#,
        );
        assert_eq!(
            stats_json(&[m]),
            r#"{"logger": {"CPU-u": 0, "CPU-s": 0, "MEM-vms": 0, "MEM-rss": 0, "inputs": [{"type": "u", "ID": "s", "is-conn": 1, "messages": 4, "buffers": 2}], "outputs": []}}"#
        );
    }
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The counters in Prometheus text exposition format (version 0.0.4).
pub fn prometheus(profiles: &[ProfileView], modules: &[ModuleView]) -> String {
    type Get = fn(&ModuleView) -> u64;
    let module_metrics: [(&str, &str, &str, Get); 6] = [
        (
            "nemea_module_enabled",
            "gauge",
            "Whether the module is enabled (1) or not (0).",
            |m| u64::from(m.enabled),
        ),
        (
            "nemea_module_running",
            "gauge",
            "Whether the module runs (1) or not (0).",
            |m| u64::from(m.running),
        ),
        (
            "nemea_module_cpu_user_percent",
            "gauge",
            "User-mode CPU of the module in the last period, percent of the machine.",
            |m| m.cpu_user,
        ),
        (
            "nemea_module_cpu_system_percent",
            "gauge",
            "Kernel-mode CPU of the module in the last period, percent of the machine.",
            |m| m.cpu_system,
        ),
        (
            "nemea_module_memory_vms_bytes",
            "gauge",
            "Virtual memory size of the module.",
            |m| m.mem_vms,
        ),
        (
            "nemea_module_memory_rss_bytes",
            "gauge",
            "Resident set size of the module.",
            |m| m.mem_rss,
        ),
    ];
    let mut s = String::new();
    let base = |m: &ModuleView| {
        format!(
            "module=\"{}\",profile=\"{}\"",
            label(&m.module.name),
            label(profiles.get(m.profile).map_or("", |p| p.name.as_str()))
        )
    };
    for (name, kind, help, get) in module_metrics {
        s += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for m in modules {
            s += &format!("{name}{{{}}} {}\n", base(m), get(m));
        }
    }
    type InGet = fn(&InStat) -> u64;
    let in_metrics: [(&str, &str, &str, InGet); 3] = [
        (
            "nemea_input_connected",
            "gauge",
            "Whether the input interface is connected.",
            |i| u64::from(i.connected),
        ),
        (
            "nemea_input_messages_total",
            "counter",
            "Messages received on the input interface.",
            |i| i.messages,
        ),
        (
            "nemea_input_buffers_total",
            "counter",
            "Buffers received on the input interface.",
            |i| i.buffers,
        ),
    ];
    for (name, kind, help, get) in in_metrics {
        s += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for m in modules.iter().filter(|m| m.running) {
            for (n, i) in m.stats.iter().flat_map(|st| st.inputs.iter()).enumerate() {
                s += &format!(
                    "{name}{{{},ifc=\"{n}\",type=\"{}\",id=\"{}\"}} {}\n",
                    base(m),
                    i.kind,
                    label(&i.id),
                    get(i)
                );
            }
        }
    }
    type OutGet = fn(&OutStat) -> u64;
    let out_metrics: [(&str, &str, &str, OutGet); 5] = [
        (
            "nemea_output_clients",
            "gauge",
            "Clients connected to the output interface.",
            |o| o.clients,
        ),
        (
            "nemea_output_sent_messages_total",
            "counter",
            "Messages sent on the output interface.",
            |o| o.sent,
        ),
        (
            "nemea_output_dropped_messages_total",
            "counter",
            "Messages dropped on the output interface.",
            |o| o.dropped,
        ),
        (
            "nemea_output_buffers_total",
            "counter",
            "Buffers sent on the output interface.",
            |o| o.buffers,
        ),
        (
            "nemea_output_autoflushes_total",
            "counter",
            "Autoflushes of the output interface.",
            |o| o.autoflushes,
        ),
    ];
    for (name, kind, help, get) in out_metrics {
        s += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for m in modules.iter().filter(|m| m.running) {
            for (n, o) in m.stats.iter().flat_map(|st| st.outputs.iter()).enumerate() {
                s += &format!(
                    "{name}{{{},ifc=\"{n}\",type=\"{}\",id=\"{}\"}} {}\n",
                    base(m),
                    o.kind,
                    label(&o.id),
                    get(o)
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod prometheus_tests {
    use super::*;

    #[test]
    fn exposition_lines() {
        let mut m = ModuleView {
            idx: 0,
            profile: 0,
            module: Module {
                name: "log\"ger".into(),
                enabled: true,
                path: "x".into(),
                params: None,
                module_restarts: None,
                interfaces: vec![],
            },
            enabled: true,
            running: true,
            pid: 3,
            cpu_user: 1,
            cpu_system: 2,
            mem_vms: 10,
            mem_rss: 5,
            restarts: 0,
            stats: None,
            reason: None,
        };
        m.stats = IfcStats::parse(
            r#"{"in": [{"ifc_state": 1, "ifc_id": "zw", "ifc_type": 117, "messages": 7, "buffers": 2}], "out": []}"#,
        );
        let p = vec![ProfileView {
            name: "P".into(),
            enabled: true,
        }];
        let text = prometheus(&p, &[m]);
        assert!(text.contains("# TYPE nemea_input_messages_total counter\nnemea_input_messages_total{module=\"log\\\"ger\",profile=\"P\",ifc=\"0\",type=\"u\",id=\"zw\"} 7\n"), "{text}");
        assert!(text.contains("nemea_module_running{module=\"log\\\"ger\",profile=\"P\"} 1\n"));
        assert!(text
            .lines()
            .all(|l| l.starts_with('#') || l.split(' ').count() == 2));
    }
}
