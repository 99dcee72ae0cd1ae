//! Sending IPFIX messages to a collector over TCP or UDP.
//!
//! TCP (RFC 7011 §10.4): a lost connection is noticed before a message is
//! written (a collector sends nothing, so a readable socket has been
//! closed) or when a write fails; messages are then dropped — and counted —
//! until a new connection is made, tried at most once per
//! [`RECONNECT_EVERY`]. A new connection starts with every template. Data
//! the kernel had already accepted when the collector died is lost without
//! our knowing (as with every IPFIX-over-TCP exporter).
//!
//! UDP (§10.3): messages go out as datagrams; templates are sent again on
//! the encoder's refresh period.

use super::Encoder;
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

/// How often a lost TCP collector is tried again.
pub const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// How long a write may block (a collector that stops reading must not
/// stall the capture or a stop request for long).
const WRITE_TIMEOUT: Duration = Duration::from_millis(400);

enum Conn {
    Tcp(Option<TcpStream>),
    Udp(UdpSocket, SocketAddr),
}

/// A collector connection and what it could not deliver.
pub struct Sender {
    target: String,
    addrs: Vec<SocketAddr>,
    conn: Conn,
    next_try: Instant,
    /// Data records dropped because the collector was unreachable.
    pub dropped: u64,
    pub sent_records: u64,
    pub sent_messages: u64,
    /// Connections made after the first (reconnections).
    pub reconnects: u64,
    connected_once: bool,
    /// A lost connection was reported and not yet its recovery.
    outage: bool,
}

impl Sender {
    /// Resolves `target` (`HOST:PORT`, `[V6]:PORT`) and, for TCP, connects
    /// (a collector that is not there yet is tried again later).
    pub fn new(target: &str, udp: bool) -> Result<Sender, String> {
        let addrs: Vec<SocketAddr> = target
            .to_socket_addrs()
            .map_err(|e| {
                format!("IPFIX collector `{target}`: {e} (give HOST:PORT, e.g. 127.0.0.1:4739)")
            })?
            .collect();
        let Some(first) = addrs.first() else {
            return Err(format!("IPFIX collector `{target}`: no address"));
        };
        let conn = if udp {
            let local: SocketAddr = if first.is_ipv4() {
                "0.0.0.0:0"
                    .parse()
                    .map_err(|_| "bad local address".to_string())?
            } else {
                "[::]:0"
                    .parse()
                    .map_err(|_| "bad local address".to_string())?
            };
            // Not connected: a collector that is not listening yet answers
            // with ICMP errors, which must not count as lost datagrams of
            // later, successful sends (UDP cannot know what arrives).
            let s = UdpSocket::bind(local)
                .map_err(|e| format!("IPFIX collector `{target}` (UDP): {e}"))?;
            Conn::Udp(s, *first)
        } else {
            Conn::Tcp(None)
        };
        let mut s = Sender {
            target: target.to_string(),
            addrs,
            conn,
            next_try: Instant::now(),
            dropped: 0,
            sent_records: 0,
            sent_messages: 0,
            reconnects: 0,
            connected_once: false,
            outage: false,
        };
        if !udp && s.connect().is_err() {
            libtrap::log::warn(&format!(
                "IPFIX collector {}: not reachable; trying again every {} s, flows are dropped (and counted) until then",
                s.target,
                RECONNECT_EVERY.as_secs()
            ));
            s.outage = true;
        }
        Ok(s)
    }

