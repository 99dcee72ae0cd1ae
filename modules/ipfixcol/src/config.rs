//! ipfixcol2's startup XML (`ipfixcol2 -c startup.xml`): the parts a NEMEA
//! deployment uses — UDP and TCP inputs, the IPFIX file input, and UniRec
//! outputs with their TRAP interface — turned into this module's options.
//!
//! Supported: `<input>` with `<plugin>` `udp` (`localPort`, default 4739,
//! any number of `localIPAddress`, `templateLifeTime`,
//! `optionsTemplateLifeTime`), `tcp` (`localPort`, `localIPAddress`),
//! `ipfix` (`path`, a file or glob); `<output>` with `<plugin>unirec`
//! (`uniRecFormat`, `splitBiflow` (default true, as ipfixcol2), one of
//! `unix`/`tcp`/`tcp-tls` (`port`, `maxClients`, `keyFile`, `certFile`,
//! `caFile`: a `T:` output)/`file`/`blackhole` in `trapIfcSpec`,
//! `trapIfcCommon`'s `timeout`, `buffer`, `autoflush`). Other output
//! plugins are skipped with a note.

use roxmltree::{Document, Node};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("not XML: {0}")]
    Parse(String),
    #[error("<{0}>: {1}")]
    Bad(String, String),
}

/// A listening address: host (empty = all) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlOutput {
    pub name: String,
    /// The TRAP interface, in `-i` syntax.
    pub ifc: String,
    pub fields: String,
    pub split_biflow: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Startup {
    pub udp: Vec<Listen>,
    pub tcp: Vec<Listen>,
    pub files: Vec<String>,
    pub template_lifetime: Option<u64>,
    pub options_lifetime: Option<u64>,
    pub outputs: Vec<XmlOutput>,
    /// Things skipped, for a note at start-up.
    pub skipped: Vec<String>,
}

fn child<'a>(n: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    n.children().find(|c| c.has_tag_name(name))
}

fn text<'a>(n: Node<'a, 'a>, name: &str) -> Option<&'a str> {
    child(n, name).map(|c| c.text().unwrap_or("").trim())
}

fn number<T: std::str::FromStr>(n: Node<'_, '_>, name: &str) -> Result<Option<T>, XmlError> {
    match text(n, name) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| XmlError::Bad(name.to_string(), format!("{t:?} is not a number"))),
    }
}

fn boolean(n: Node<'_, '_>, name: &str, default: bool) -> Result<bool, XmlError> {
    match text(n, name).map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(default),
        Some("true" | "yes" | "1" | "on") => Ok(true),
        Some("false" | "no" | "0" | "off") => Ok(false),
        Some(t) => Err(XmlError::Bad(
            name.to_string(),
            format!("{t:?} is not true or false"),
        )),
    }
}

fn listens(params: Node<'_, '_>, default_port: u16) -> Result<Vec<Listen>, XmlError> {
    let port = number(params, "localPort")?.unwrap_or(default_port);
    let hosts: Vec<String> = params
        .children()
        .filter(|c| c.has_tag_name("localIPAddress"))
        .map(|c| c.text().unwrap_or("").trim().to_string())
        .collect();
    if hosts.is_empty() || hosts.iter().all(String::is_empty) {
        return Ok(vec![Listen {
            host: String::new(),
            port,
        }]);
    }
    Ok(hosts
        .into_iter()
        .filter(|h| !h.is_empty())
        .map(|host| Listen { host, port })
        .collect())
}

