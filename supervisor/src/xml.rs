//! NEMEA's XML configuration: a template whose `<!-- include PATH -->` lines
//! are replaced by `.sup` fragments (a file, or every `*.sup` file directly
//! inside a directory), then parsed with NEMEA's strict element tree.
//!
//! Errors name the original file and line, even inside included fragments.

use crate::config::{Config, Direction, IfcType, Interface, Module, Profile, DEFAULT_RESTARTS};
use crate::error::ConfigError;
use roxmltree::{Document, Node};
use std::path::{Path, PathBuf};

const MAX_DEPTH: usize = 16;

/// The template with every include expanded, and where each line came from.
#[derive(Debug, Default)]
pub struct Generated {
    pub text: String,
    /// `(file, 1-based line)` of each line of `text`.
    pub origins: Vec<(PathBuf, usize)>,
}

impl Generated {
    fn at(&self, row: u32) -> String {
        match self.origins.get((row as usize).saturating_sub(1)) {
            Some((f, l)) => format!("{}:{l}", f.display()),
            None => format!("line {row}"),
        }
    }
}

/// The path of an include directive, if `line` is one. Accepts
/// `<!-- include PATH -->` and `<!-- include: PATH -->`.
fn include_path(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix("<!--")?.trim_start();
    let rest = rest.strip_prefix("include")?;
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let end = rest.find("-->")?;
    let path = rest[..end].trim();
    (!path.is_empty()).then_some((path, &rest[end + 3..]))
}

/// Largest template or fragment read, and largest expanded text.
pub const MAX_SIZE: usize = 16 << 20;
/// Most include directives followed in one expansion.
pub const MAX_INCLUDES: usize = 10_000;

/// What an include names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// Where a template and its fragments are read from: [`Disk`], or
/// [`Memory`] for tests and fuzzing.
pub trait Source {
    /// The text of a file (at most [`MAX_SIZE`] bytes).
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// A file, a directory, or nothing readable.
    fn kind(&self, path: &Path) -> Option<Kind>;
    /// The files directly inside a directory.
    fn files(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>>;
}

/// Reads a file of at most `limit` bytes (not `/dev/zero` until memory runs out).
pub fn read_limited(path: &Path, limit: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_string(&mut text)?;
    if text.len() > limit {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            limit >> 20
        )));
    }
    Ok(text)
}

/// The filesystem.
pub struct Disk;

impl Source for Disk {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        read_limited(path, MAX_SIZE)
    }

    fn kind(&self, path: &Path) -> Option<Kind> {
        if path.is_dir() {
            Some(Kind::Dir)
        } else if path.is_file() {
            Some(Kind::File)
        } else {
            None
        }
    }

    fn files(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        Ok(std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect())
    }
}

/// Files held in memory; a directory is any prefix of their paths.
#[derive(Clone, Debug, Default)]
pub struct Memory(pub std::collections::BTreeMap<PathBuf, String>);

impl Source for Memory {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::ErrorKind::NotFound.into())
    }

    fn kind(&self, path: &Path) -> Option<Kind> {
        if self.0.contains_key(path) {
            Some(Kind::File)
        } else if self.0.keys().any(|k| k.starts_with(path)) {
            Some(Kind::Dir)
        } else {
            None
        }
    }

    fn files(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        Ok(self
            .0
            .keys()
            .filter(|k| k.parent() == Some(dir))
            .cloned()
            .collect())
    }
}

struct Expansion<'s, S> {
    src: &'s S,
    includes: usize,
    out: Generated,
}

