//! The Stratum probes of pool learning, without the network: each mining
//! protocol's opening request and the pattern of a pool's reply (the C
//! module's, in its order). The binary's prober sends the requests;
//! [`Matchers::matches`] judges the replies.

use regex::bytes::Regex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coin {
    Bitcoin,
    Monero,
    Ethereum,
    ZCash,
}

/// One protocol: its opening request line and a pattern of a pool's reply.
pub struct Probe {
    pub coin: Coin,
    pub request: &'static str,
    reply: &'static str,
}

/// In the order they are tried. Patterns are searched anywhere in the
/// reply; `(?s-u)`: `.` matches any byte, newlines included (POSIX regexec
/// without REG_NEWLINE, as C uses it).
pub const PROBES: [Probe; 4] = [
    Probe {
        coin: Coin::Bitcoin,
        request: "{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"cpuminer/2.4.3\"]}\n",
        reply: r"(?s-u)mining.notify",
    },
    Probe {
        coin: Coin::Monero,
        request: "{\"method\": \"login\", \"params\": {\"login\": \"42\", \"pass\": \"x\", \
                  \"agent\": \"xmr/1.0\"}, \"id\": 1}\n",
        reply: r"(?s-u)blob.*job_id.*target",
    },
    Probe {
        coin: Coin::Ethereum,
        request: "{\"worker\": \"eth1.0\", \"jsonrpc\": \"2.0\", \"params\": \
                  [\"0x42/k.work1/email@mail\", \"x\"], \"id\": 2, \"method\": \"eth_submitLogin\"}\n",
        reply: r#"(?s-u)jsonrpc.*result":[ \t]*true"#,
    },
    Probe {
        coin: Coin::ZCash,
        request: "{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": \
                  [\"equihashminer\", null, \"zec\", \"6666\"]}\n",
        reply: r"(?s-u)mining.set_target",
    },
];

/// The compiled reply patterns, in [`PROBES`] order.
pub struct Matchers(Vec<Regex>);

impl Default for Matchers {
    fn default() -> Self {
        Matchers::new()
    }
}

impl Matchers {
    pub fn new() -> Matchers {
        // The patterns are constants: a failure is a programming error that
        // the unit tests catch.
        Matchers(
            PROBES
                .iter()
                .filter_map(|p| Regex::new(p.reply).ok())
                .collect(),
        )
    }

    /// Does `reply` (to probe number `i`) look like a pool's answer? Like
    /// C, which handles the reply as a C string, only bytes before a NUL
    /// count.
    pub fn matches(&self, i: usize, reply: &[u8]) -> bool {
        let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
        self.0.get(i).is_some_and(|re| re.is_match(&reply[..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compile_and_match() {
        let m = Matchers::new();
        assert_eq!(m.0.len(), PROBES.len());
        let bitcoin = br#"{"id":1,"result":[[["mining.set_difficulty","1"],["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"]],"08000002",4],"error":null}"#;
        assert!(m.matches(0, bitcoin));
        assert!(!m.matches(0, b"HTTP/1.1 400 Bad Request\r\n"));
        // NUL ends the reply, as in C.
        assert!(!m.matches(0, b"\0mining.notify"));
        let monero = br#"{"id":1,"jsonrpc":"2.0","result":{"id":"1","job":{"blob":"0707","job_id":"9","target":"b88d0600"},"status":"OK"}}"#;
        assert!(m.matches(1, monero));
        assert!(!m.matches(1, br#"{"target":"x","job_id":"9","blob":"07"}"#));
        assert!(m.matches(2, b"{\"id\":2,\"jsonrpc\":\"2.0\",\"result\":\ttrue}"));
        assert!(!m.matches(2, br#"{"id":2,"jsonrpc":"2.0","result":false}"#));
        assert!(m.matches(3, b"{\"id\":null,\n\"method\":\"mining.set_target\"}"));
    }
}
