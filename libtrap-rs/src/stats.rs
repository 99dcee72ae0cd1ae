//! Per-interface counters, published for the service interface.
//!
//! Interfaces count in plain fields on their hot path and publish into these
//! atomics once per buffer (container or file block), so statistics cost
//! nothing per message.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Counters of one input interface.
#[derive(Debug, Default)]
pub struct InputStats {
    pub connected: AtomicBool,
    pub messages: AtomicU64,
    pub buffers: AtomicU64,
    pub missed: AtomicU64,
    pub received_bytes: AtomicU64,
    /// µs the module spent on the previous buffer before asking for the next.
    pub delay_last: AtomicU64,
    /// Sum of those delays, in µs (the JSON reports whole seconds, as libtrap).
    pub delay_total: AtomicU64,
}

/// One client of a socket output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Peer PID (unix socket) or remote port (TCP).
    pub id: String,
    pub sent_containers: u64,
    pub sent_messages: u64,
    pub skipped_messages: u64,
}

/// Counters of one output interface.
#[derive(Debug, Default)]
pub struct OutputStats {
    pub sent_messages: AtomicU64,
    pub dropped_messages: AtomicU64,
    /// Blocks written (file outputs only, as in libtrap).
    pub buffers: AtomicU64,
    /// Flushes that emitted a container (socket outputs).
    pub autoflushes: AtomicU64,
    pub num_clients: AtomicU64,
    pub clients: Mutex<Vec<ClientStats>>,
}

/// Identity of an interface in the statistics.
#[derive(Debug)]
pub struct IfcInfo {
    pub letter: char,
    /// Port, socket name, current file name, or `none`.
    pub id: Mutex<String>,
}

