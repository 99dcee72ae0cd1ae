//! The native TOML configuration format (see `configs/README.md`).

use crate::config::{Config, Direction, IfcType, Interface, Module, Profile, DEFAULT_RESTARTS};
use crate::error::ConfigError;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    module_restarts: Option<u32>,
    #[serde(default)]
    profile: Vec<TProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TProfile {
    name: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    module: Vec<TModule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TModule {
    name: String,
    path: String,
    #[serde(default = "yes")]
    enabled: bool,
    params: Option<String>,
    module_restarts: Option<u32>,
    #[serde(default)]
    interface: Vec<TInterface>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TInterface {
    #[serde(rename = "type")]
    kind: IfcType,
    direction: Direction,
    params: Option<String>,
    note: Option<String>,
}

fn yes() -> bool {
    true
}

/// Parses TOML text; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let file: File = toml::from_str(text).map_err(|e| {
        let at = match e.span() {
            Some(span) => {
                // A byte offset; cut at a character boundary at or before it.
                let mut start = span.start.min(text.len());
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                let before = &text[..start];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("{origin}:{line}:{col}")
            }
            None => origin.to_string(),
        };
        ConfigError::Syntax {
            at,
            why: e.message().trim().replace('\n', " "),
        }
    })?;
    Ok(Config {
        module_restarts: file.module_restarts.unwrap_or(DEFAULT_RESTARTS),
        profiles: file
            .profile
            .into_iter()
            .map(|p| Profile {
                name: p.name,
                enabled: p.enabled,
                modules: p
                    .module
                    .into_iter()
                    .map(|m| Module {
                        name: m.name,
                        enabled: m.enabled,
                        path: m.path,
                        params: m.params.filter(|s| !s.trim().is_empty()),
                        module_restarts: m.module_restarts,
                        interfaces: m
                            .interface
                            .into_iter()
                            .map(|i| Interface {
                                kind: i.kind,
                                direction: i.direction,
                                params: i.params,
                                note: i.note,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    })
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text =
        crate::xml::read_limited(path, crate::xml::MAX_SIZE).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
    parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profiles() {
        let c = parse(
            r#"
module-restarts = 2
[[profile]]
name = "Data sources"
[[profile.module]]
name = "gen"
path = "zwave_generator"
params = "-p 1"
[[profile.module.interface]]
type = "UNIXSOCKET"
direction = "OUT"
params = "zwave"
"#,
            "x.toml",
        )
        .unwrap();
        assert_eq!(c.module_restarts, 2);
        let m = &c.profiles[0].modules[0];
        assert!(m.enabled && c.profiles[0].enabled);
        assert_eq!(m.args().unwrap(), ["-p", "1", "-i", "u:zwave"]);
    }

    #[test]
    fn unknown_field_names_the_line() {
        let e = parse(
            "[[profile]]\nname = \"a\"\n[[profile.module]]\nname = \"x\"\npath = \"y\"\npaht = 1\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.toml:6:1: unknown field `paht`"), "{e}");
        let e = parse(
            "[[profile]]\nname = \"a\"\n[[profile.module]]\nname = \"x\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("c.toml:3") && e.contains("missing field `path`"),
            "{e}"
        );
    }
}
