//! The chain of rules and what batches and alerts do to it, without I/O:
//! ids are positions (as in Polycube's firewall): `insert` at id k moves
//! the rules from k on down one place, `delete` moves the later ones up.
//! A batch is applied to a copy; the first failing operation refuses the
//! whole batch (all or nothing). Auto-rules (from alerts) carry an expiry
//! time; an alert for a rule already there refreshes it (idempotent).
//! Sources in the whitelist are never blocked: the chain accepts them
//! before any rule (see [`crate::nft`]) and no auto-rule is made for them.

use crate::batch::{Action, BatchError, Op, Prefix, Rule};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub rule: Rule,
    /// Unix seconds after which an auto-rule is removed.
    pub expires: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub entries: Vec<Entry>,
}

/// Does `stored` match the rule `given` for a delete by match: every field
/// equal, the description only when one is given.
fn matches(stored: &Rule, given: &Rule) -> bool {
    let mut s = stored.clone();
    if given.description.is_none() {
        s.description = None;
    }
    &s == given
}

impl Ruleset {
    /// The ruleset after `ops`, and one log line per operation; `Err` with
    /// the failing operation's index when any fails (nothing changes).
    pub fn apply(&self, ops: &[Op]) -> Result<(Ruleset, Vec<String>), BatchError> {
        let mut next = self.clone();
        let mut log = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let fail = |m: String| BatchError(format!("rule {i}: {m}; the batch was not applied"));
            let n = next.entries.len();
            let span = if n == 0 {
                "there are no rules".to_string()
            } else {
                format!("the ids are 0-{}", n - 1)
            };
            match op {
                Op::Insert { id, rule } => {
                    if *id > n {
                        return Err(fail(format!(
                            "insert at id {id}: {span} (insert at 0-{n}, or append)"
                        )));
                    }
                    next.entries.insert(
                        *id,
                        Entry {
                            rule: rule.clone(),
                            expires: None,
                        },
                    );
                    log.push(format!("insert {}", rule.to_json(*id)));
                }
                Op::Append { rule } => {
                    next.entries.push(Entry {
                        rule: rule.clone(),
                        expires: None,
                    });
                    log.push(format!("append {}", rule.to_json(n)));
                }
                Op::Update { id, rule } => {
                    let Some(e) = next.entries.get_mut(*id) else {
                        return Err(fail(format!("update of id {id}: {span}")));
                    };
                    log.push(format!(
                        "update {} (was {})",
                        rule.to_json(*id),
                        e.rule.to_json(*id)
                    ));
                    *e = Entry {
                        rule: rule.clone(),
                        expires: None,
                    };
                }
                Op::DeleteId { id } => {
                    if *id >= n {
                        return Err(fail(format!("delete of id {id}: {span}")));
                    }
                    let e = next.entries.remove(*id);
                    log.push(format!("delete {}", e.rule.to_json(*id)));
                }
                Op::DeleteMatch { rule } => {
                    let Some(pos) = next.entries.iter().position(|e| matches(&e.rule, rule)) else {
                        return Err(fail(format!(
                            "delete: no rule matches {}",
                            without_id(rule.to_json(0))
                        )));
                    };
                    let e = next.entries.remove(pos);
                    log.push(format!("delete {}", e.rule.to_json(pos)));
                }
            }
        }
        Ok((next, log))
    }

    /// Adds (or refreshes) an auto-rule dropping everything from `src`
    /// until `expires`. `None` when the whitelist covers the source or the
    /// rule is there and only its expiry moved.
    pub fn block(
        &mut self,
        src: Prefix,
        description: String,
        expires: u64,
        whitelist: &[Prefix],
    ) -> Option<String> {
        if whitelist.iter().any(|w| w.overlaps(&src)) {
            return None;
        }
        self.add_auto(Rule::drop_from(src, description), expires)
    }

    /// Adds (or refreshes) an auto-rule dropping everything to `dst` (the
    /// victim of a flood whose sources the alert does not name); the
    /// whitelisted sources still pass, as the chain accepts them first.
    pub fn block_to(&mut self, dst: Prefix, description: String, expires: u64) -> Option<String> {
        let mut rule = Rule::drop_from(dst, description);
        rule.src = None;
        rule.dst = Some(dst);
        self.add_auto(rule, expires)
    }

    fn add_auto(&mut self, rule: Rule, expires: u64) -> Option<String> {
        if let Some(e) = self.entries.iter_mut().find(|e| {
            e.expires.is_some()
                && e.rule.action == Action::Drop
                && e.rule.src == rule.src
                && e.rule.dst == rule.dst
        }) {
            e.expires = Some(e.expires.unwrap_or(0).max(expires));
            return None;
        }
        let line = format!("auto {} until {expires}", rule.to_json(self.entries.len()));
        self.entries.push(Entry {
            rule,
            expires: Some(expires),
        });
        Some(line)
    }

    /// Removes the auto-rules expired at `now`; a log line for each.
    pub fn expire(&mut self, now: u64) -> Vec<String> {
        let mut log = Vec::new();
        let mut id = 0;
        self.entries.retain(|e| {
            let keep = e.expires.is_none_or(|t| t > now);
            if !keep {
                log.push(format!("expire {}", e.rule.to_json(id)));
            } else {
                id += 1;
            }
            keep
        });
        log
    }

    /// The state file's JSON: the rules in the batch format plus expiry.
    pub fn to_state(&self) -> Value {
        let rules: Vec<Value> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut j = e.rule.to_json(i);
                if let (Some(t), Some(m)) = (e.expires, j.as_object_mut()) {
                    m.insert("expires".into(), t.into());
                }
                j
            })
            .collect();
        serde_json::json!({ "rules": rules })
    }

    /// Reads a state file written by [`Ruleset::to_state`].
    pub fn from_state(text: &str) -> Result<Ruleset, BatchError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| BatchError(format!("the state file is not JSON: {e}")))?;
        // Written by this module; the whitelist is read by the binary.
        let rules = v
            .get("rules")
            .and_then(Value::as_array)
            .ok_or_else(|| BatchError("the state file has no \"rules\" list".into()))?;
        let mut entries = Vec::new();
        for r in rules {
            let mut r = r.clone();
            let expires = r
                .as_object_mut()
                .and_then(|m| {
                    m.remove("id");
                    m.insert("operation".into(), "append".into());
                    m.remove("expires")
                })
                .and_then(|t| t.as_u64());
            let batch = serde_json::json!({ "rules": [r] }).to_string();
            let ops = crate::batch::parse_batch(&batch)
                .map_err(|e| BatchError(format!("the state file: {e}")))?;
            if let Some(Op::Append { rule }) = ops.into_iter().next() {
                entries.push(Entry { rule, expires });
            }
        }
        Ok(Ruleset { entries })
    }
}