impl<S: Source> Expansion<'_, S> {
    fn push(&mut self, text: &str, origin: (&Path, usize)) -> Result<(), ConfigError> {
        if self.out.text.len() + text.len() + 1 > MAX_SIZE {
            return Err(ConfigError::Syntax {
                at: format!("{}:{}", origin.0.display(), origin.1),
                why: format!(
                    "the expanded configuration is larger than {} MiB",
                    MAX_SIZE >> 20
                ),
            });
        }
        self.out.text.push_str(text);
        self.out.text.push('\n');
        self.out.origins.push((origin.0.to_path_buf(), origin.1));
        Ok(())
    }

    fn expand(&mut self, path: &Path, depth: usize) -> Result<(), ConfigError> {
        let text = self.src.read(path).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (i, line) in text.lines().enumerate() {
            let Some((inc, rest)) = include_path(line) else {
                self.push(line, (path, i + 1))?;
                continue;
            };
            let at = || format!("{}:{}", path.display(), i + 1);
            if depth >= MAX_DEPTH {
                return Err(ConfigError::Syntax {
                    at: at(),
                    why: "includes nested too deeply".into(),
                });
            }
            self.includes += 1;
            if self.includes > MAX_INCLUDES {
                return Err(ConfigError::Syntax {
                    at: at(),
                    why: format!("more than {MAX_INCLUDES} includes"),
                });
            }
            let target = base.join(inc);
            match self.src.kind(&target) {
                Some(Kind::Dir) => {
                    let mut files: Vec<PathBuf> = self
                        .src
                        .files(&target)
                        .map_err(|cause| ConfigError::Io {
                            path: target.clone(),
                            cause,
                        })?
                        .into_iter()
                        .filter(|p| p.extension().is_some_and(|e| e == "sup"))
                        .collect();
                    files.sort();
                    for f in files {
                        self.expand(&f, depth + 1)?;
                    }
                }
                Some(Kind::File) => {
                    if target.extension().is_none_or(|e| e != "sup") {
                        return Err(ConfigError::Syntax {
                            at: at(),
                            why: format!("included file {} does not end in .sup", target.display()),
                        });
                    }
                    self.expand(&target, depth + 1)?;
                }
                None => {
                    return Err(ConfigError::Syntax {
                        at: at(),
                        why: format!(
                            "include {}: neither a readable file nor a directory",
                            target.display()
                        ),
                    });
                }
            }
            if !rest.trim().is_empty() {
                self.push(rest, (path, i + 1))?;
            }
        }
        Ok(())
    }
}

/// Expands the includes of a template.
pub fn generate(template: &Path) -> Result<Generated, ConfigError> {
    generate_from(&Disk, template)
}

/// Expands the includes of a template read from `src`.
pub fn generate_from(src: &impl Source, template: &Path) -> Result<Generated, ConfigError> {
    let mut e = Expansion {
        src,
        includes: 0,
        out: Generated::default(),
    };
    e.expand(template, 0)?;
    Ok(e.out)
}

/// Loads a template: expands includes and parses the result.
pub fn load(template: &Path) -> Result<(Config, Generated), ConfigError> {
    load_from(&Disk, template)
}

/// [`load`] from any [`Source`].
pub fn load_from(src: &impl Source, template: &Path) -> Result<(Config, Generated), ConfigError> {
    let g = generate_from(src, template)?;
    let cfg = parse_generated(&g)?;
    Ok((cfg, g))
}

/// Parses XML text that has no includes (`origin` names it in errors).
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let g = Generated {
        text: text.to_string(),
        origins: (1..=text.lines().count().max(1))
            .map(|l| (PathBuf::from(origin), l))
            .collect(),
    };
    parse_generated(&g)
}

struct Ctx<'a, 'i> {
    g: &'a Generated,
    doc: &'a Document<'i>,
}

impl Ctx<'_, '_> {
    fn err(&self, node: Node, why: impl Into<String>) -> ConfigError {
        let pos = self.doc.text_pos_at(node.range().start);
        ConfigError::Syntax {
            at: self.g.at(pos.row),
            why: why.into(),
        }
    }

    fn text(&self, node: Node) -> String {
        node.children()
            .filter(|c| c.is_text())
            .filter_map(|c| c.text())
            .collect::<String>()
            .trim()
            .to_string()
    }

