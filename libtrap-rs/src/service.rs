//! The service interface: a unix socket `trap-service_<PID>.sock` where a
//! supervisor (or `trap_stats`) asks for the module's interface counters.
//!
//! Request: 8 bytes, `u8` command (10 = statistics), 3 zero bytes, `u32`
//! host-order size. Reply: command 12, the same header with the size of the
//! JSON text plus its terminating NUL, then the text and the NUL. Any other
//! command closes the connection.
//!
//! One thread serves every connection with `poll`, at most [`MAX_CLIENTS`]
//! at a time (libtrap's limit); a request holds 8 bytes and at most one
//! reply is pending per connection, so a client costs a file descriptor and
//! a few kilobytes whatever it does. A request begun must be completed, and
//! a reply taken, within [`IO_TIMEOUT`]. When all places are taken, a new
//! connection replaces one that never sent a request (the oldest), else one
//! silent for [`IDLE_TIMEOUT`]; otherwise it is closed, as in libtrap. So
//! connections left open by someone cannot keep a supervisor out, and a
//! supervisor's connection, which asks regularly, is never the one dropped.

use crate::spec::SocketMode;
use crate::stats::Registry;
use crate::stream::{bind_unix_socket, socket_path};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const CMD_GET_STATS: u8 = 10;
pub const REPLY_OK: u8 = 12;

