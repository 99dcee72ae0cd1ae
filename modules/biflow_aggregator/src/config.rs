//! What to aggregate: the fields and their functions, from NEMEA's XML
//! config (`biflow_aggregator -c FILE -n SECTION`) or from the options of
//! the older `aggregator` (`-k KEY -s FIELD ...`), and the timeouts.
//!
//! The XML file is checked as C checks it: the root is `<aggregator>`, its
//! children are `<id name="...">` sections, a section's children are
//! `<field>` elements, and a field's children are `name`, `type`,
//! `reverse_name`, `sort_key`, `sort_type`, `delimiter` (one character) and
//! `size` (a positive number); anything else is an error, and so is a field
//! named twice.

use std::fmt;

/// An aggregation function (`<type>` in the XML).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    /// Part of the key.
    Key,
    Sum,
    /// Sum divided by the number of records at export.
    Avg,
    Min,
    Max,
    BitAnd,
    BitOr,
    First,
    /// The first value that is not zero (not empty, for strings).
    FirstNonEmpty,
    Last,
    LastNonEmpty,
    /// Arrays concatenated (strings joined, each followed by the delimiter)
    /// up to `size` elements.
    Append,
    /// The number of distinct values, as `NAME_UNIQUE_COUNT` (uint32).
    UniqueCount,
    /// The elements of an array, sorted by the matching elements of
    /// another (`sort_key`), the first `size` kept.
    SortedMerge,
    /// As [`Func::SortedMerge`], with values of records seen in the reverse
    /// direction negated (direction-signed packet sizes).
    SortedMergeDir,
}

impl Func {
    pub const ALL: [Func; 15] = [
        Func::Key,
        Func::Sum,
        Func::Avg,
        Func::Min,
        Func::Max,
        Func::BitAnd,
        Func::BitOr,
        Func::First,
        Func::FirstNonEmpty,
        Func::Last,
        Func::LastNonEmpty,
        Func::Append,
        Func::UniqueCount,
        Func::SortedMerge,
        Func::SortedMergeDir,
    ];

    /// The name in the XML config.
    pub const fn name(self) -> &'static str {
        match self {
            Func::Key => "KEY",
            Func::Sum => "SUM",
            Func::Avg => "AVG",
            Func::Min => "MIN",
            Func::Max => "MAX",
            Func::BitAnd => "BITAND",
            Func::BitOr => "BITOR",
            Func::First => "FIRST",
            Func::FirstNonEmpty => "FIRST_NON_EMPTY",
            Func::Last => "LAST",
            Func::LastNonEmpty => "LAST_NON_EMPTY",
            Func::Append => "APPEND",
            Func::UniqueCount => "UNIQUE_COUNT",
            Func::SortedMerge => "SORTED_MERGE",
            Func::SortedMergeDir => "SORTED_MERGE_DIR",
        }
    }

    pub fn from_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }

    fn needs_size(self) -> bool {
        matches!(
            self,
            Func::Append | Func::SortedMerge | Func::SortedMergeDir
        )
    }
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Order of a sorted merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Ascending,
    Descending,
}

/// One `<field>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldConfig {
    pub name: String,
    /// The field of the opposite direction (`PACKETS_REV` for `PACKETS`).
    pub reverse_name: Option<String>,
    pub func: Func,
    pub sort_key: Option<String>,
    pub order: Order,
    /// Written after each string an APPEND joins.
    pub delimiter: u8,
    /// Element limit of APPEND and the sorted merges.
    pub limit: Option<usize>,
    /// False for the reverse-direction helpers biflow mode adds.
    pub output: bool,
}

impl FieldConfig {
    pub fn new(name: &str, func: Func) -> FieldConfig {
        FieldConfig {
            name: name.to_string(),
            reverse_name: None,
            func,
            sort_key: None,
            order: Order::Ascending,
            delimiter: DEFAULT_DELIMITER,
            limit: None,
            output: true,
        }
    }
}

/// The delimiter of APPENDed strings when the config gives none (the
/// README's default; C's code leaves a NUL byte).
pub const DEFAULT_DELIMITER: u8 = b';';