    fn boolean(&self, node: Node) -> Result<bool, ConfigError> {
        match self.text(node).as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(self.err(
                node,
                format!("<{}> must be true or false, not {other:?}", name(node)),
            )),
        }
    }

    fn restarts(&self, node: Node) -> Result<u32, ConfigError> {
        let t = self.text(node);
        t.parse::<u32>()
            .ok()
            .filter(|n| *n <= crate::config::MAX_RESTARTS)
            .ok_or_else(|| {
                self.err(
                    node,
                    format!("<module-restarts> must be an integer 0..30, not {t:?}"),
                )
            })
    }

    fn unexpected(&self, node: Node, parent: Node) -> ConfigError {
        self.err(
            node,
            format!("unexpected element <{}> in <{}>", name(node), name(parent)),
        )
    }

    fn once<'n, 'x>(
        &self,
        slot: &mut Option<Node<'n, 'x>>,
        node: Node<'n, 'x>,
    ) -> Result<(), ConfigError> {
        if slot.is_some() {
            return Err(self.err(node, format!("duplicate <{}>", name(node))));
        }
        *slot = Some(node);
        Ok(())
    }
}

fn name<'a>(node: Node<'a, '_>) -> &'a str {
    node.tag_name().name()
}

fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(|c| c.is_element())
}

fn parse_generated(g: &Generated) -> Result<Config, ConfigError> {
    let doc = Document::parse(&g.text).map_err(|e| ConfigError::Syntax {
        at: g.at(e.pos().row),
        why: e.to_string(),
    })?;
    let cx = Ctx { g, doc: &doc };
    let root = doc.root_element();
    if name(root) != "nemea-supervisor" {
        return Err(cx.err(
            root,
            format!(
                "root element must be <nemea-supervisor>, not <{}>",
                name(root)
            ),
        ));
    }
    let mut cfg = Config {
        module_restarts: DEFAULT_RESTARTS,
        profiles: Vec::new(),
    };
    let mut sup = None;
    for el in elements(root) {
        match name(el) {
            "supervisor" => {
                cx.once(&mut sup, el)?;
                for s in elements(el) {
                    match name(s) {
                        "module-restarts" => cfg.module_restarts = cx.restarts(s)?,
                        // Older NEMEA releases had these; they do nothing here.
                        "verbose" | "logs-directory" => {}
                        _ => return Err(cx.unexpected(s, el)),
                    }
                }
            }
            "modules" => cfg.profiles.push(profile(&cx, el)?),
            _ => return Err(cx.unexpected(el, root)),
        }
    }
    // Duplicates are reported with the element's position.
    let mut seen_p = std::collections::HashSet::new();
    let mut seen_m = std::collections::HashSet::new();
    for el in elements(root).filter(|e| name(*e) == "modules") {
        let pname = elements(el)
            .find(|e| name(*e) == "name")
            .map(|n| cx.text(n))
            .unwrap_or_default();
        if !seen_p.insert(pname.clone()) {
            return Err(cx.err(el, format!("duplicate profile name {pname:?}")));
        }
        for m in elements(el).filter(|e| name(*e) == "module") {
            let mname = elements(m)
                .find(|e| name(*e) == "name")
                .map(|n| cx.text(n))
                .unwrap_or_default();
            if !seen_m.insert(mname.clone()) {
                return Err(cx.err(m, format!("duplicate module name {mname:?}")));
            }
        }
    }
    Ok(cfg)
}

fn profile(cx: &Ctx, el: Node) -> Result<Profile, ConfigError> {
    let (mut pname, mut enabled) = (None, None);
    let mut modules = Vec::new();
    for c in elements(el) {
        match name(c) {
            "name" => cx.once(&mut pname, c)?,
            "enabled" => cx.once(&mut enabled, c)?,
            "module" => modules.push(module(cx, c)?),
            _ => return Err(cx.unexpected(c, el)),
        }
    }
    let pname = pname.ok_or_else(|| cx.err(el, "<modules> without <name>"))?;
    let enabled = enabled.ok_or_else(|| cx.err(el, "<modules> without <enabled>"))?;
    Ok(Profile {
        name: cx.text(pname),
        enabled: cx.boolean(enabled)?,
        modules,
    })
}