/// The TRAP interface of a UniRec output, in `-i` syntax.
fn trap_ifc(params: Node<'_, '_>) -> Result<String, XmlError> {
    let spec = child(params, "trapIfcSpec")
        .ok_or_else(|| XmlError::Bad("trapIfcSpec".into(), "missing".into()))?;
    let kinds: Vec<Node> = spec.children().filter(Node::is_element).collect();
    let [kind] = kinds.as_slice() else {
        return Err(XmlError::Bad(
            "trapIfcSpec".into(),
            "give exactly one of unix, tcp, file, blackhole".into(),
        ));
    };
    let mut ifc = match kind.tag_name().name() {
        "unix" => {
            let name = text(*kind, "name").unwrap_or("");
            if name.is_empty() || name.contains(':') {
                return Err(XmlError::Bad(
                    "name".into(),
                    "a socket name without ':'".into(),
                ));
            }
            let mut s = format!("u:{name}");
            if let Some(m) = number::<u32>(*kind, "maxClients")? {
                s.push_str(&format!(":max_clients={m}"));
            }
            s
        }
        "tcp" => {
            let port: u16 = number(*kind, "port")?
                .ok_or_else(|| XmlError::Bad("port".into(), "missing".into()))?;
            let mut s = format!("t:{port}");
            if let Some(m) = number::<u32>(*kind, "maxClients")? {
                s.push_str(&format!(":max_clients={m}"));
            }
            s
        }
        "file" => {
            let name = text(*kind, "name").unwrap_or("");
            if name.is_empty() || name.contains(':') {
                return Err(XmlError::Bad(
                    "name".into(),
                    "a file name without ':'".into(),
                ));
            }
            let mut s = format!("f:{name}");
            match text(*kind, "mode") {
                None | Some("" | "write") => {}
                Some("append") => s.push_str(":a"),
                Some(m) => {
                    return Err(XmlError::Bad(
                        "mode".into(),
                        format!("{m:?}: write or append"),
                    ))
                }
            }
            if let Some(t) = number::<u32>(*kind, "time")?.filter(|&t| t > 0) {
                s.push_str(&format!(":time={t}"));
            }
            if let Some(z) = number::<u32>(*kind, "size")?.filter(|&z| z > 0) {
                s.push_str(&format!(":size={z}"));
            }
            s
        }
        "blackhole" => "b:".to_string(),
        "tcp-tls" => {
            let port: u16 = number(*kind, "port")?
                .ok_or_else(|| XmlError::Bad("port".into(), "missing".into()))?;
            let mut s = format!("T:{port}");
            for f in ["keyFile", "certFile", "caFile"] {
                match text(*kind, f) {
                    Some(path) if !path.is_empty() && !path.contains(':') => {
                        s.push(':');
                        s.push_str(path);
                    }
                    _ => {
                        return Err(XmlError::Bad(
                            f.into(),
                            "missing (a PEM file path without ':')".into(),
                        ))
                    }
                }
            }
            if let Some(m) = number::<u32>(*kind, "maxClients")? {
                s.push_str(&format!(":max_clients={m}"));
            }
            s
        }
        other => {
            return Err(XmlError::Bad(
                other.into(),
                "unknown interface type (unix, tcp, tcp-tls, file, blackhole)".into(),
            ))
        }
    };
    if let Some(common) = child(params, "trapIfcCommon") {
        match text(common, "timeout") {
            None | Some("") => {}
            Some(t) => ifc.push_str(&format!(":timeout={t}")),
        }
        if child(common, "buffer").is_some() {
            let on = boolean(common, "buffer", true)?;
            ifc.push_str(if on { ":buffer=on" } else { ":buffer=off" });
        }
        if let Some(a) = number::<u64>(common, "autoflush")? {
            if a == 0 {
                ifc.push_str(":autoflush=off");
            } else {
                ifc.push_str(&format!(":autoflush={a}"));
            }
        }
    }
    Ok(ifc)
}