/// The fields of one section, ready for the aggregator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    pub fields: Vec<FieldConfig>,
    /// SRC_IP, DST_IP, SRC_PORT, DST_PORT and PROTOCOL are all keys: the two
    /// directions of a connection aggregate together.
    pub biflow: bool,
}

/// A config that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Xml(String),
    #[error("no section <id name=\"{0}\"> in the config (the sections are: {1})")]
    NoSection(String, String),
    #[error("field `{0}` is configured twice (one function per field)")]
    Duplicate(String),
    #[error("invalid type `{0}` (expected one of {list})", list = Func::ALL.map(Func::name).join("|"))]
    BadType(String),
    #[error("field `{field}`: {what}")]
    Field { field: String, what: String },
    #[error("biflow key: {0}")]
    Biflow(String),
    #[error("{0}")]
    Option(String),
}

fn field_err(field: &str, what: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_string(),
        what: what.into(),
    }
}

/// Reads section `section` of an XML config.
pub fn parse_xml(text: &str, section: &str) -> Result<Fields, ConfigError> {
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| ConfigError::Xml(format!("not valid XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "aggregator" {
        return Err(ConfigError::Xml(format!(
            "the root element is <{}>, expected <aggregator>",
            root.tag_name().name()
        )));
    }
    let mut names = Vec::new();
    for id in root.children().filter(|n| n.is_element()) {
        if id.tag_name().name() != "id" {
            return Err(ConfigError::Xml(format!(
                "<{}> in <aggregator>, expected <id name=\"...\">",
                id.tag_name().name()
            )));
        }
        let Some(name) = id.attribute("name") else {
            return Err(ConfigError::Xml(
                "an <id> without a name attribute (expected <id name=\"...\">)".into(),
            ));
        };
        names.push(name.to_string());
        if name != section {
            continue;
        }
        let mut fields: Vec<FieldConfig> = Vec::new();
        for f in id.children().filter(|n| n.is_element()) {
            if f.tag_name().name() != "field" {
                return Err(ConfigError::Xml(format!(
                    "<{}> in section `{section}`, expected <field>",
                    f.tag_name().name()
                )));
            }
            let field = parse_field(f)?;
            if fields.iter().any(|g| g.name == field.name) {
                return Err(ConfigError::Duplicate(field.name));
            }
            fields.push(field);
        }
        return prepare(fields);
    }
    Err(ConfigError::NoSection(
        section.to_string(),
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        },
    ))
}