fn module(cx: &Ctx, el: Node) -> Result<Module, ConfigError> {
    let (mut mname, mut enabled, mut path, mut params, mut restarts, mut ifcs) =
        (None, None, None, None, None, None);
    for c in elements(el) {
        match name(c) {
            "name" => cx.once(&mut mname, c)?,
            "enabled" => cx.once(&mut enabled, c)?,
            "path" => cx.once(&mut path, c)?,
            "params" => cx.once(&mut params, c)?,
            "module-restarts" => cx.once(&mut restarts, c)?,
            "trapinterfaces" => cx.once(&mut ifcs, c)?,
            _ => return Err(cx.unexpected(c, el)),
        }
    }
    let mname = mname.ok_or_else(|| cx.err(el, "<module> without <name>"))?;
    let mname = cx.text(mname);
    let missing = |what: &str| cx.err(el, format!("module {mname:?}: missing <{what}>"));
    let enabled = enabled.ok_or_else(|| missing("enabled"))?;
    let path = path.ok_or_else(|| missing("path"))?;
    let path_text = cx.text(path);
    if path_text.is_empty() {
        return Err(cx.err(path, format!("module {mname:?}: empty <path>")));
    }
    let mut interfaces = Vec::new();
    if let Some(ifcs) = ifcs {
        for i in elements(ifcs) {
            if name(i) != "interface" {
                return Err(cx.unexpected(i, ifcs));
            }
            interfaces.push(interface(cx, i)?);
        }
    }
    let params = params.map(|p| cx.text(p)).filter(|p| !p.is_empty());
    if let Some(p) = &params {
        crate::config::split_params(p)
            .map_err(|why| cx.err(el, format!("module {mname:?}: params: {why}")))?;
    }
    Ok(Module {
        enabled: cx.boolean(enabled)?,
        path: path_text,
        params,
        module_restarts: restarts.map(|r| cx.restarts(r)).transpose()?,
        interfaces,
        name: mname,
    })
}