/// Parses ipfixcol2's startup configuration.
pub fn parse(xml: &str) -> Result<Startup, XmlError> {
    let doc = Document::parse(xml).map_err(|e| XmlError::Parse(e.to_string()))?;
    let root = doc.root_element();
    let mut st = Startup::default();
    let inputs = child(root, "inputPlugins");
    for input in inputs
        .iter()
        .flat_map(|n| n.children().filter(|c| c.has_tag_name("input")))
    {
        let plugin = text(input, "plugin").unwrap_or("");
        let name = text(input, "name").unwrap_or(plugin).to_string();
        let params = child(input, "params").unwrap_or(input);
        match plugin {
            "udp" => {
                st.udp.extend(listens(params, 4739)?);
                if let Some(t) = number(params, "templateLifeTime")? {
                    st.template_lifetime = Some(t);
                }
                if let Some(t) = number(params, "optionsTemplateLifeTime")? {
                    st.options_lifetime = Some(t);
                }
            }
            "tcp" => st.tcp.extend(listens(params, 4739)?),
            "ipfix" => {
                let path = text(params, "path").unwrap_or("");
                if path.is_empty() {
                    return Err(XmlError::Bad(
                        "path".into(),
                        "the ipfix input needs a path".into(),
                    ));
                }
                st.files.push(path.to_string());
            }
            other => st
                .skipped
                .push(format!("input {name:?} (plugin {other:?})")),
        }
    }
    let outputs = child(root, "outputPlugins");
    for output in outputs
        .iter()
        .flat_map(|n| n.children().filter(|c| c.has_tag_name("output")))
    {
        let plugin = text(output, "plugin").unwrap_or("");
        let name = text(output, "name").unwrap_or(plugin).to_string();
        if plugin != "unirec" {
            st.skipped
                .push(format!("output {name:?} (plugin {plugin:?})"));
            continue;
        }
        let params = child(output, "params").unwrap_or(output);
        let fields = text(params, "uniRecFormat").unwrap_or("").to_string();
        if fields.is_empty() {
            return Err(XmlError::Bad("uniRecFormat".into(), "missing".into()));
        }
        st.outputs.push(XmlOutput {
            name,
            ifc: trap_ifc(params)?,
            fields,
            split_biflow: boolean(params, "splitBiflow", true)?,
        });
    }
    if st.outputs.is_empty() {
        return Err(XmlError::Bad(
            "outputPlugins".into(),
            "no unirec output".into(),
        ));
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<ipfixcol2>
  <inputPlugins>
    <input>
      <name>UDP collector</name>
      <plugin>udp</plugin>
      <params>
        <localPort>4739</localPort>
        <localIPAddress></localIPAddress>
        <templateLifeTime>600</templateLifeTime>
      </params>
    </input>
    <input>
      <name>TCP collector</name>
      <plugin>tcp</plugin>
      <params><localPort>4740</localPort><localIPAddress>127.0.0.1</localIPAddress></params>
    </input>
  </inputPlugins>
  <outputPlugins>
    <output>
      <name>UniRec plugin</name>
      <plugin>unirec</plugin>
      <params>
        <uniRecFormat>TIME_FIRST,TIME_LAST,SRC_IP,DST_IP,PROTOCOL,?SRC_PORT,?DST_PORT,?TCP_FLAGS,PACKETS,BYTES</uniRecFormat>
        <splitBiflow>false</splitBiflow>
        <trapIfcCommon><timeout>NO_WAIT</timeout><buffer>true</buffer><autoflush>500000</autoflush></trapIfcCommon>
        <trapIfcSpec><unix><name>ipfixcol-output</name><maxClients>64</maxClients></unix></trapIfcSpec>
      </params>
    </output>
    <output><name>JSON</name><plugin>json</plugin></output>
  </outputPlugins>
</ipfixcol2>"#;

    #[test]
    fn ipfixcol2_startup() {
        let st = parse(XML).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            st.udp,
            vec![Listen {
                host: String::new(),
                port: 4739
            }]
        );
        assert_eq!(
            st.tcp,
            vec![Listen {
                host: "127.0.0.1".into(),
                port: 4740
            }]
        );
        assert_eq!(st.template_lifetime, Some(600));
        assert_eq!(st.outputs.len(), 1);
        let o = &st.outputs[0];
        assert_eq!(
            o.ifc,
            "u:ipfixcol-output:max_clients=64:timeout=NO_WAIT:buffer=on:autoflush=500000"
        );
        assert!(!o.split_biflow);
        assert!(o.fields.starts_with("TIME_FIRST,"));
        assert_eq!(st.skipped.len(), 1);
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        assert!(matches!(parse("<a>"), Err(XmlError::Parse(_))));
        let no_out = "<ipfixcol2><inputPlugins/></ipfixcol2>";
        assert!(parse(no_out)
            .unwrap_err()
            .to_string()
            .contains("no unirec output"));
        let tls = |inner: &str| {
            XML.replace(
                "<unix><name>ipfixcol-output</name><maxClients>64</maxClients></unix>",
                &format!("<tcp-tls>{inner}</tcp-tls>"),
            )
        };
        let e = parse(&tls("<port>1</port><keyFile>k.pem</keyFile>"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("certFile") && e.contains("missing"), "{e}");
        let st = parse(&tls(
            "<port>8000</port><maxClients>3</maxClients><keyFile>/etc/k.pem</keyFile>\
             <certFile>/etc/c.pem</certFile><caFile>/etc/ca.pem</caFile>",
        ))
        .unwrap();
        assert!(
            st.outputs[0]
                .ifc
                .starts_with("T:8000:/etc/k.pem:/etc/c.pem:/etc/ca.pem:max_clients=3"),
            "{}",
            st.outputs[0].ifc
        );
        let port = XML.replace("<localPort>4739</localPort>", "<localPort>x</localPort>");
        assert!(parse(&port).unwrap_err().to_string().contains("localPort"));
    }
}