fn parse_field(node: roxmltree::Node<'_, '_>) -> Result<FieldConfig, ConfigError> {
    let mut name = None;
    let mut func = None;
    let mut field = FieldConfig::new("", Func::Key);
    for opt in node.children().filter(|n| n.is_element()) {
        let value = opt.text().unwrap_or("").trim();
        match opt.tag_name().name() {
            "name" => name = Some(value.to_string()),
            "reverse_name" => field.reverse_name = Some(value.to_string()).filter(|v| !v.is_empty()),
            "type" => func = Some(Func::from_name(value).ok_or_else(|| ConfigError::BadType(value.to_string()))?),
            "sort_key" => field.sort_key = Some(value.to_string()).filter(|v| !v.is_empty()),
            "sort_type" => {
                field.order = match value {
                    "ASCENDING" => Order::Ascending,
                    "DESCENDING" => Order::Descending,
                    _ => {
                        return Err(ConfigError::Xml(format!(
                            "invalid sort_type `{value}` (expected ASCENDING|DESCENDING)"
                        )))
                    }
                }
            }
            "delimiter" => {
                // The raw text: a space is a valid delimiter.
                let raw = opt.text().unwrap_or("");
                match raw.as_bytes() {
                    [b] => field.delimiter = *b,
                    _ => {
                        return Err(ConfigError::Xml(format!(
                            "delimiter `{raw}` is {} bytes, expected exactly 1",
                            raw.len()
                        )))
                    }
                }
            }
            "size" => match value.parse::<usize>() {
                Ok(n) if n > 0 => field.limit = Some(n),
                _ => return Err(ConfigError::Xml(format!("invalid size `{value}` (expected a number > 0)"))),
            },
            other => {
                return Err(ConfigError::Xml(format!(
                    "<{other}> in <field>, expected name|type|reverse_name|sort_key|sort_type|delimiter|size"
                )))
            }
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ConfigError::Xml("a <field> without <name>".into()))?;
    field.func = func.ok_or_else(|| field_err(&name, "no <type>"))?;
    field.name = name;
    check_field(&field)?;
    Ok(field)
}

fn check_field(f: &FieldConfig) -> Result<(), ConfigError> {
    if matches!(f.func, Func::SortedMerge | Func::SortedMergeDir) && f.sort_key.is_none() {
        return Err(field_err(&f.name, format!("{} needs <sort_key>", f.func)));
    }
    if f.func.needs_size() && f.limit.is_none() {
        return Err(field_err(
            &f.name,
            format!("{} needs <size> (the element limit)", f.func),
        ));
    }
    Ok(())
}

const BIFLOW_KEY: [(&str, &str); 4] = [
    ("SRC_IP", "DST_IP"),
    ("DST_IP", "SRC_IP"),
    ("SRC_PORT", "DST_PORT"),
    ("DST_PORT", "SRC_PORT"),
];

/// Checks a list of fields and switches biflow mode on when SRC_IP,
/// DST_IP, SRC_PORT, DST_PORT and PROTOCOL are all keys: each of the four
/// addresses and ports must then name its counterpart as reverse_name, and
/// every other field with a reverse_name gets a hidden twin aggregating the
/// opposite direction (as C does).
pub fn prepare(mut fields: Vec<FieldConfig>) -> Result<Fields, ConfigError> {
    for (i, f) in fields.iter().enumerate() {
        check_field(f)?;
        if fields[..i].iter().any(|g| g.name == f.name) {
            return Err(ConfigError::Duplicate(f.name.clone()));
        }
    }
    let is_key =
        |fields: &[FieldConfig], n: &str| fields.iter().any(|f| f.name == n && f.func == Func::Key);
    let biflow = ["SRC_IP", "DST_IP", "SRC_PORT", "DST_PORT", "PROTOCOL"]
        .iter()
        .all(|k| is_key(&fields, k));
    if !biflow {
        return Ok(Fields { fields, biflow });
    }
    for (name, rev) in BIFLOW_KEY {
        if let Some(f) = fields.iter().find(|f| f.name == name) {
            if f.reverse_name.as_deref() != Some(rev) {
                return Err(ConfigError::Biflow(format!(
                    "{name} needs <reverse_name>{rev}</reverse_name> when SRC_IP, DST_IP, SRC_PORT, DST_PORT and PROTOCOL are keys"
                )));
            }
        }
    }
    let mut twins = Vec::new();
    for f in &fields {
        let Some(rev) = &f.reverse_name else { continue };
        if is_key(&fields, rev) || fields.iter().any(|g| &g.name == rev) {
            continue;
        }
        twins.push(FieldConfig {
            name: rev.clone(),
            reverse_name: Some(f.name.clone()),
            output: false,
            ..f.clone()
        });
    }
    fields.extend(twins);
    Ok(Fields { fields, biflow })
}

/// `-g N[a|absolute|r|relative]`: flush every flow every N seconds of
/// record time, at multiples of N (absolute) or N after the last flush
/// (relative, the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Global {
    pub interval: u64,
    pub absolute: bool,
}

/// Parses `-g`; `0` (or any 0-second interval) means no global timeout.
pub fn parse_global(text: &str) -> Result<Option<Global>, ConfigError> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (num, mode) = text.split_at(digits);
    let bad = || {
        ConfigError::Option(format!(
            "-g `{text}`: expected <seconds>[a|absolute|r|relative], e.g. -g 300a"
        ))
    };
    let interval: u64 = num.parse().map_err(|_| bad())?;
    let absolute = match mode {
        "a" | "absolute" => true,
        "" | "r" | "relative" => false,
        _ => return Err(bad()),
    };
    Ok((interval > 0).then_some(Global { interval, absolute }))
}

/// The timeouts, in seconds of record time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A flow is exported this long after its first record.
    pub active: u64,
    /// A flow is exported when no record came for this long.
    pub passive: u64,
    /// When set, flows are exported only all at once, on this schedule.
    pub global: Option<Global>,
}

