//! The reporter rule configuration: NEMEA's `reporter_config`, read from
//! NEMEA's YAML files (`.yaml`/`.yml`) as they are, or written in TOML:
//!
//! ```toml
//! namespace = "com.example.nemea"
//!
//! [[addressgroups]]
//! id = "privnets"
//! list = ["10.0.0.0/8", "192.168.0.0/16"]     # or: file = "/path" (one per line)
//!
//! [[custom_actions]]
//! id = "store"
//! file = { path = "/var/log/nemea/events.idea", max_size = 100000000, keep = 5 }
//!
//! [[custom_actions]]
//! id = "mark1"
//! mark = { path = "_CESNET.Whitelisted", value = "True" }
//!
//! [[custom_actions]]
//! id = "out"
//! trap = {}                                    # needs -T
//!
//! [[rules]]
//! id = 1
//! condition = "Source.IP4 in privnets"
//! actions = ["mark1", "store", "drop"]
//! elseactions = ["stdout"]
//! ```
//!
//! Action types: `file` (JSON lines appended; `-` or `/dev/stdout` = stdout;
//! rotated to PATH.1 … PATH.keep when `max_size` bytes would be exceeded; an
//! existing directory gets one file `<ID>.idea` per message),
//! `mark` (set a dotted path to a value in this rule's copy of the message),
//! `trap` (send on the TRAP output). `drop` (stop all further actions and
//! rules) and `stdout` are built in. Rules run in file order; each rule's
//! actions work on a fresh copy of the message, as in NEMEA.
//!
//! NEMEA's other action types (`email`, `mongo`, `warden`, `syslog`) and its
//! `smtp_connections` are accepted in a file, so NEMEA configurations load,
//! but a rule that uses such an action is refused with a message naming it.