    fn connect(&mut self) -> std::io::Result<()> {
        self.next_try = Instant::now() + RECONNECT_EVERY;
        let mut last = std::io::Error::new(ErrorKind::NotFound, "no address");
        for a in &self.addrs {
            match TcpStream::connect_timeout(a, Duration::from_secs(1)) {
                Ok(s) => {
                    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    s.set_nodelay(true)?;
                    if let Conn::Tcp(c) = &mut self.conn {
                        *c = Some(s);
                    }
                    if self.connected_once {
                        self.reconnects += 1;
                    }
                    self.connected_once = true;
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn lost(&mut self, why: &str) {
        if let Conn::Tcp(c) = &mut self.conn {
            *c = None;
        }
        if !self.outage {
            libtrap::log::warn(&format!(
                "IPFIX collector {}: connection lost ({why}); reconnecting every {} s, flows are dropped (and counted) meanwhile",
                self.target,
                RECONNECT_EVERY.as_secs()
            ));
            self.outage = true;
        }
    }

    /// Whether a TCP connection is up (making one when due); a new one
    /// first gets every template.
    fn ready(&mut self, enc: &mut Encoder, now: u64) -> bool {
        let Conn::Tcp(c) = &mut self.conn else {
            return true;
        };
        if let Some(s) = c {
            if !peer_open(s) {
                self.lost("closed by the collector");
            } else {
                return true;
            }
        }
        if Instant::now() < self.next_try || self.connect().is_err() {
            return false;
        }
        if self.outage {
            libtrap::log::warn(&format!(
                "IPFIX collector {}: connected again; {} records dropped so far",
                self.target, self.dropped
            ));
            self.outage = false;
        }
        enc.resend_templates();
        match enc.templates_message(true, now) {
            Some(t) => self.write(&t.bytes).is_ok(),
            None => true,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ()> {
        let r = match &mut self.conn {
            Conn::Udp(s, to) => s.send_to(bytes, *to).map(|_| ()),
            Conn::Tcp(Some(s)) => s.write_all(bytes),
            Conn::Tcp(None) => return Err(()),
        };
        match r {
            Ok(()) => {
                self.sent_messages += 1;
                Ok(())
            }
            // A local failure (no route, no buffer): that datagram is gone,
            // the next may go.
            Err(e) if matches!(self.conn, Conn::Udp(..)) => {
                if !self.outage {
                    libtrap::log::warn(&format!(
                        "IPFIX collector {} (UDP): {e}; flows are dropped (and counted) while it lasts",
                        self.target
                    ));
                    self.outage = true;
                }
                Err(())
            }
            Err(e) => {
                self.lost(&e.to_string());
                Err(())
            }
        }
    }

    /// The next send tries a lost collector at once (the last flush before
    /// exit should not drop what a collector back within the second misses).
    pub fn retry_now(&mut self) {
        self.next_try = Instant::now();
    }

    /// Sends every message the encoder has ready.
    pub fn send_ready(&mut self, enc: &mut Encoder, now: u64) {
        let msgs: Vec<super::Message> = enc.take().collect();
        for m in msgs {
            if !self.ready(enc, now) || self.write(&m.bytes).is_err() {
                self.dropped += u64::from(m.records);
                continue;
            }
            self.sent_records += u64::from(m.records);
            if matches!(self.conn, Conn::Udp(..)) && self.outage && m.records > 0 {
                self.outage = false;
            }
        }
    }
}

/// Whether the collector still has the connection open: it sends nothing,
/// so end of stream or an error on a read means it is gone.
fn peer_open(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let open = match s.peek(&mut b) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::WouldBlock,
    };
    open && s.set_nonblocking(false).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipfix::Config;
    use crate::plugins::Plugins;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn a_collector_that_restarts_gets_templates_again() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let mut s = Sender::new(&addr, false).unwrap_or_else(|e| panic!("{e}"));
        let (mut c1, _) = l.accept().unwrap_or_else(|e| panic!("{e}"));
        let mut enc = Encoder::new(&Plugins::default(), Config::default());
        enc.templates_message(false, 0);
        enc.resend_templates();
        // Nothing to send yet; the collector goes away.
        drop(c1.shutdown(std::net::Shutdown::Both));
        c1.read_to_end(&mut Vec::new()).unwrap_or_default();
        drop(c1);
        let flow = crate::cache::FlowRecord {
            flow: crate::cache::Flow {
                ip_version: 4,
                src_ip: [0; 16],
                dst_ip: [0; 16],
                src_port: 1,
                dst_port: 2,
                protocol: 17,
                vlan_id: 0,
                src_mac: [0; 6],
                dst_mac: [0; 6],
                time_first: 0,
                time_last: 0,
                packets: 1,
                packets_rev: 0,
                bytes: 1,
                bytes_rev: 0,
                tcp_flags: 0,
                tcp_flags_rev: 0,
                end_reason: crate::cache::EndReason::Inactive,
                flow_hash: 0,
            },
            exts: Default::default(),
        };
        enc.add(&flow, 0);
        enc.flush(0);
        std::thread::sleep(Duration::from_millis(50));
        s.send_ready(&mut enc, 0);
        assert_eq!(s.dropped, 1, "closed collector noticed before writing");
        // Due again after a second: the new connection starts with templates.
        s.next_try = Instant::now();
        enc.add(&flow, 0);
        enc.flush(0);
        s.send_ready(&mut enc, 0);
        let (mut c2, _) = l.accept().unwrap_or_else(|e| panic!("{e}"));
        let reconnects = s.reconnects;
        drop(s);
        let mut got = Vec::new();
        c2.read_to_end(&mut got).unwrap_or_default();
        assert!(got.len() > 20);
        assert_eq!(&got[16..18], &[0, 2], "first set is the template set");
        assert_eq!(messages_in(&got), 2, "template message, then data");
        assert_eq!(reconnects, 1);
    }

    /// Counts messages in a TCP stream.
    fn messages_in(stream: &[u8]) -> usize {
        let mut n = 0;
        let mut at = 0;
        while at + 4 <= stream.len() {
            let len = usize::from(u16::from_be_bytes([stream[at + 2], stream[at + 3]]));
            if len == 0 {
                break;
            }
            at += len;
            n += 1;
        }
        n
    }
}