fn interface(cx: &Ctx, el: Node) -> Result<Interface, ConfigError> {
    let (mut kind, mut dir, mut params, mut note) = (None, None, None, None);
    for c in elements(el) {
        match name(c) {
            "type" => cx.once(&mut kind, c)?,
            "direction" => cx.once(&mut dir, c)?,
            "params" => cx.once(&mut params, c)?,
            "note" => cx.once(&mut note, c)?,
            _ => return Err(cx.unexpected(c, el)),
        }
    }
    let kind = kind.ok_or_else(|| cx.err(el, "<interface> without <type>"))?;
    let dir = dir.ok_or_else(|| cx.err(el, "<interface> without <direction>"))?;
    let kt = cx.text(kind);
    let kind = IfcType::from_xml(&kt).ok_or_else(|| {
        cx.err(
            kind,
            format!("<type> must be TCP, UNIXSOCKET, FILE, BLACKHOLE or TLS, not {kt:?}"),
        )
    })?;
    let direction = match cx.text(dir).as_str() {
        "IN" => Direction::In,
        "OUT" => Direction::Out,
        other => return Err(cx.err(dir, format!("<direction> must be IN or OUT, not {other:?}"))),
    };
    Ok(Interface {
        kind,
        direction,
        params: params.map(|p| cx.text(p)).filter(|p| !p.is_empty()),
        note: note.map(|p| cx.text(p)).filter(|p| !p.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0"?>
<nemea-supervisor>
  <supervisor><module-restarts>4</module-restarts></supervisor>
  <modules>
    <name>Detectors</name>
    <enabled>true</enabled>
    <module>
      <name>rep</name>
      <enabled>false</enabled>
      <path>/usr/bin/traffic_repeater</path>
      <params>-n "a b"</params>
      <module-restarts>0</module-restarts>
      <trapinterfaces>
        <interface><type>UNIXSOCKET</type><direction>OUT</direction><params>out</params></interface>
        <interface><type>TCP</type><direction>IN</direction><params>localhost,7600</params><note>x</note></interface>
      </trapinterfaces>
    </module>
  </modules>
</nemea-supervisor>
"#;

    #[test]
    fn parses_nemea_tree() {
        let c = parse(SAMPLE, "t.xml").unwrap();
        assert_eq!(c.module_restarts, 4);
        let m = &c.profiles[0].modules[0];
        assert!(!m.enabled);
        assert_eq!(m.module_restarts, Some(0));
        assert_eq!(
            m.args().unwrap(),
            ["-n", "a b", "-i", "t:localhost:7600,u:out"]
        );
    }

    #[test]
    fn unknown_element_names_line() {
        let bad = SAMPLE.replace("<params>-n", "<parms>x</parms><params>-n");
        let e = parse(&bad, "t.xml").unwrap_err().to_string();
        assert_eq!(e, "t.xml:11: unexpected element <parms> in <module>");
        let bad = SAMPLE.replace("<path>/usr/bin/traffic_repeater</path>", "");
        let e = parse(&bad, "t.xml").unwrap_err().to_string();
        assert_eq!(e, "t.xml:7: module \"rep\": missing <path>");
    }

    #[test]
    fn include_directive_syntax() {
        assert_eq!(include_path("  <!-- include /a/b -->"), Some(("/a/b", "")));
        assert_eq!(
            include_path("<!-- include: x.sup --></m>"),
            Some(("x.sup", "</m>"))
        );
        assert_eq!(include_path("<!-- includes -->"), None);
        assert_eq!(include_path("<!-- a comment -->"), None);
    }

    fn memory(files: &[(&str, &str)]) -> Memory {
        Memory(
            files
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
        )
    }

    #[test]
    fn includes_from_memory_name_their_lines() {
        let src = memory(&[
            (
                "/c/sup.xml",
                "<nemea-supervisor>\n<!-- include d -->\n</nemea-supervisor>",
            ),
            (
                "/c/d/b.sup",
                "<modules>\n<name>B</name>\n<enabled>true</enabled>\n</modules>",
            ),
            (
                "/c/d/a.sup",
                "<modules>\n<name>A</name>\n<enabled>maybe</enabled>\n</modules>",
            ),
            ("/c/d/x.txt", "ignored"),
        ]);
        let e = load_from(&src, Path::new("/c/sup.xml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/c/d/a.sup:3: <enabled> must be true or false, not \"maybe\""
        );
    }

    #[test]
    fn include_bombs_are_cut_off() {
        // Each of 14 levels includes the next twice: 2^14 includes.
        let mut files = vec![("/t.xml".to_string(), "<!-- include l0.sup -->".to_string())];
        for l in 0..14 {
            files.push((
                format!("/l{l}.sup"),
                format!(
                    "<!-- include l{n}.sup -->\n<!-- include l{n}.sup -->",
                    n = l + 1
                ),
            ));
        }
        files.push(("/l14.sup".into(), "x".repeat(1000)));
        let src = Memory(
            files
                .into_iter()
                .map(|(p, t)| (PathBuf::from(p), t))
                .collect(),
        );
        let e = generate_from(&src, Path::new("/t.xml"))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with(": more than 10000 includes"), "{e}");
        // A wide one: one fragment included many times.
        let mut files = vec![(
            "/t.xml".to_string(),
            "<!-- include w.sup -->\n".repeat(20_000),
        )];
        files.push(("/w.sup".into(), "y".into()));
        let src = Memory(
            files
                .into_iter()
                .map(|(p, t)| (PathBuf::from(p), t))
                .collect(),
        );
        let e = generate_from(&src, Path::new("/t.xml"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "/t.xml:10001: more than 10000 includes");
    }

    #[test]
    fn huge_templates_are_refused() {
        let e = read_limited(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(e.to_string(), "larger than 1 MiB");
    }
}
