//! What an IDEA alert (the `*2idea` reporters' JSON, one message a line)
//! asks the actuator to block: every address or prefix of its `Source`
//! entries; with no source named (a flood whose senders the detector does
//! not list), the `Target` addresses, whose incoming traffic is dropped.
//! Ranges (`a-b`) are not prefixes and are skipped, as are entries that
//! are not addresses; a message that is not a JSON object is an error.

use crate::batch::Prefix;
use serde_json::Value;

/// An alert's blocking request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Sources to block (empty when the alert names none).
    pub sources: Vec<Prefix>,
    /// Destinations to shield, when there are no sources.
    pub targets: Vec<Prefix>,
    /// The alert's `Category` and `ID`, for the rule's description.
    pub label: String,
}

fn prefixes(entries: Option<&Value>) -> Vec<Prefix> {
    let mut out = Vec::new();
    for e in entries.and_then(Value::as_array).into_iter().flatten() {
        for key in ["IP4", "IP6"] {
            for a in e.get(key).and_then(Value::as_array).into_iter().flatten() {
                if let Some(p) = a.as_str().and_then(|s| Prefix::parse(s.trim())) {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

/// Reads one IDEA message.
pub fn parse(text: &str) -> Result<Request, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if !v.is_object() {
        return Err("not an IDEA message (a JSON object)".into());
    }
    let sources = prefixes(v.get("Source"));
    let targets = if sources.is_empty() {
        prefixes(v.get("Target"))
    } else {
        Vec::new()
    };
    let category = v
        .get("Category")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(Value::as_str)
        .unwrap_or("alert");
    let label = match v.get("ID").and_then(Value::as_str) {
        Some(id) => format!("{category} {id}"),
        None => category.to_string(),
    };
    Ok(Request {
        sources,
        targets,
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        Prefix::parse(s).unwrap()
    }

    #[test]
    fn sources_are_blocked_targets_only_without_them() {
        let r = parse(
            r#"{"Format":"IDEA0","ID":"x1","Category":["Recon.Scanning"],
                "Source":[{"IP4":["198.51.100.7","198.51.100.7"],"IP6":["2001:db8::/64"]},
                          {"IP4":["203.0.113.1-203.0.113.9","nonsense"]}],
                "Target":[{"IP4":["192.0.2.1"]}]}"#,
        )
        .unwrap();
        assert_eq!(r.sources, vec![p("198.51.100.7"), p("2001:db8::/64")]);
        assert!(r.targets.is_empty());
        assert_eq!(r.label, "Recon.Scanning x1");
        let r = parse(r#"{"Category":["Availability.DDoS"],"Target":[{"IP4":["192.0.2.1"]}]}"#)
            .unwrap();
        assert!(r.sources.is_empty());
        assert_eq!(r.targets, vec![p("192.0.2.1")]);
        assert_eq!(r.label, "Availability.DDoS");
    }

    #[test]
    fn bad_messages_are_errors() {
        assert!(parse("").is_err());
        assert!(parse("[1,2]").is_err());
        assert!(parse("{\"Source\": ").is_err());
        // No addresses at all: nothing to do, not an error.
        let r = parse(r#"{"Source":[{"Hostname":["a.example"]}],"Target":7}"#).unwrap();
        assert!(r.sources.is_empty() && r.targets.is_empty());
    }
}