impl Default for Timeouts {
    /// C's defaults: active 40 s, passive 20 s, no global timeout.
    fn default() -> Self {
        Timeouts {
            active: 40,
            passive: 20,
            global: None,
        }
    }
}

/// The older `aggregator`'s `-t` option: `A:SEC`, `P:SEC`, `G:SEC`,
/// `M:ACTIVE,PASSIVE`, or bare `SEC` (active). Each value must be > 0.
pub fn parse_time_window(text: &str) -> Result<Timeouts, ConfigError> {
    let bad = |why: &str| {
        ConfigError::Option(format!(
            "-t `{text}`: {why} (expected A:SEC, P:SEC, G:SEC or M:ACTIVE,PASSIVE)"
        ))
    };
    let secs = |s: &str| match s.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad("the seconds must be a number > 0")),
    };
    // A timeout that never comes: the other kind decides alone.
    const NEVER: u64 = u32::MAX as u64;
    let (kind, value) = match text.split_once(':') {
        Some((k, v)) => (k.trim(), v),
        None => ("A", text),
    };
    Ok(match kind {
        "a" | "A" => {
            // A passive timeout as long as the active one never ends a flow first.
            let active = secs(value)?;
            Timeouts {
                active,
                passive: active,
                global: None,
            }
        }
        "p" | "P" => Timeouts {
            active: NEVER,
            passive: secs(value)?,
            global: None,
        },
        "g" | "G" => Timeouts {
            active: NEVER,
            passive: NEVER,
            global: Some(Global {
                interval: secs(value)?,
                absolute: false,
            }),
        },
        "m" | "M" => {
            let (a, p) = value
                .split_once(',')
                .ok_or_else(|| bad("M needs two values"))?;
            Timeouts {
                active: secs(a)?,
                passive: secs(p)?,
                global: None,
            }
        }
        _ => return Err(bad("unknown kind")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0"?>
<aggregator>
  <!-- comments and whitespace are fine -->
  <id name="by_src">
    <field><name>SRC_IP</name><type>KEY</type></field>
    <field><name>BYTES</name><type>SUM</type></field>
    <field><name>PKT_LENGTHS</name><type>SORTED_MERGE</type><sort_key>PKT_TIMES</sort_key>
      <sort_type>DESCENDING</sort_type><size>20</size></field>
    <field><name>URL</name><type>APPEND</type><delimiter> </delimiter><size>100</size></field>
  </id>
  <id name="biflow">
    <field><name>SRC_IP</name><type>KEY</type><reverse_name>DST_IP</reverse_name></field>
    <field><name>DST_IP</name><type>KEY</type><reverse_name>SRC_IP</reverse_name></field>
    <field><name>SRC_PORT</name><type>KEY</type><reverse_name>DST_PORT</reverse_name></field>
    <field><name>DST_PORT</name><type>KEY</type><reverse_name>SRC_PORT</reverse_name></field>
    <field><name>PROTOCOL</name><type>KEY</type></field>
    <field><name>PACKETS</name><type>SUM</type><reverse_name>PACKETS_REV</reverse_name></field>
  </id>
</aggregator>"#;

    #[test]
    fn reads_a_section() {
        let f = parse_xml(XML, "by_src").unwrap();
        assert!(!f.biflow);
        assert_eq!(f.fields.len(), 4);
        assert_eq!(f.fields[0], FieldConfig::new("SRC_IP", Func::Key));
        let sm = &f.fields[2];
        assert_eq!(
            (sm.func, sm.sort_key.as_deref(), sm.order, sm.limit),
            (
                Func::SortedMerge,
                Some("PKT_TIMES"),
                Order::Descending,
                Some(20)
            )
        );
        assert_eq!(f.fields[3].delimiter, b' ');
    }

    #[test]
    fn biflow_adds_hidden_reverse_twins() {
        let f = parse_xml(XML, "biflow").unwrap();
        assert!(f.biflow);
        let twin = f.fields.last().unwrap();
        assert_eq!(
            (
                twin.name.as_str(),
                twin.reverse_name.as_deref(),
                twin.func,
                twin.output
            ),
            ("PACKETS_REV", Some("PACKETS"), Func::Sum, false)
        );
        assert_eq!(f.fields.len(), 7);
    }

    #[test]
    fn biflow_needs_reverse_names_on_the_key() {
        let mut fields: Vec<_> = ["SRC_IP", "DST_IP", "SRC_PORT", "DST_PORT", "PROTOCOL"]
            .iter()
            .map(|n| FieldConfig::new(n, Func::Key))
            .collect();
        let e = prepare(fields.clone()).unwrap_err();
        assert!(
            e.to_string().contains("SRC_IP needs <reverse_name>DST_IP"),
            "{e}"
        );
        for (f, r) in fields
            .iter_mut()
            .zip(["DST_IP", "SRC_IP", "DST_PORT", "SRC_PORT"])
        {
            f.reverse_name = Some(r.into());
        }
        assert!(prepare(fields).unwrap().biflow);
    }

    fn err(xml_fields: &str) -> String {
        let xml = format!("<aggregator><id name=\"s\">{xml_fields}</id></aggregator>");
        parse_xml(&xml, "s").unwrap_err().to_string()
    }

    #[test]
    fn refuses_what_c_refuses() {
        assert!(
            err("<field><name>A</name><type>SUMM</type></field>").contains("invalid type `SUMM`")
        );
        assert!(
            err("<field><name>A</name><type>SUM</type><color>red</color></field>")
                .contains("<color> in <field>")
        );
        assert!(err("<thing/>").contains("<thing> in section `s`"));
        assert!(err("<field><name>A</name><type>SUM</type></field><field><name>A</name><type>MAX</type></field>")
            .contains("`A` is configured twice"));
        assert!(err("<field><name>A</name><type>APPEND</type><delimiter>ab</delimiter><size>3</size></field>")
            .contains("delimiter `ab` is 2 bytes"));
        assert!(
            err("<field><name>A</name><type>APPEND</type><size>0</size></field>")
                .contains("invalid size `0`")
        );
        assert!(
            err("<field><name>A</name><type>APPEND</type></field>").contains("APPEND needs <size>")
        );
        assert!(
            err("<field><name>A</name><type>SORTED_MERGE</type><size>3</size></field>")
                .contains("needs <sort_key>")
        );
        assert!(err("<field><type>SUM</type></field>").contains("without <name>"));
        assert!(err("<field><name>A</name></field>").contains("`A`: no <type>"));
        let e = parse_xml("<aggregator><id name=\"x\"/></aggregator>", "y").unwrap_err();
        assert_eq!(
            e.to_string(),
            "no section <id name=\"y\"> in the config (the sections are: x)"
        );
        assert!(parse_xml("<aggr/>", "y")
            .unwrap_err()
            .to_string()
            .contains("expected <aggregator>"));
        assert!(parse_xml("<aggregator>", "y")
            .unwrap_err()
            .to_string()
            .contains("not valid XML"));
    }

    #[test]
    fn global_timeout_forms() {
        assert_eq!(parse_global("0").unwrap(), None);
        assert_eq!(
            parse_global("5").unwrap(),
            Some(Global {
                interval: 5,
                absolute: false
            })
        );
        assert_eq!(
            parse_global("5r").unwrap(),
            parse_global("5relative").unwrap()
        );
        assert_eq!(
            parse_global("300absolute").unwrap(),
            Some(Global {
                interval: 300,
                absolute: true
            })
        );
        assert!(parse_global("5x").is_err());
        assert!(parse_global("a").is_err());
    }

    #[test]
    fn time_window_forms() {
        assert_eq!(parse_time_window("A:10").unwrap().active, 10);
        assert_eq!(parse_time_window("30").unwrap().active, 30);
        let m = parse_time_window("m:10,25").unwrap();
        assert_eq!((m.active, m.passive), (10, 25));
        assert_eq!(parse_time_window("P:7").unwrap().passive, 7);
        assert_eq!(
            parse_time_window("G:60")
                .unwrap()
                .global
                .map(|g| g.interval),
            Some(60)
        );
        for bad in ["X:1", "A:0", "M:5", "A:x", "M:1,0"] {
            assert!(parse_time_window(bad).is_err(), "{bad}");
        }
    }
}