impl IfcInfo {
    pub fn new(letter: char, id: impl Into<String>) -> IfcInfo {
        IfcInfo {
            letter,
            id: Mutex::new(id.into()),
        }
    }
    pub fn set_id(&self, id: impl Into<String>) {
        if let Ok(mut g) = self.id.lock() {
            *g = id.into();
        }
    }
    fn id(&self) -> String {
        self.id.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// All interfaces of one module.
#[derive(Debug, Default)]
pub struct Registry {
    inputs: Mutex<Vec<(Arc<IfcInfo>, Arc<InputStats>)>>,
    outputs: Mutex<Vec<(Arc<IfcInfo>, Arc<OutputStats>)>>,
    /// The module's own counters (kernel drops, duplicates, rows stored),
    /// served under `"module"` beside libtrap's interface counters.
    module: Mutex<Vec<(String, Arc<AtomicU64>)>>,
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Registry {
    pub fn add_input(&self, info: Arc<IfcInfo>, stats: Arc<InputStats>) {
        if let Ok(mut v) = self.inputs.lock() {
            v.push((info, stats));
        }
    }

    pub fn add_output(&self, info: Arc<IfcInfo>, stats: Arc<OutputStats>) {
        if let Ok(mut v) = self.outputs.lock() {
            v.push((info, stats));
        }
    }

    /// A counter of the module itself, named `name` in the service JSON's
    /// `"module"` object (the same counter when asked twice). The module
    /// stores into it; readers see the value at their next query.
    pub fn module_counter(&self, name: &str) -> Arc<AtomicU64> {
        let Ok(mut v) = self.module.lock() else {
            return Arc::default();
        };
        if let Some((_, c)) = v.iter().find(|(n, _)| n == name) {
            return c.clone();
        }
        let c = Arc::new(AtomicU64::new(0));
        v.push((name.to_string(), c.clone()));
        c
    }

    /// The service-interface JSON body, with libtrap's keys and separators
    /// (and, when the module registered counters, a `"module"` object after
    /// them, which libtrap's readers ignore).
    pub fn to_json(&self) -> String {
        let inputs = self.inputs.lock().map(|v| v.clone()).unwrap_or_default();
        let outputs = self.outputs.lock().map(|v| v.clone()).unwrap_or_default();
        let ins: Vec<String> = inputs
            .iter()
            .map(|(info, s)| {
                format!(
                    "{{\"ifc_state\": {}, \"ifc_id\": {}, \"ifc_type\": {}, \"messages\": {}, \"buffers\": {}, \"missed\": {}, \"delay_last\": {}, \"delay_total\": {}}}",
                    u8::from(s.connected.load(Relaxed)),
                    json_str(&info.id()),
                    info.letter as u32,
                    s.messages.load(Relaxed),
                    s.buffers.load(Relaxed),
                    s.missed.load(Relaxed),
                    s.delay_last.load(Relaxed),
                    s.delay_total.load(Relaxed) / 1_000_000,
                )
            })
            .collect();
        let outs: Vec<String> = outputs
            .iter()
            .map(|(info, s)| {
                let clients = s.clients.lock().map(|c| c.clone()).unwrap_or_default();
                let mut arr: Vec<String> = Vec::new();
                if matches!(info.letter, 'u' | 't') {
                    arr.push("{\"id\": \"extended_input_interface_info\", \"sent_containers\": \"0\", \"sent_messages\": \"0\", \"skipped_messages\": \"0\", \"skipped_percentage\": 0.0}".into());
                }
                for c in &clients {
                    let total = c.sent_messages + c.skipped_messages;
                    let pct = if total == 0 {
                        0.0
                    } else {
                        c.skipped_messages as f64 * 100.0 / total as f64
                    };
                    let id = match c.id.parse::<u64>() {
                        Ok(n) => n.to_string(),
                        Err(_) => json_str(&c.id),
                    };
                    arr.push(format!(
                        "{{\"id\": {id}, \"sent_containers\": \"{}\", \"sent_messages\": \"{}\", \"skipped_messages\": \"{}\", \"skipped_percentage\": {pct:.1}}}",
                        c.sent_containers, c.sent_messages, c.skipped_messages
                    ));
                }
                format!(
                    "{{\"ifc_type\": {}, \"ifc_id\": {}, \"num_clients\": {}, \"sent-messages\": {}, \"dropped-messages\": {}, \"buffers\": {}, \"autoflushes\": {}, \"client_stats_arr\": [{}]}}",
                    info.letter as u32,
                    json_str(&info.id()),
                    s.num_clients.load(Relaxed),
                    s.sent_messages.load(Relaxed),
                    s.dropped_messages.load(Relaxed),
                    s.buffers.load(Relaxed),
                    s.autoflushes.load(Relaxed),
                    arr.join(", ")
                )
            })
            .collect();
        let module = self.module.lock().map(|v| v.clone()).unwrap_or_default();
        let module = if module.is_empty() {
            String::new()
        } else {
            let items: Vec<String> = module
                .iter()
                .map(|(n, c)| format!("{}: {}", json_str(n), c.load(Relaxed)))
                .collect();
            format!(", \"module\": {{{}}}", items.join(", "))
        };
        format!(
            "{{\"in_cnt\": {}, \"out_cnt\": {}, \"in\": [{}], \"out\": [{}]{module}}}",
            ins.len(),
            outs.len(),
            ins.join(", "),
            outs.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_libtrap_keys() {
        let r = Registry::default();
        let is = Arc::new(InputStats::default());
        is.messages.store(4, Relaxed);
        is.connected.store(true, Relaxed);
        r.add_input(Arc::new(IfcInfo::new('u', "svcin")), is);
        let os = Arc::new(OutputStats::default());
        os.sent_messages.store(15, Relaxed);
        os.clients.lock().unwrap().push(ClientStats {
            id: "22501".into(),
            sent_containers: 5,
            sent_messages: 15,
            skipped_messages: 5,
        });
        r.add_output(Arc::new(IfcInfo::new('u', "svc\"test")), os);
        let j = r.to_json();
        assert!(j.starts_with("{\"in_cnt\": 1, \"out_cnt\": 1, \"in\": [{\"ifc_state\": 1, \"ifc_id\": \"svcin\", \"ifc_type\": 117, \"messages\": 4"), "{j}");
        assert!(j.contains("\"ifc_id\": \"svc\\\"test\""), "{j}");
        assert!(j.contains("\"sent-messages\": 15"), "{j}");
        assert!(!j.contains("module"), "{j}");
        r.module_counter("kernel_dropped").store(7, Relaxed);
        r.module_counter("kernel_dropped").fetch_add(1, Relaxed);
        r.module_counter("kernel_received").store(9, Relaxed);
        let j = r.to_json();
        assert!(
            j.ends_with("], \"module\": {\"kernel_dropped\": 8, \"kernel_received\": 9}}"),
            "{j}"
        );
        assert!(j.contains("{\"id\": 22501, \"sent_containers\": \"5\", \"sent_messages\": \"15\", \"skipped_messages\": \"5\", \"skipped_percentage\": 25.0}"), "{j}");
    }
}
