//! Active Stratum probing: the network half of pool learning, which the
//! library leaves to its caller.
//!
//! A server is asked, over a new TCP connection each, the opening request
//! of four mining protocols in the C module's order (Bitcoin, Monero,
//! Ethereum, ZCash); the first reply that looks like the protocol's answer
//! makes the server a pool. A connection or read that fails (or times out)
//! ends the check with "not a pool", as in C. A few worker threads share a
//! bounded job queue, so a slow server holds up one worker, not the flows.

use miner_detector::stratum::{Coin, Matchers, PROBES};
use miner_detector::{ProbeRequest, ProbeResult, Prober};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Worker threads probing at once.
pub const WORKERS: usize = 4;
/// Servers waiting for a worker; more are refused (and asked again later).
const QUEUE: usize = 256;
/// At most this much of a reply is read (as C's 255-byte buffer).
const REPLY_MAX: usize = 255;

/// Connect and read timeouts of one exchange.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Timeouts {
    /// From seconds; 0 is taken as 1 (a zero timeout means "none" to the
    /// socket calls).
    pub fn from_secs(connect: u32, read: u32) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(u64::from(connect.max(1))),
            read: Duration::from_secs(u64::from(read.max(1))),
        }
    }

    /// The longest one server can take (every probe at its limits).
    fn per_server(&self) -> Duration {
        (self.connect + self.read * 2) * PROBES.len() as u32
    }
}

/// Sends `request` on a new connection and reads the reply: up to
/// [`REPLY_MAX`] bytes, until a newline, the peer closing, or the read
/// timeout (which is an error only when nothing came).
fn exchange(addr: SocketAddr, request: &str, t: Timeouts) -> io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, t.connect)?;
    s.set_write_timeout(Some(t.read))?;
    s.write_all(request.as_bytes())?;
    let deadline = Instant::now() + t.read;
    let mut buf = vec![0u8; REPLY_MAX];
    let mut n = 0;
    while n < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if buf[n - k..n].contains(&b'\n') {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if n > 0 && is_timeout(&e) => break,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Probes one server: which coin's pool it is, if any.
pub fn probe(addr: SocketAddr, t: Timeouts, m: &Matchers) -> Option<Coin> {
    for (i, p) in PROBES.iter().enumerate() {
        match exchange(addr, p.request, t) {
            Ok(reply) if m.matches(i, &reply) => return Some(p.coin),
            Ok(_) => {}
            Err(e) => {
                libtrap::log::info(1, &format!("stratum probe of {addr}: {e}"));
                return None;
            }
        }
    }
    None
}

/// The [`Prober`] the binary hands to the detector: [`WORKERS`] threads
/// running [`probe`], jobs and results over channels.
pub struct StratumProber {
    jobs: SyncSender<ProbeRequest>,
    results: Receiver<ProbeResult>,
    outstanding: usize,
    timeouts: Timeouts,
}

impl StratumProber {
    pub fn start(timeouts: Timeouts) -> io::Result<StratumProber> {
        let (jobs, job_rx) = mpsc::sync_channel::<ProbeRequest>(QUEUE);
        let (res_tx, results) = mpsc::channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let matchers = Arc::new(Matchers::new());
        for i in 0..WORKERS {
            let (job_rx, res_tx, m) = (job_rx.clone(), res_tx.clone(), matchers.clone());
            std::thread::Builder::new()
                .name(format!("stratum-probe-{i}"))
                .spawn(move || loop {
                    // The lock is held only while taking a job.
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(req) = job else { return };
                    let addr = SocketAddr::new(req.ip, req.port);
                    let coin = probe(addr, timeouts, &m);
                    let what = match coin {
                        Some(c) => format!("a {c:?} pool"),
                        None => "not a pool".to_string(),
                    };
                    libtrap::log::info(0, &format!("stratum probe: {addr} is {what}"));
                    let r = ProbeResult {
                        ip: req.ip,
                        port: req.port,
                        is_pool: coin.is_some(),
                    };
                    if res_tx.send(r).is_err() {
                        return;
                    }
                })?;
        }
        Ok(StratumProber {
            jobs,
            results,
            outstanding: 0,
            timeouts,
        })
    }
}

impl Prober for StratumProber {
    fn submit(&mut self, req: ProbeRequest) -> bool {
        match self.jobs.try_send(req) {
            Ok(()) => {
                self.outstanding += 1;
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    fn ready(&mut self) -> Vec<ProbeResult> {
        let got: Vec<ProbeResult> = self.results.try_iter().collect();
        self.outstanding = self.outstanding.saturating_sub(got.len());
        got
    }

    /// Waits until every outstanding probe has answered, at most as long as
    /// they could all take at their timeouts; gives up at once when the
    /// module is told to stop.
    fn wait_all(&mut self) -> Vec<ProbeResult> {
        let mut got = self.ready();
        let rounds = self.outstanding.div_ceil(WORKERS) as u32;
        let deadline =
            Instant::now() + self.timeouts.per_server() * rounds + Duration::from_secs(1);
        while self.outstanding > 0 && !libtrap::is_terminated() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self
                .results
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(r) => {
                    self.outstanding -= 1;
                    got.push(r);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if self.outstanding > 0 {
            libtrap::log::warn(&format!(
                "{} stratum probes still unanswered at exit",
                self.outstanding
            ));
        }
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers each connection's first line with `reply(n)`
    /// (n = connection number), or closes at once when that is None.
    fn server(reply: fn(usize) -> Option<&'static str>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for (n, c) in l.incoming().enumerate() {
                let Ok(mut c) = c else { return };
                let mut line = [0u8; 512];
                let _ = c.read(&mut line);
                if let Some(r) = reply(n) {
                    let _ = c.write_all(r.as_bytes());
                }
            }
        });
        addr
    }

    fn t() -> Timeouts {
        Timeouts::from_secs(2, 2)
    }

    #[test]
    fn probes_in_order_until_one_matches() {
        let m = Matchers::new();
        let btc = server(|_| Some("{\"id\":1,\"result\":[[[\"mining.notify\",\"1\"]]]}\n"));
        assert_eq!(probe(btc, t(), &m), Some(Coin::Bitcoin));
        // Wrong answers to the first two, an Ethereum login answer third.
        let eth = server(|n| {
            Some(match n {
                0 | 1 => "{\"error\":\"unknown method\"}\n",
                _ => "{\"id\":2,\"jsonrpc\":\"2.0\",\"result\":true}\n",
            })
        });
        assert_eq!(probe(eth, t(), &m), Some(Coin::Ethereum));
        let zec = server(|n| (n == 3).then_some("{\"method\":\"mining.set_target\"}\n"));
        assert_eq!(probe(zec, t(), &m), Some(Coin::ZCash));
        let http = server(|_| Some("HTTP/1.1 400 Bad Request\r\n\r\n"));
        assert_eq!(probe(http, t(), &m), None);
    }

    #[test]
    fn refused_connection_is_not_a_pool() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        assert_eq!(probe(addr, t(), &Matchers::new()), None);
    }

    #[test]
    fn prober_answers_through_the_channel() {
        let btc = server(|_| Some("{\"result\":[[[\"mining.notify\",\"1\"]]]}\n"));
        let mut p = StratumProber::start(t()).unwrap();
        let req = ProbeRequest {
            ip: btc.ip(),
            port: btc.port(),
        };
        assert!(p.submit(req));
        let got = p.wait_all();
        assert_eq!(
            got,
            vec![ProbeResult {
                ip: btc.ip(),
                port: btc.port(),
                is_pool: true,
            }]
        );
        assert!(p.ready().is_empty());
    }
}