fn without_id(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("id");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::parse_batch;

    fn ids(r: &Ruleset) -> Vec<String> {
        r.entries
            .iter()
            .map(|e| e.rule.src.map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn the_seed_batch_leaves_one_rule() {
        let ops = parse_batch(crate::batch::tests_seed()).unwrap();
        let (r, log) = Ruleset::default().apply(&ops).unwrap();
        // insert 0 (TCP .100), append .50, append .11, update 0, delete 0,
        // delete the .50 rule by match: .11 is left, at id 0.
        assert_eq!(ids(&r), vec!["10.0.0.11/32"]);
        assert_eq!(log.len(), 6);
        assert!(
            log[3].starts_with("update ") && log[3].contains("(was "),
            "{}",
            log[3]
        );
    }

    #[test]
    fn ids_are_positions() {
        let b = |t: &str| parse_batch(t).unwrap();
        let (r, _) = Ruleset::default()
            .apply(&b(r#"{"rules":[
                {"operation":"append","src":"198.51.100.1"},
                {"operation":"append","src":"198.51.100.2"},
                {"operation":"insert","id":1,"src":"198.51.100.3"},
                {"operation":"insert","id":0,"src":"198.51.100.4"}]}"#))
            .unwrap();
        assert_eq!(
            ids(&r),
            [
                "198.51.100.4/32",
                "198.51.100.1/32",
                "198.51.100.3/32",
                "198.51.100.2/32"
            ]
        );
        let (r, _) = r
            .apply(&b(r#"{"rules":[{"operation":"delete","id":1},{"operation":"update","id":0,"src":"198.51.100.9","action":"forward"}]}"#))
            .unwrap();
        assert_eq!(
            ids(&r),
            ["198.51.100.9/32", "198.51.100.3/32", "198.51.100.2/32"]
        );
        assert_eq!(r.entries[0].rule.action, Action::Forward);
    }

    #[test]
    fn a_failing_operation_refuses_the_whole_batch() {
        let ops = parse_batch(
            r#"{"rules":[{"operation":"append","src":"198.51.100.1"},{"operation":"delete","id":5}]}"#,
        )
        .unwrap();
        let e = Ruleset::default().apply(&ops).unwrap_err().0;
        assert_eq!(
            e,
            "rule 1: delete of id 5: the ids are 0-0; the batch was not applied"
        );
        for (t, want) in [
            (
                r#"{"rules":[{"operation":"insert","id":1,"src":"198.51.100.1"}]}"#,
                "insert at id 1: there are no rules",
            ),
            (
                r#"{"rules":[{"operation":"update","id":0,"src":"198.51.100.1"}]}"#,
                "update of id 0",
            ),
            (
                r#"{"rules":[{"operation":"delete","src":"198.51.100.1"}]}"#,
                "no rule matches {\"action\":\"drop\",\"src\":\"198.51.100.1/32\"}",
            ),
        ] {
            let e = Ruleset::default()
                .apply(&parse_batch(t).unwrap())
                .unwrap_err()
                .0;
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn auto_rules_expire_refresh_and_spare_the_whitelist() {
        let wl = [Prefix::parse("203.0.113.0/24").unwrap()];
        let mut r = Ruleset::default();
        let a = Prefix::parse("198.51.100.7").unwrap();
        assert!(r.block(a, "ddos".into(), 100, &wl).is_some());
        assert!(
            r.block(a, "ddos".into(), 150, &wl).is_none(),
            "refreshed, not doubled"
        );
        assert!(r
            .block(Prefix::parse("203.0.113.5").unwrap(), "x".into(), 100, &wl)
            .is_none());
        assert_eq!(r.entries.len(), 1);
        assert!(r.expire(149).is_empty());
        assert_eq!(r.expire(150).len(), 1);
        assert!(r.entries.is_empty());
    }

    #[test]
    fn state_round_trip() {
        let mut r = Ruleset::default();
        let ops = parse_batch(r#"{"rules":[{"operation":"append","l4proto":"TCP","dport":"22-23","tcpflags":"SYN,!ACK","description":"ssh"}]}"#).unwrap();
        r = r.apply(&ops).unwrap().0;
        r.block(
            Prefix::parse("2001:db8::7").unwrap(),
            "auto".into(),
            99,
            &[],
        );
        let back = Ruleset::from_state(&r.to_state().to_string()).unwrap();
        assert_eq!(back, r);
    }
}