/// Connections served at a time (libtrap: 64).
pub const MAX_CLIENTS: usize = 64;
/// A request begun must be complete, and a reply taken, within this.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// When all places are taken, a connection silent this long may be dropped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A running service interface; dropping it removes the socket.
pub struct Service {
    path: PathBuf,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    /// Starts the service socket for this process with `mode` (see
    /// [`SocketMode::resolve`]). Failing to create it is not fatal for a
    /// module (libtrap only warns either). A file left at its path (the
    /// name holds this process's id) is replaced.
    pub fn start(registry: Arc<Registry>, mode: SocketMode) -> Option<Service> {
        let path = socket_path(&format!("service_{}", std::process::id()));
        let listener = match bind_unix_socket(&path, mode.mode) {
            Ok(l) => l,
            Err(e) => {
                crate::log::info(
                    0,
                    &format!("service interface {} not created: {e}", path.display()),
                );
                return None;
            }
        };
        let closing = Arc::new(AtomicBool::new(false));
        let flag = closing.clone();
        let thread = std::thread::Builder::new()
            .name("trap-service".into())
            .spawn(move || serve(listener, &registry, &flag))
            .ok()?;
        Some(Service {
            path,
            closing,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // The thread notices within one poll period; joining it would only
        // delay the module's exit by up to 100 ms.
        self.closing.store(true, Relaxed);
        drop(self.thread.take());
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One connection of the service socket.
struct Client {
    conn: UnixStream,
    request: [u8; 8],
    got: usize,
    reply: Vec<u8>,
    sent: usize,
    accepted: Instant,
    /// The last complete request (`None`: none yet).
    last_request: Option<Instant>,
    /// A request or a reply is under way since.
    busy_since: Option<Instant>,
}

impl Client {
    fn new(conn: UnixStream, now: Instant) -> Client {
        Client {
            conn,
            request: [0; 8],
            got: 0,
            reply: Vec::new(),
            sent: 0,
            accepted: now,
            last_request: None,
            busy_since: None,
        }
    }

    fn events(&self) -> PollFlags {
        if self.reply.is_empty() {
            PollFlags::POLLIN
        } else {
            PollFlags::POLLOUT
        }
    }

    /// Reads requests and writes replies as far as the socket allows.
    /// `false`: the connection is done (closed, broken or misbehaving).
    fn step(&mut self, registry: &Registry, now: Instant) -> bool {
        // A few requests at a time, so that one busy client cannot hold up
        // the others; the rest is still there at the next poll.
        let mut answered = 0;
        loop {
            if answered == 16 && self.reply.is_empty() {
                return true;
            }
            if !self.reply.is_empty() {
                match self.conn.write(&self.reply[self.sent..]) {
                    Ok(0) => return false,
                    Ok(n) => self.sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
                if self.sent == self.reply.len() {
                    self.reply.clear();
                    self.sent = 0;
                    self.busy_since = None;
                }
                continue;
            }
            match self.conn.read(&mut self.request[self.got..]) {
                Ok(0) => return false,
                Ok(n) => self.got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
            self.busy_since.get_or_insert(now);
            if self.got < self.request.len() {
                continue;
            }
            self.got = 0;
            if self.request[0] != CMD_GET_STATS {
                return false;
            }
            self.last_request = Some(now);
            self.reply = reply(registry);
            answered += 1;
        }
    }
}

/// The reply to a statistics request.
fn reply(registry: &Registry) -> Vec<u8> {
    let json = registry.to_json();
    let mut reply = Vec::with_capacity(8 + json.len() + 1);
    reply.extend_from_slice(&[REPLY_OK, 0, 0, 0]);
    reply.extend_from_slice(&((json.len() + 1) as u32).to_ne_bytes());
    reply.extend_from_slice(json.as_bytes());
    reply.push(0);
    reply
}

/// Which connection a newcomer replaces when all places are taken: the
/// oldest that never asked anything, else the longest silent beyond
/// [`IDLE_TIMEOUT`]; `None`: the newcomer is turned away.
fn evictable(clients: &[Client], now: Instant) -> Option<usize> {
    let never_asked = clients
        .iter()
        .enumerate()
        .filter(|(_, c)| c.last_request.is_none() && c.busy_since.is_none())
        .min_by_key(|(_, c)| c.accepted)
        .map(|(i, _)| i);
    never_asked.or_else(|| {
        clients
            .iter()
            .enumerate()
            .filter(|(_, c)| c.busy_since.is_none())
            .filter_map(|(i, c)| c.last_request.map(|t| (i, t)))
            .filter(|(_, t)| now.duration_since(*t) >= IDLE_TIMEOUT)
            .min_by_key(|(_, t)| *t)
            .map(|(i, _)| i)
    })
}

fn serve(listener: UnixListener, registry: &Registry, closing: &AtomicBool) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let mut clients: Vec<Client> = Vec::new();
    let mut ready = Vec::new();
    while !closing.load(Relaxed) {
        let accept_ready = {
            let mut fds = Vec::with_capacity(1 + clients.len());
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            fds.extend(
                clients
                    .iter()
                    .map(|c| PollFd::new(c.conn.as_fd(), c.events())),
            );
            if !matches!(poll(&mut fds, PollTimeout::from(100u16)), Ok(n) if n > 0) {
                fds.truncate(1);
            }
            ready.clear();
            ready.extend(
                fds.iter()
                    .skip(1)
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty())),
            );
            fds[0].revents().is_some_and(|r| !r.is_empty())
        };
        let now = Instant::now();
        let mut i = 0;
        clients.retain_mut(|c| {
            let is_ready = ready.get(i).copied().unwrap_or(false);
            i += 1;
            if is_ready && !c.step(registry, now) {
                return false;
            }
            // A request begun but not finished, or a reply not taken.
            c.busy_since
                .is_none_or(|t| now.duration_since(t) < IO_TIMEOUT)
        });
        if !accept_ready {
            continue;
        }
        loop {
            let conn = match listener.accept() {
                Ok((conn, _)) => conn,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if conn.set_nonblocking(true).is_err() {
                continue;
            }
            if clients.len() >= MAX_CLIENTS {
                match evictable(&clients, now) {
                    Some(old) => {
                        clients.swap_remove(old);
                    }
                    None => continue, // closed, as libtrap does
                }
            }
            clients.push(Client::new(conn, now));
        }
    }
}

/// Asks a module's service socket for its statistics JSON (what a supervisor does).
pub fn query(path: &std::path::Path) -> std::io::Result<String> {
    let mut conn = UnixStream::connect(path)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.write_all(&[CMD_GET_STATS, 0, 0, 0, 0, 0, 0, 0])?;
    let mut head = [0u8; 8];
    conn.read_exact(&mut head)?;
    if head[0] != REPLY_OK {
        return Err(std::io::Error::other(format!("reply code {}", head[0])));
    }
    let size = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if size > 16 << 20 {
        return Err(std::io::Error::other("reply too large"));
    }
    let mut body = vec![0u8; size];
    conn.read_exact(&mut body)?;
    while body.last() == Some(&0) {
        body.pop();
    }
    String::from_utf8(body).map_err(std::io::Error::other)
}