use crate::condition::{Cond, Net};
use detector_common::files::{read_text, ReadError};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Causes are in the text, so not also `source()`s (that would print
    // them twice under anyhow's `{:#}`).
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: {detail}")]
    Syntax { path: String, detail: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("action {id}: {path}: {cause}")]
    File {
        id: String,
        path: String,
        cause: io::Error,
    },
    #[error("action {id}: {detail}")]
    Sink { id: String, detail: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    namespace: Option<String>,
    /// Only for NEMEA's email actions, which are not supported.
    #[serde(default, rename = "smtp_connections")]
    _smtp_connections: Option<IgnoredAny>,
    #[serde(default)]
    addressgroups: Vec<RawGroup>,
    #[serde(default)]
    custom_actions: Vec<RawAction>,
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    id: String,
    file: Option<String>,
    list: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    id: String,
    file: Option<FileParams>,
    mark: Option<MarkParams>,
    trap: Option<IgnoredAny>,
    email: Option<IgnoredAny>,
    mongo: Option<IgnoredAny>,
    warden: Option<IgnoredAny>,
    syslog: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct FileParams {
    path: String,
    /// NEMEA: where directory output is written before the rename into
    /// `path` (on the same file system, so the rename is atomic).
    temp_path: Option<String>,
    max_size: Option<u64>,
    keep: Option<u32>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct MarkParams {
    path: String,
    value: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Value,
    /// A text; YAML may also give `true`, `false` or null.
    condition: Option<Value>,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    elseactions: Vec<String>,
}

/// How a rule set's address-group files are read.
pub type GroupFiles<'a> = &'a dyn Fn(&Path) -> Result<String, ReadError>;

/// Where actions that leave the process go (stdout, the TRAP output).
pub trait Sinks {
    fn stdout(&mut self, line: &str) -> io::Result<()>;
    fn trap(&mut self, line: &str) -> Result<(), String>;
}

#[derive(Debug)]
enum Action {
    /// A NEMEA action type we do not have (its name); refused when used.
    Unsupported(&'static str),
    Stdout,
    Drop,
    Trap,
    Mark {
        path: Vec<String>,
        value: Value,
    },
    File(FileSink),
}

#[derive(Debug)]
struct FileSink {
    path: PathBuf,
    temp_path: Option<PathBuf>,
    max_size: Option<u64>,
    keep: u32,
    file: Option<File>,
    size: u64,
}

impl FileSink {
    /// A directory (as in NEMEA): one file `<ID>.idea` per message, written
    /// under a temporary name (in `temp_path` when given) and renamed.
    fn write_dir(&self, msg: &Value, line: &str) -> io::Result<()> {
        let id = msg.get("ID").and_then(Value::as_str).unwrap_or("unknown");
        let id: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let tmp = match &self.temp_path {
            Some(dir) => dir.join(format!("{id}.idea")),
            None => self.path.join(format!(".{id}.tmp")),
        };
        fs::write(&tmp, format!("{line}\n"))?;
        fs::rename(&tmp, self.path.join(format!("{id}.idea")))
    }

    fn write(&mut self, line: &str) -> io::Result<()> {
        let n = line.len() as u64 + 1;
        if let Some(max) = self.max_size {
            if self.file.is_some() && self.size > 0 && self.size + n > max {
                self.rotate()?;
            }
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        if let Some(f) = &mut self.file {
            let mut buf = Vec::with_capacity(line.len() + 1);
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            f.write_all(&buf)?;
            self.size += n;
        }
        Ok(())
    }

    /// PATH → PATH.1 → PATH.2 … (the oldest beyond `keep` is removed).
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let name = |i: u32| -> PathBuf {
            let mut s = self.path.clone().into_os_string();
            s.push(format!(".{i}"));
            PathBuf::from(s)
        };
        let _ = fs::remove_file(name(self.keep));
        for i in (1..self.keep).rev() {
            let from = name(i);
            if from.exists() {
                fs::rename(&from, name(i + 1))?;
            }
        }
        if self.keep > 0 {
            fs::rename(&self.path, name(1))?;
        } else {
            fs::remove_file(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

#[derive(Debug)]
struct Rule {
    id: String,
    cond: Cond,
    actions: Vec<usize>,
    elseactions: Vec<usize>,
}

/// A loaded rule set.
#[derive(Debug)]
pub struct RuleSet {
    pub namespace: Option<String>,
    actions: Vec<(String, Action)>,
    rules: Vec<Rule>,
    uses_trap: bool,
}

/// A value read from TOML or YAML as JSON; TOML datetimes (which serde
/// hands over as a one-key table) become their text.
fn plain_json(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            if o.len() == 1 {
                if let Some(Value::String(d)) = o.get("$__toml_private_datetime") {
                    return Value::String(d.clone());
                }
            }
            Value::Object(o.into_iter().map(|(k, v)| (k, plain_json(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(plain_json).collect()),
        v => v,
    }
}

fn rule_id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The condition text of a rule: YAML's `true`/`false`/null as NEMEA reads
/// them (null = always).
fn condition_text(v: Option<&Value>) -> Result<String, String> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(other) => Err(format!("condition must be a text, not {other}")),
    }
}

impl RuleSet {
    /// The rules used without `-c`: everything to stdout (and to the TRAP
    /// output with `-T`).
    pub fn default_rules(trap: bool) -> RuleSet {
        let mut actions = vec![("stdout".to_string(), Action::Stdout)];
        if trap {
            actions.push(("trap".to_string(), Action::Trap));
        }
        let all = (0..actions.len()).collect();
        RuleSet {
            namespace: None,
            actions,
            rules: vec![Rule {
                id: "default".into(),
                cond: Cond::Const(true),
                actions: all,
                elseactions: Vec::new(),
            }],
            uses_trap: trap,
        }
    }

    /// Loads a rules file: YAML (NEMEA's format) when the name ends in
    /// `.yaml` or `.yml`, TOML otherwise.
    pub fn load(path: &Path) -> Result<RuleSet, ConfigError> {
        let p = path.display().to_string();
        let text = read_text(path)?;
        let yaml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
        if yaml {
            Self::parse_yaml_named(&text, &p, &read_text)
        } else {
            Self::parse_toml_named(&text, &p, &read_text)
        }
    }

    /// A TOML rule set.
    pub fn parse(text: &str) -> Result<RuleSet, ConfigError> {
        Self::parse_toml_named(text, "<config>", &read_text)
    }

    /// A YAML rule set (NEMEA's reporter configuration).
    pub fn parse_yaml(text: &str) -> Result<RuleSet, ConfigError> {
        Self::parse_yaml_named(text, "<config>", &read_text)
    }

    /// A rule set in YAML or TOML whose address-group files are read by
    /// `files` (the fuzz target's reads none).
    pub fn parse_with(text: &str, yaml: bool, files: GroupFiles) -> Result<RuleSet, ConfigError> {
        if yaml {
            Self::parse_yaml_named(text, "<config>", files)
        } else {
            Self::parse_toml_named(text, "<config>", files)
        }
    }

    fn parse_toml_named(text: &str, path: &str, files: GroupFiles) -> Result<RuleSet, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_string(),
            detail: e.message().to_string()
                + &e.span()
                    .map(|s| {
                        let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                        format!(" (line {line})")
                    })
                    .unwrap_or_default(),
        })?;
        Self::from_raw(raw, path, files)
    }

    fn parse_yaml_named(text: &str, path: &str, files: GroupFiles) -> Result<RuleSet, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_string(),
            // The first line says where and what; the rest is a source
            // snippet.
            detail: {
                let text = e.to_string();
                let first = text.lines().next().unwrap_or("").trim();
                first.strip_prefix("error: ").unwrap_or(first).to_string()
            },
        })?;
        Self::from_raw(raw, path, files)
    }

    fn from_raw(raw: RawConfig, path: &str, files: GroupFiles) -> Result<RuleSet, ConfigError> {
        let inv = |m: String| ConfigError::Invalid(format!("{path}: {m}"));
        let mut groups: HashMap<String, Vec<Net>> = HashMap::new();
        for g in &raw.addressgroups {
            let entries: Vec<(String, String)> = match (&g.file, &g.list) {
                (Some(f), None) => files(Path::new(f))
                    .map_err(|e| inv(format!("address group {}: {e}", g.id)))?
                    .lines()
                    .enumerate()
                    .map(|(i, l)| (format!("{f}:{}", i + 1), l.trim().to_string()))
                    .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
                    .collect(),
                (None, Some(l)) => l
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (format!("entry {}", i + 1), x.clone()))
                    .collect(),
                _ => {
                    return Err(inv(format!(
                        "address group {} needs exactly one of file, list",
                        g.id
                    )))
                }
            };
            let mut nets = Vec::new();
            for (where_, e) in entries {
                match Net::parse(&e) {
                    Some(n) => nets.push(n),
                    None => libtrap::log::warn(&format!(
                        "address group {}: {where_}: `{e}` is not an address or prefix, skipped",
                        g.id
                    )),
                }
            }
            groups.insert(g.id.clone(), nets);
        }
        let mut actions: Vec<(String, Action)> = vec![
            ("drop".into(), Action::Drop),
            ("stdout".into(), Action::Stdout),
        ];
        let mut uses_trap = false;
        for a in raw.custom_actions {
            if actions.iter().any(|(id, _)| *id == a.id) {
                return Err(inv(format!(
                    "action id {} is defined twice (or built in)",
                    a.id
                )));
            }
            let unsupported = [
                ("email", a.email.is_some()),
                ("mongo", a.mongo.is_some()),
                ("warden", a.warden.is_some()),
                ("syslog", a.syslog.is_some()),
            ];
            let n = usize::from(a.file.is_some())
                + usize::from(a.mark.is_some())
                + usize::from(a.trap.is_some())
                + unsupported.iter().filter(|(_, set)| *set).count();
            if n != 1 {
                return Err(inv(format!(
                    "action {} needs exactly one type (file, mark, trap)",
                    a.id
                )));
            }
            let act = if let Some((kind, _)) = unsupported.iter().find(|(_, set)| *set) {
                Action::Unsupported(kind)
            } else if let Some(f) = a.file {
                if f.path == "-" || f.path == "/dev/stdout" {
                    Action::Stdout
                } else {
                    Action::File(FileSink {
                        path: PathBuf::from(f.path),
                        temp_path: f.temp_path.map(PathBuf::from),
                        max_size: f.max_size,
                        keep: f.keep.unwrap_or(5),
                        file: None,
                        size: 0,
                    })
                }
            } else if let Some(m) = a.mark {
                Action::Mark {
                    path: m.path.split('.').map(str::to_string).collect(),
                    value: plain_json(m.value),
                }
            } else {
                uses_trap = true;
                Action::Trap
            };
            actions.push((a.id, act));
        }
        if raw.rules.is_empty() {
            return Err(inv("at least one rule is needed".into()));
        }
        let find = |rule: &str, ids: &[String]| -> Result<Vec<usize>, ConfigError> {
            ids.iter()
                .map(|id| {
                    let i = actions
                        .iter()
                        .position(|(a, _)| a == id)
                        .ok_or_else(|| inv(format!("rule {rule}: unknown action {id}")))?;
                    if let Action::Unsupported(kind) = actions[i].1 {
                        return Err(inv(format!(
                            "rule {rule}: action {id} is of type {kind}, which nemea-rs does \
                             not support (file, mark, trap, drop and stdout are)"
                        )));
                    }
                    Ok(i)
                })
                .collect()
        };
        let mut rules = Vec::new();
        for r in &raw.rules {
            let id = rule_id(&r.id);
            let cond = condition_text(r.condition.as_ref())
                .and_then(|text| Cond::parse(&text, &groups))
                .map_err(|e| inv(format!("rule {id}: condition: {e}")))?;
            rules.push(Rule {
                actions: find(&id, &r.actions)?,
                elseactions: find(&id, &r.elseactions)?,
                id,
                cond,
            });
        }
        Ok(RuleSet {
            namespace: raw.namespace,
            actions,
            rules,
            uses_trap,
        })
    }

    /// True when an action sends to the TRAP output (so `-T` is needed).
    pub fn uses_trap(&self) -> bool {
        self.uses_trap
    }

    /// Runs the rules on one message.
    pub fn apply(&mut self, msg: &Value, sinks: &mut dyn Sinks) -> Result<(), ActionError> {
        for r in 0..self.rules.len() {
            let rule = &self.rules[r];
            let list = if rule.cond.eval(msg) {
                rule.actions.clone()
            } else {
                rule.elseactions.clone()
            };
            let mut copy = msg.clone();
            for a in list {
                let (id, action) = &mut self.actions[a];
                match action {
                    // Refused at load time when a rule names it.
                    Action::Unsupported(_) => {}
                    Action::Drop => return Ok(()),
                    Action::Stdout => {
                        sinks
                            .stdout(&copy.to_string())
                            .map_err(|e| ActionError::Sink {
                                id: id.clone(),
                                detail: e.to_string(),
                            })?
                    }
                    Action::Trap => {
                        sinks
                            .trap(&copy.to_string())
                            .map_err(|detail| ActionError::Sink {
                                id: id.clone(),
                                detail,
                            })?
                    }
                    Action::Mark { path, value } => set_path(&mut copy, path, value.clone()),
                    Action::File(f) if f.path.is_dir() => f
                        .write_dir(&copy, &copy.to_string())
                        .map_err(|cause| ActionError::File {
                            id: id.clone(),
                            path: f.path.display().to_string(),
                            cause,
                        })?,
                    Action::File(f) => {
                        f.write(&copy.to_string())
                            .map_err(|cause| ActionError::File {
                                id: id.clone(),
                                path: f.path.display().to_string(),
                                cause,
                            })?
                    }
                }
            }
        }
        Ok(())
    }

    /// A short description of the rules (for `--dry`).
    pub fn describe(&self) -> String {
        let mut s = format!(
            "namespace: {}\n",
            self.namespace.as_deref().unwrap_or("(none)")
        );
        for r in &self.rules {
            let names = |l: &[usize]| {
                l.iter()
                    .map(|&i| self.actions[i].0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            s += &format!(
                "rule {}: {:?}\n  actions: [{}]\n  elseactions: [{}]\n",
                r.id,
                r.cond,
                names(&r.actions),
                names(&r.elseactions)
            );
        }
        s
    }
}

/// Sets `path` to `value`, creating objects on the way; an array on the way
/// is entered at its first element.
fn set_path(v: &mut Value, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = value;
        return;
    };
    if let Value::Array(a) = v {
        if a.is_empty() {
            a.push(Value::Object(Default::default()));
        }
        return set_path(&mut a[0], path, value);
    }
    if !v.is_object() {
        *v = Value::Object(Default::default());
    }
    if let Value::Object(o) = v {
        let e = o.entry(first.clone()).or_insert(Value::Null);
        set_path(e, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_their_cause_once() {
        use std::error::Error;
        let e = RuleSet::load(Path::new("/nonexistent/rules.yaml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/rules.yaml: "),
            "{e}"
        );
        assert!(e.source().is_none());
        let e = ActionError::File {
            id: "a".into(),
            path: "p".into(),
            cause: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert!(e.source().is_none());
    }
    use serde_json::json;

    #[derive(Default)]
    struct Capture {
        out: Vec<String>,
        trap: Vec<String>,
    }
    impl Sinks for Capture {
        fn stdout(&mut self, line: &str) -> io::Result<()> {
            self.out.push(line.to_string());
            Ok(())
        }
        fn trap(&mut self, line: &str) -> Result<(), String> {
            self.trap.push(line.to_string());
            Ok(())
        }
    }

    #[test]
    fn rules_mark_drop_and_else() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/events.idea");
        let cfg = format!(
            r#"
namespace = "org.example"
[[addressgroups]]
id = "priv"
list = ["10.0.0.0/8", "not-an-ip"]
[[custom_actions]]
id = "store"
file = {{ path = "{}" }}
[[custom_actions]]
id = "m"
mark = {{ path = "_CESNET.Whitelisted", value = "True" }}
[[custom_actions]]
id = "out"
trap = {{}}
[[rules]]
id = 1
condition = "Source.IP4 in priv"
actions = ["m", "store", "drop"]
elseactions = ["stdout"]
[[rules]]
id = 2
condition = ""
actions = ["out"]
"#,
            file.display()
        );
        let mut rs = RuleSet::parse(&cfg).unwrap();
        assert!(rs.uses_trap());
        assert_eq!(rs.namespace.as_deref(), Some("org.example"));
        let mut c = Capture::default();
        let private = json!({"Source": [{"IP4": ["10.0.0.1"]}]});
        let public = json!({"Source": [{"IP4": ["192.0.2.1"]}]});
        rs.apply(&private, &mut c).unwrap();
        rs.apply(&public, &mut c).unwrap();
        assert_eq!(c.out, vec![public.to_string()]);
        assert_eq!(c.trap, vec![public.to_string()]);
        let stored = fs::read_to_string(&file).unwrap();
        assert_eq!(
            stored,
            "{\"Source\":[{\"IP4\":[\"10.0.0.1\"]}],\"_CESNET\":{\"Whitelisted\":\"True\"}}\n"
        );
    }

    #[test]
    fn file_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("e.idea");
        let cfg = format!(
            "[[custom_actions]]\nid = \"f\"\nfile = {{ path = \"{}\", max_size = 20, keep = 2 }}\n[[rules]]\nid = 1\nactions = [\"f\"]\n",
            file.display()
        );
        let mut rs = RuleSet::parse(&cfg).unwrap();
        let mut c = Capture::default();
        for i in 0..4 {
            rs.apply(&json!({"n": format!("{i:08}")}), &mut c).unwrap();
        }
        // Each line is 15 bytes: one per file.
        assert_eq!(fs::read_to_string(&file).unwrap(), "{\"n\":\"00000003\"}\n");
        let r1 = dir.path().join("e.idea.1");
        let r2 = dir.path().join("e.idea.2");
        assert_eq!(fs::read_to_string(r1).unwrap(), "{\"n\":\"00000002\"}\n");
        assert_eq!(fs::read_to_string(r2).unwrap(), "{\"n\":\"00000001\"}\n");
        assert!(!dir.path().join("e.idea.3").exists());
    }

    #[test]
    fn directory_action() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!(
            "[[custom_actions]]\nid = \"d\"\nfile = {{ path = \"{}\" }}\n[[rules]]\nid = 1\nactions = [\"d\"]\n",
            dir.path().display()
        );
        let mut rs = RuleSet::parse(&cfg).unwrap();
        rs.apply(&json!({"ID": "abc-1", "x": 1}), &mut Capture::default())
            .unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("abc-1.idea")).unwrap(),
            "{\"ID\":\"abc-1\",\"x\":1}\n"
        );
    }

    #[test]
    fn config_errors() {
        for (cfg, want) in [
            ("rules = []", "at least one rule"),
            (
                "[[rules]]\nid = 1\nactions = [\"nope\"]",
                "unknown action nope",
            ),
            (
                "[[rules]]\nid = 1\ncondition = \"x >\"",
                "rule 1: condition",
            ),
            (
                "[[custom_actions]]\nid = \"drop\"\ntrap = {}\n[[rules]]\nid = 1",
                "built in",
            ),
            (
                "[[custom_actions]]\nid = \"a\"\n[[rules]]\nid = 1",
                "exactly one type",
            ),
            ("bogus = 1\n[[rules]]\nid = 1", "unknown field"),
        ] {
            let e = RuleSet::parse(cfg).unwrap_err().to_string();
            assert!(e.contains(want), "{cfg}: {e}");
        }
    }

    /// NEMEA's configuration shape, in YAML, with every section NEMEA has.
    fn nemea_yaml(dir: &Path, rules: &str) -> String {
        format!(
            r#"namespace: com.example.nemea
smtp_connections:
  - id: localserver
    server: 127.0.0.1
    port: 25
    force_ssl: False
addressgroups:
  - id: privnets
    list: [10.0.0.0/8, 192.168.0.0/16, 1.2.3.4]
custom_actions:
  - id: store
    file: {{path: {}}}
  - id: spool
    file: {{path: {}, temp_path: {}}}
  - id: m1
    mongo: {{host: localhost, port: 27017, db: nemeadb}}
  - id: mark1
    mark: {{path: _CESNET.Whitelisted, value: 'True'}}
  - id: mail
    email: {{to: 'a@x, b@y', subject: '{{{{ category }}}}', smtp_connection: localserver}}
  - id: w
    warden: {{}}
  - id: out
    trap: {{}}
  - id: log
    syslog: {{identifier: nemea, priority: LOG_ALERT}}
rules:
{rules}"#,
            dir.join("events.idea").display(),
            dir.join("spool").display(),
            dir.join("tmp").display(),
        )
    }

    #[test]
    fn nemea_yaml_config() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("spool")).unwrap();
        fs::create_dir(dir.path().join("tmp")).unwrap();
        let rules = "  - id: 1
    condition: Source.IP4 in privnets or Target.IP4 in privnets
    actions: [mark1, store, drop]
    elseactions: [spool, out]
  - id: 2
    condition: true
    actions: [stdout]
  - id: 3
    condition: false
    elseactions: [stdout]
  - id: 4
    condition:
";
        let path = dir.path().join("config.yaml");
        fs::write(&path, nemea_yaml(dir.path(), rules)).unwrap();
        let mut rs = RuleSet::load(&path).unwrap();
        assert_eq!(rs.namespace.as_deref(), Some("com.example.nemea"));
        assert!(rs.uses_trap());
        let mut c = Capture::default();
        let private = json!({"ID": "p-1", "Target": [{"IP4": ["192.168.1.1"]}]});
        let public = json!({"ID": "q-2", "Source": [{"IP4": ["192.0.2.1"]}]});
        rs.apply(&private, &mut c).unwrap();
        rs.apply(&public, &mut c).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("events.idea")).unwrap(),
            "{\"ID\":\"p-1\",\"Target\":[{\"IP4\":[\"192.168.1.1\"]}],\"_CESNET\":{\"Whitelisted\":\"True\"}}\n"
        );
        // The public message: spooled through temp_path, sent, then printed
        // by rules 2 (true) and 3 (else of false); rule 4 has no actions.
        assert_eq!(
            fs::read_to_string(dir.path().join("spool/q-2.idea")).unwrap(),
            format!("{public}\n")
        );
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(c.trap, vec![public.to_string()]);
        assert_eq!(c.out, vec![public.to_string(), public.to_string()]);
    }

    #[test]
    fn nemea_yaml_unsupported_action_named() {
        let dir = tempfile::tempdir().unwrap();
        for (action, kind) in [
            ("m1", "mongo"),
            ("mail", "email"),
            ("w", "warden"),
            ("log", "syslog"),
        ] {
            let rules = format!("  - id: 7\n    condition: null\n    actions: [store, {action}]\n");
            let e = RuleSet::parse_yaml(&nemea_yaml(dir.path(), &rules))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!(
                    "rule 7: action {action} is of type {kind}, which nemea-rs does not support"
                )),
                "{e}"
            );
        }
        for (bad, want) in [
            ("rules: []\n", "at least one rule"),
            (
                "rules:\n  - id: 1\n    condition: 5\n",
                "condition must be a text",
            ),
            ("rules: [\n", "<config>: "),
            ("namespace: x\nrule: []\n", "unknown field"),
        ] {
            let e = RuleSet::parse_yaml(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    /// Issue 16, finding 1: a condition nested 20 000 deep overflowed the
    /// stack; it is refused with one line naming the limit, as are deeply
    /// nested YAML and TOML values (their parsers' own limits).
    #[test]
    fn deep_nesting_is_one_error() {
        let deep = "(".repeat(20_000) + "true" + &")".repeat(20_000);
        let yaml = format!(
            "namespace: x\nrules:\n  - id: 1\n    condition: \"{deep}\"\n    actions: [stdout]\n"
        );
        let e = RuleSet::parse_yaml(&yaml).unwrap_err().to_string();
        assert_eq!(
            e,
            "<config>: rule 1: condition: nested more than 256 levels deep (the limit for \
             parentheses, `not`s and lists)"
        );
        let toml = format!("[[rules]]\nid = 1\ncondition = \"{deep}\"\n");
        let e = RuleSet::parse(&toml).unwrap_err().to_string();
        assert!(e.contains("nested more than 256 levels deep"), "{e}");
        for yaml in [
            format!(
                "rules:\n  - id: {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            format!(
                "rules:\n  - id: {}1{}\n",
                "{a: ".repeat(100_000),
                "}".repeat(100_000)
            ),
        ] {
            let e = RuleSet::parse_yaml(&yaml).unwrap_err().to_string();
            assert!(e.starts_with("<config>: line 2 "), "{e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let toml = format!(
            "[[rules]]\nid = {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let e = RuleSet::parse(&toml).unwrap_err().to_string();
        assert!(e.contains("recursion"), "{e}");
    }
}
