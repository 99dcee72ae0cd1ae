//! Socket interfaces: `u:` (unix stream socket), `t:` (TCP) and `T:` (TLS
//! over TCP, see [`crate::tls`]: after the handshake the same bytes as `t:`).
//!
//! The output is the server. Every client gets the hello at once, then the
//! containers finished after it joined: a 14-byte header (`u32` BE payload
//! length, `u64` LE index of the first message, `u16` LE message count) and
//! the length-prefixed messages. Clients never send anything.
//!
//! Blocking modes of an output (`timeout=`):
//! * `WAIT` (default): finishing a container waits for a first client and then
//!   for every client to take it — back-pressure, nothing is lost.
//! * `HALF_WAIT`: waits for connected clients; with none, containers are dropped.
//! * `NO_WAIT` / µs: never waits; a client that cannot take a container now
//!   skips it (the receiver sees the gap in the sequence numbers).
//!
//! A background thread per output accepts clients, sends hellos and performs
//! the autoflush (default every 2 s) while the module is idle.
//!
//! Unix sockets get their mode (0660 unless `perm=` / `TRAP_SOCKET_MODE`)
//! before they can be reached ([`bind_unix_socket`]); an input does not read
//! a socket served by another user, nor an output replace another user's
//! stale socket, unless that mode was chosen ([`SocketMode::shared`]).

use crate::error::{Result, TrapError};
use crate::format::{DataFormat, HelloHeader, HELLO_SIZE};
use crate::input::{Fetch, Source};
use crate::spec::{parse_c_uint, SocketMode, Timeout};
use crate::stats::{ClientStats, IfcInfo, OutputStats};
use crate::tls::{self, TlsConn};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Size of a container header.
pub const HEADER_SIZE: usize = 14;
/// Default container size including the header (libtrap's `buffer_size`).
pub const DEFAULT_BUFFER_SIZE: usize = 100_000;
/// Largest container the receiver accepts (C receivers hold 100 000 bytes).
pub const MAX_CONTAINER: usize = 1 << 22;
/// How often blocked operations look at the terminate flag.
const TICK: Duration = Duration::from_millis(100);

/// Where unix sockets live: `$TRAP_SOCKET_DIR/trap-NAME.sock` (default `/tmp`).
pub fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("TRAP_SOCKET_DIR")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/tmp".into());
    PathBuf::from(dir).join(format!("trap-{name}.sock"))
}

/// The effective user of this process.
fn my_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `name (uid N)` of a user, or `uid N`.
pub(crate) fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("{} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

/// A user other than this process's and root: one whose socket this module
/// does not use unless told to (see [`SocketMode::shared`]).
fn foreign(uid: u32) -> bool {
    uid != 0 && uid != my_uid()
}

/// Creates the unix socket `path` with exactly `mode`, whatever the umask,
/// and never reachable under another mode: it is bound in a fresh private
/// directory (0700) beside `path`, given its mode there and renamed into
/// place, which also replaces a stale socket file atomically.
pub(crate) fn bind_unix_socket(path: &Path, mode: u32) -> io::Result<UnixListener> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // `.tXXXXXX/s` is shorter than `trap-NAME.sock`, so it fits whenever PATH does.
    let private = nix::unistd::mkdtemp(&dir.join(".tXXXXXX")).map_err(io::Error::from)?;
    let tmp = private.join("s");
    let made = (|| {
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))?;
        let l = UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)?;
        Ok(l)
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let _ = std::fs::remove_dir(&private);
    made
}

/// Whether an output may replace what is at `path` (a stale socket file).
fn check_replaceable(path: &Path, mode: SocketMode) -> Result<(), String> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{} exists and is not a socket: remove it or pick another name",
            path.display()
        ));
    }
    if foreign(meta.uid()) && !mode.shared {
        return Err(format!(
            "{} is a socket of user {}, not replaced (left or placed there by someone \
             else?): remove it, pick another name, or give perm=MODE or TRAP_SOCKET_MODE \
             to share sockets between users",
            path.display(),
            user_name(meta.uid())
        ));
    }
    Ok(())
}

/// A connected socket of either kind, or the bytes of one connection
/// already at hand (an input decoding them: tests, fuzzing).
pub(crate) enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<TlsConn>),
    Memory(Box<dyn Read + Send>),
}

impl Conn {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.set_nonblocking(on),
            Conn::Tcp(s) => s.set_nonblocking(on),
            Conn::Tls(s) => s.socket().set_nonblocking(on),
            Conn::Memory(_) => Ok(()),
        }
    }

    /// Waits until readable (`write = false`) or writable, at most `timeout`.
    fn wait(&self, write: bool, timeout: Duration) -> bool {
        match self {
            Conn::Unix(s) => wait_fd(s.as_fd(), write, timeout),
            Conn::Tcp(s) => wait_fd(s.as_fd(), write, timeout),
            Conn::Tls(s) => wait_fd(s.socket().as_fd(), write, timeout),
            Conn::Memory(_) => false,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Memory(r) => r.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Memory(_) => Ok(buf.len()),
        }
    }
    /// Pushes out bytes written but still held (TLS); `WouldBlock` while
    /// the socket is full. Plain sockets hold nothing.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

/// Waits until `fd` is readable (`write = false`) or writable, at most `timeout`.
pub(crate) fn wait_fd(fd: BorrowedFd<'_>, write: bool, timeout: Duration) -> bool {
    let flags = if write {
        PollFlags::POLLOUT
    } else {
        PollFlags::POLLIN
    };
    let mut fds = [PollFd::new(fd, flags)];
    let ms = timeout.as_millis().min(u128::from(u16::MAX)) as u16;
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// Writes all of `bytes` to a non-blocking socket, waiting while it is full,
/// until none is held back (TLS). Gives up when `stop` is set or `limit` passes.
fn write_all_waiting(
    conn: &mut Conn,
    bytes: &[u8],
    stop: &AtomicBool,
    limit: Option<Instant>,
) -> io::Result<()> {
    let mut pos = 0;
    loop {
        let step = if pos < bytes.len() {
            conn.write(&bytes[pos..])
        } else {
            match conn.flush() {
                Ok(()) => return Ok(()),
                Err(e) => Err(e),
            }
        };
        match step {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Relaxed) {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "terminated"));
                }
                if limit.is_some_and(|l| Instant::now() >= l) {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                conn.wait(true, TICK);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
    /// TCP whose connections become TLS ([`Shared::run`] hands each to a
    /// handshake thread).
    Tls(TcpListener, Arc<rustls::ServerConfig>),
}

impl Listener {
    fn accept(&self) -> io::Result<(Conn, String)> {
        match self {
            Listener::Unix(l) => {
                let (s, _) = l.accept()?;
                let id =
                    nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::PeerCredentials)
                        .map(|c| c.pid().to_string())
                        .unwrap_or_else(|_| "0".into());
                Ok((Conn::Unix(s), id))
            }
            Listener::Tcp(l) | Listener::Tls(l, _) => {
                let (s, addr) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok((Conn::Tcp(s), addr.port().to_string()))
            }
        }
    }
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Unix(l) => l.as_fd(),
            Listener::Tcp(l) | Listener::Tls(l, _) => l.as_fd(),
        }
    }
}

/// Most TLS handshakes of one output at a time (more connections wait).
const MAX_HANDSHAKES: usize = 16;

/// Options of a socket output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    pub mode: Timeout,
    pub buffered: bool,
    /// Flush a partly filled container after this idle time (`None` = never).
    pub autoflush: Option<Duration>,
    pub max_clients: usize,
    /// Container payload capacity (`buffer_size` − 14, at most 99 986).
    pub payload: usize,
}

impl StreamOptions {
    /// Parses the optional `max_clients=`, `buffer_count=`, `buffer_size=`.
    pub fn parse(
        extra: &[String],
        mode: Timeout,
        buffered: bool,
        autoflush: Option<Option<u64>>,
    ) -> Result<StreamOptions, String> {
        let mut o = StreamOptions {
            mode,
            buffered,
            autoflush: match autoflush {
                None => Some(Duration::from_secs(2)),
                Some(None) => None,
                Some(Some(us)) => Some(Duration::from_micros(us)),
            },
            max_clients: 64,
            payload: DEFAULT_BUFFER_SIZE - HEADER_SIZE,
        };
        for p in extra {
            let (key, value) = p
                .split_once('=')
                .ok_or_else(|| format!("unknown parameter `{p}`"))?;
            let known = ["max_clients", "buffer_count", "buffer_size"];
            if !known.contains(&key) {
                return Err(format!("unknown parameter `{p}`"));
            }
            let n = parse_c_uint(value)
                .filter(|&n| n <= u64::from(u32::MAX))
                .ok_or_else(|| format!("bad number in `{p}` (0 to {})", u32::MAX))?
                as usize;
            match key {
                "max_clients" if (1..=64).contains(&n) => o.max_clients = n,
                "max_clients" => return Err(format!("max_clients must be 1 to 64, not {n}")),
                // The ring length of libtrap; containers are written synchronously here.
                "buffer_count" if n >= 1 => {}
                "buffer_count" => return Err("buffer_count must be at least 1".into()),
                // Never above 100 000: C receivers cannot hold larger containers.
                "buffer_size" if n > HEADER_SIZE + 2 => {
                    o.payload = n.min(DEFAULT_BUFFER_SIZE) - HEADER_SIZE
                }
                _ => {
                    return Err(format!(
                        "buffer_size {n} is too small (at least {})",
                        HEADER_SIZE + 3
                    ))
                }
            }
        }
        Ok(o)
    }
}

struct Client {
    conn: Conn,
    stats: ClientStats,
    /// Unsent rest of a container (non-blocking mode).
    pending: Vec<u8>,
}

struct State {
    active: Vec<u8>,
    active_count: u16,
    active_seq: u64,
    seq: u64,
    clients: Vec<Client>,
    last_flush: Instant,
}

struct Shared {
    ifc: String,
    opts: StreamOptions,
    state: Mutex<State>,
    joined: Condvar,
    newcomers: Mutex<Vec<Client>>,
    newcomer_count: AtomicUsize,
    hello: Mutex<Option<Vec<u8>>>,
    /// TLS handshakes under way.
    handshakes: AtomicUsize,
    closing: AtomicBool,
    stop: Arc<AtomicBool>,
    stats: Arc<OutputStats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Delivery {
    Sent,
    Skipped,
    Dead,
    Stopped,
}

impl Shared {
    fn blocking(&self) -> bool {
        matches!(self.opts.mode, Timeout::Wait | Timeout::HalfWait)
    }

    fn adopt_newcomers(&self, st: &mut State) {
        if self.newcomer_count.load(Relaxed) > 0 {
            let mut n = lock(&self.newcomers);
            st.clients.append(&mut n);
            self.newcomer_count.store(0, Relaxed);
            self.count_clients(st);
        }
    }

    /// Connected clients: adopted ones plus those waiting for the next container.
    fn count_clients(&self, st: &State) {
        let n = st.clients.len() + self.newcomer_count.load(Relaxed);
        self.stats.num_clients.store(n as u64, Relaxed);
    }

    fn deliver(&self, c: &mut Client, bytes: &[u8]) -> Delivery {
        if self.blocking() {
            return match write_all_waiting(&mut c.conn, bytes, &self.stop, None) {
                Ok(()) => Delivery::Sent,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Delivery::Stopped,
                Err(_) => Delivery::Dead,
            };
        }
        // Non-blocking: finish an older container first; skip this one if the
        // client still lags.
        if !c.pending.is_empty() {
            match c.conn.write(&c.pending) {
                Ok(n) => {
                    c.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Delivery::Dead,
            }
            if !c.pending.is_empty() {
                return Delivery::Skipped;
            }
        }
        match c.conn.write(bytes) {
            Ok(n) if n == bytes.len() => Delivery::Sent,
            Ok(n) if n > 0 => {
                c.pending.extend_from_slice(&bytes[n..]);
                Delivery::Sent
            }
            Ok(_) => Delivery::Dead,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Delivery::Skipped,
            Err(_) => Delivery::Dead,
        }
    }

    /// Finishes the active container and hands it to the clients.
    /// `explicit`: a flush (counted as such), not a full container.
    fn finish<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        explicit: bool,
    ) -> (MutexGuard<'a, State>, Result<()>) {
        if st.active_count == 0 {
            return (st, Ok(()));
        }
        self.adopt_newcomers(&mut st);
        if st.clients.is_empty() && self.opts.mode != Timeout::Wait {
            // Nobody to give it to: the container is gone, as in libtrap.
            self.reset_active(&mut st);
            return (st, Ok(()));
        }
        let payload = (st.active.len() - HEADER_SIZE) as u32;
        let (seq, count) = (st.active_seq, st.active_count);
        st.active[0..4].copy_from_slice(&payload.to_be_bytes());
        st.active[4..12].copy_from_slice(&seq.to_le_bytes());
        st.active[12..14].copy_from_slice(&count.to_le_bytes());
        let mut stopped = false;
        let container = loop {
            // WAIT: the container waits for a first client.
            while st.clients.is_empty() {
                if self.stop.load(Relaxed) {
                    return (st, Err(TrapError::Terminated));
                }
                st = self
                    .joined
                    .wait_timeout(st, TICK)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
                self.adopt_newcomers(&mut st);
            }
            let container = std::mem::take(&mut st.active);
            let (mut delivered, mut only_fresh_left) = (false, true);
            st.clients
                .retain_mut(|c| match self.deliver(c, &container) {
                    Delivery::Sent => {
                        c.stats.sent_containers += 1;
                        c.stats.sent_messages += u64::from(count);
                        delivered = true;
                        true
                    }
                    Delivery::Skipped => {
                        c.stats.skipped_messages += u64::from(count);
                        true
                    }
                    Delivery::Dead => {
                        crate::log::info(
                            0,
                            &format!("{}: client {} disconnected", self.ifc, c.stats.id),
                        );
                        only_fresh_left &= c.stats.sent_containers == 0;
                        false
                    }
                    Delivery::Stopped => {
                        stopped = true;
                        true
                    }
                });
            // Under WAIT, when the only clients were connections that left
            // before taking anything (a process that only checked whether
            // the socket is served, a reader that refused the format), the
            // container waits for the next client as if they had never come.
            if self.opts.mode == Timeout::Wait
                && st.clients.is_empty()
                && !delivered
                && !stopped
                && only_fresh_left
            {
                st.active = container;
                continue;
            }
            break container;
        };
        st.active = container;
        self.reset_active(&mut st);
        self.stats
            .sent_messages
            .fetch_add(u64::from(count), Relaxed);
        if explicit {
            self.stats.autoflushes.fetch_add(1, Relaxed);
        }
        self.publish_clients(&st);
        (
            st,
            if stopped {
                Err(TrapError::Terminated)
            } else {
                Ok(())
            },
        )
    }

    fn reset_active(&self, st: &mut State) {
        st.active.truncate(HEADER_SIZE);
        st.active_count = 0;
        st.last_flush = Instant::now();
    }

    fn publish_clients(&self, st: &State) {
        self.count_clients(st);
        let mut v = lock(&self.stats.clients);
        v.clear();
        v.extend(st.clients.iter().map(|c| c.stats.clone()));
    }

    /// A new connection: hello (or a zero hello and goodbye when there is no
    /// format yet), then it waits to be adopted by the next container.
    fn welcome(&self, conn: Conn, id: String) {
        if self.stats.num_clients.load(Relaxed) as usize >= self.opts.max_clients {
            crate::log::warn(&format!(
                "{}: client {id} refused: max_clients ({}) reached",
                self.ifc, self.opts.max_clients
            ));
            return;
        }
        let mut conn = conn;
        if conn.set_nonblocking(true).is_err() {
            return;
        }
        let hello = lock(&self.hello).clone();
        let limit = Some(Instant::now() + Duration::from_secs(1));
        let Some(hello) = hello else {
            let _ = write_all_waiting(&mut conn, &DataFormat::unknown_hello(), &self.stop, limit);
            return;
        };
        if write_all_waiting(&mut conn, &hello, &self.stop, limit).is_err() {
            return;
        }
        // Clients never send anything, so a readable socket has been closed
        // already (e.g. by a process that only checked whether the socket
        // is served, see `unix_socket_served`).
        if conn.wait(false, Duration::ZERO) {
            return;
        }
        crate::log::info(0, &format!("{}: client {id} connected", self.ifc));
        let client = Client {
            conn,
            stats: ClientStats {
                id,
                ..ClientStats::default()
            },
            pending: Vec::new(),
        };
        lock(&self.newcomers).push(client);
        self.newcomer_count.fetch_add(1, Relaxed);
        self.stats.num_clients.fetch_add(1, Relaxed);
        self.joined.notify_all();
    }

    /// Runs the TLS handshake of a new connection in a thread of its own
    /// (a slow or hostile peer does not hold up the others), then welcomes
    /// it; a peer that fails verification is refused with the reason.
    fn handshake(self: Arc<Self>, sock: TcpStream, id: String, cfg: Arc<rustls::ServerConfig>) {
        self.handshakes.fetch_add(1, Relaxed);
        let me = self.clone();
        let thread_name = format!("tls-{id}");
        let run = move || {
            match TlsConn::accept(sock, cfg, &me.stop) {
                Ok(conn) => me.welcome(Conn::Tls(Box::new(conn)), id),
                Err(e) => {
                    let why = tls::bad_cert(&e, "the client")
                        .map(|c| format!("certificate verification failed: {c}"))
                        .unwrap_or_else(|| format!("TLS handshake failed: {e}"));
                    crate::log::warn(&format!("{}: client {id} refused: {why}", me.ifc));
                }
            }
            me.handshakes.fetch_sub(1, Relaxed);
        };
        if std::thread::Builder::new()
            .name(thread_name)
            .spawn(run)
            .is_err()
        {
            self.handshakes.fetch_sub(1, Relaxed);
            crate::log::warn(&format!(
                "{}: a client refused: cannot start a thread",
                self.ifc
            ));
        }
    }

    /// The background thread: accept, autoflush, push lagging non-blocking clients.
    fn run(self: Arc<Self>, listener: Listener) {
        while !self.closing.load(Relaxed) {
            let wait = self
                .opts
                .autoflush
                .map_or(TICK, |a| a.min(TICK))
                .max(Duration::from_millis(1));
            let room = self.handshakes.load(Relaxed) < MAX_HANDSHAKES;
            if !room {
                std::thread::sleep(wait);
            } else if wait_fd(listener.fd(), false, wait) {
                loop {
                    match listener.accept() {
                        Ok((conn, id)) => match (&listener, conn) {
                            (Listener::Tls(_, cfg), Conn::Tcp(s)) => {
                                self.clone().handshake(s, id, cfg.clone())
                            }
                            (_, conn) => self.welcome(conn, id),
                        },
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            crate::log::warn(&format!("{}: accept failed: {e}", self.ifc));
                            std::thread::sleep(TICK);
                            break;
                        }
                    }
                }
            }
            let Ok(mut st) = self.state.try_lock() else {
                continue;
            };
            if let Some(every) = self.opts.autoflush {
                let anyone = !st.clients.is_empty() || self.newcomer_count.load(Relaxed) > 0;
                if st.active_count > 0 && anyone && st.last_flush.elapsed() >= every {
                    st = self.finish(st, true).0;
                }
            }
            if !self.blocking() {
                st.clients.retain_mut(|c| {
                    if c.pending.is_empty() {
                        // What TLS still holds of the last container.
                        return match c.conn.flush() {
                            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                            Ok(()) => true,
                        };
                    }
                    match c.conn.write(&c.pending) {
                        Ok(n) => {
                            c.pending.drain(..n);
                            true
                        }
                        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                    }
                });
            }
            drop(st);
        }
    }
}

/// Where a socket output listens.
pub(crate) enum Bind {
    /// `u:NAME` at `path` with `mode`.
    Unix {
        name: String,
        path: PathBuf,
        mode: SocketMode,
    },
    /// `t:PORT` (no host: every IPv4 address, as libtrap) or `t:HOST:PORT`.
    Tcp(Option<String>, u16),
    /// `T:[HOST:]PORT:...`: as `Tcp`, each connection verified and encrypted.
    Tls(Option<String>, u16, Arc<rustls::ServerConfig>),
}

/// The lock a `u:` output holds while it serves `path`: an exclusive
/// `flock` on `.NAME.lock` beside the socket. A second nemea-rs instance
/// learns from it that the socket is served without connecting — a connect
/// probe would be taken for a reader, and the records sent to it lost.
/// `None` when the lock cannot be taken part (`Err(())`: held by another
/// process); the connect probe then decides (C libtrap servers hold none).
/// A lock file of another user (not root) is not trusted and not used.
fn lock_unix_socket(
    path: &std::path::Path,
) -> Result<Option<nix::fcntl::Flock<std::fs::File>>, ()> {
    use nix::fcntl::{Flock, FlockArg};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(None);
    };
    let lock_path = dir.join(format!(".{}.lock", name.to_string_lossy()));
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&lock_path)
    else {
        return Ok(None);
    };
    let me = nix::unistd::geteuid().as_raw();
    match file.metadata() {
        Ok(m) if m.uid() == me || m.uid() == 0 => {}
        _ => return Ok(None),
    }
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(()),
        Err(_) => Ok(None),
    }
}

/// True when a live process accepts connections on the unix socket `path`
/// (probed with a non-blocking connect, which a full backlog does not stall).
fn unix_socket_served(path: &std::path::Path) -> bool {
    use nix::errno::Errno;
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let Ok(addr) = UnixAddr::new(path) else {
        return false;
    };
    let Ok(fd) = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return false;
    };
    use std::os::fd::AsRawFd;
    matches!(
        connect(fd.as_raw_fd(), &addr),
        Ok(()) | Err(Errno::EAGAIN | Errno::EINPROGRESS)
    )
}

/// Listens on `t:PORT` (libtrap: the first passive address, 0.0.0.0 on
/// Linux, so IPv4 only) or on the first address of `HOST` that works.
fn bind_tcp(ifc: &str, host: Option<&str>, port: u16) -> Result<TcpListener> {
    let Some(host) = host else {
        return TcpListener::bind(("0.0.0.0", port))
            .map_err(|e| TrapError::io(ifc, format!("cannot listen on TCP port {port}"), e));
    };
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| TrapError::io(ifc, format!("cannot resolve {host}"), e))?;
    let mut last = None;
    for addr in addrs {
        match TcpListener::bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
    Err(TrapError::io(ifc, format!("cannot listen on {shown}"), e))
}

/// The sending side of a `u:` or `t:` interface.
pub struct StreamWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    socket_file: Option<PathBuf>,
    /// Held while the unix socket is served (see `lock_unix_socket`).
    _serving_lock: Option<nix::fcntl::Flock<std::fs::File>>,
    info: Arc<IfcInfo>,
}

impl StreamWriter {
    /// Binds `u:NAME` (unix) or `t:[HOST:]PORT` (TCP) and starts accepting clients.
    pub(crate) fn bind(
        ifc: String,
        target: Bind,
        opts: StreamOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<StreamWriter> {
        let (listener, socket_file, id, serving_lock) = match &target {
            Bind::Unix { name, path, mode } => {
                let lock = lock_unix_socket(path).map_err(|()| TrapError::SocketInUse {
                    ifc: ifc.clone(),
                    path: path.clone(),
                })?;
                if unix_socket_served(path) {
                    return Err(TrapError::SocketInUse {
                        ifc,
                        path: path.clone(),
                    });
                }
                // A stale socket of a process that is gone is replaced, as
                // libtrap does, unless another user left it there.
                check_replaceable(path, *mode).map_err(|detail| TrapError::Refused {
                    ifc: ifc.clone(),
                    detail,
                })?;
                let l = bind_unix_socket(path, mode.mode).map_err(|e| {
                    TrapError::io(&ifc, format!("cannot listen on {}", path.display()), e)
                })?;
                (Listener::Unix(l), Some(path.clone()), name.clone(), lock)
            }
            Bind::Tcp(host, port) => {
                let l = bind_tcp(&ifc, host.as_deref(), *port)?;
                (Listener::Tcp(l), None, port.to_string(), None)
            }
            Bind::Tls(host, port, cfg) => {
                let l = bind_tcp(&ifc, host.as_deref(), *port)?;
                (Listener::Tls(l, cfg.clone()), None, port.to_string(), None)
            }
        };
        match &listener {
            Listener::Unix(l) => l.set_nonblocking(true),
            Listener::Tcp(l) | Listener::Tls(l, _) => l.set_nonblocking(true),
        }
        .map_err(|e| TrapError::io(&ifc, "cannot set up the listening socket", e))?;
        let letter = match target {
            Bind::Unix { .. } => 'u',
            Bind::Tcp(..) => 't',
            Bind::Tls(..) => 'T',
        };
        let mut active = Vec::with_capacity(HEADER_SIZE + opts.payload);
        active.resize(HEADER_SIZE, 0);
        let shared = Arc::new(Shared {
            ifc: ifc.clone(),
            opts,
            state: Mutex::new(State {
                active,
                active_count: 0,
                active_seq: 0,
                seq: 0,
                clients: Vec::new(),
                last_flush: Instant::now(),
            }),
            joined: Condvar::new(),
            newcomers: Mutex::new(Vec::new()),
            newcomer_count: AtomicUsize::new(0),
            hello: Mutex::new(None),
            handshakes: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            stop,
            stats: Arc::new(OutputStats::default()),
        });
        let bg = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("trap-{ifc}"))
            .spawn(move || bg.run(listener))
            .map_err(|e| TrapError::io(&ifc, "cannot start its thread", e))?;
        let info = Arc::new(IfcInfo::new(letter, id));
        Ok(StreamWriter {
            shared,
            thread: Some(thread),
            socket_file,
            _serving_lock: serving_lock,
            info,
        })
    }

    pub(crate) fn stats(&self) -> (Arc<IfcInfo>, Arc<OutputStats>) {
        (self.info.clone(), self.shared.stats.clone())
    }

    /// Sets the format; clients connected under another format are flushed
    /// and disconnected so that they negotiate again.
    pub fn set_format(&mut self, format: &DataFormat) -> Result<()> {
        let hello = format.hello();
        if lock(&self.shared.hello).as_deref() == Some(&hello[..]) {
            return Ok(());
        }
        // Records queued under the old format go out under the old hello
        // first (under WAIT this waits for a client, as any send would).
        let st = lock(&self.shared.state);
        let (mut st, res) = self.shared.finish(st, true);
        *lock(&self.shared.hello) = Some(hello);
        st.clients.clear();
        lock(&self.shared.newcomers).clear();
        self.shared.newcomer_count.store(0, Relaxed);
        self.shared.publish_clients(&st);
        res
    }

    /// Queues a message; a full container is handed to the clients.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        let sh = &*self.shared;
        if msg.len() + 2 > sh.opts.payload {
            sh.stats.dropped_messages.fetch_add(1, Relaxed);
            crate::log::warn(&format!(
                "{}: message of {} bytes does not fit a container; dropped",
                sh.ifc,
                msg.len()
            ));
            return Ok(());
        }
        let mut st = lock(&sh.state);
        if st.active.len() + 2 + msg.len() > HEADER_SIZE + sh.opts.payload {
            let (g, r) = sh.finish(st, false);
            st = g;
            r?;
        }
        if st.active_count == 0 {
            st.active_seq = st.seq;
        }
        st.active
            .extend_from_slice(&(msg.len() as u16).to_be_bytes());
        st.active.extend_from_slice(msg);
        st.active_count += 1;
        st.seq += 1;
        if !sh.opts.buffered || st.active_count == u16::MAX {
            let (_g, r) = sh.finish(st, false);
            r?;
        }
        Ok(())
    }

    /// Sends the partly filled container now.
    pub fn flush(&mut self) -> Result<()> {
        let st = lock(&self.shared.state);
        self.shared.finish(st, true).1
    }

    /// Flushes, lets lagging clients catch up (at most 5 s), closes the
    /// connections and removes the socket file.
    pub fn close(&mut self) -> Result<()> {
        if self.thread.is_none() {
            return Ok(());
        }
        let res = self.flush();
        {
            let mut st = lock(&self.shared.state);
            let limit = Some(Instant::now() + Duration::from_secs(5));
            // Also the clients with nothing pending here: TLS may hold bytes.
            for c in st.clients.iter_mut() {
                let rest = std::mem::take(&mut c.pending);
                let _ = write_all_waiting(&mut c.conn, &rest, &self.shared.stop, limit);
            }
            st.clients.clear();
        }
        // The accept thread stops within one poll period; it is not joined
        // so that closing does not wait for it.
        self.shared.closing.store(true, Relaxed);
        drop(self.thread.take());
        if let Some(p) = self.socket_file.take() {
            let _ = std::fs::remove_file(p);
        }
        res
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Where an input connects.
pub(crate) enum Target {
    /// A unix socket; `true`: accept a sender of another user.
    Unix(PathBuf, bool),
    Tcp(String, u16),
    /// `T:[HOST:]PORT:...`: as `Tcp`, then a TLS handshake.
    Tls(String, u16, Arc<rustls::ClientConfig>),
    /// The bytes of one connection; after them the stream ends.
    Memory(Option<Box<dyn Read + Send>>),
}

/// A host name lookup that may work later (no network yet), as opposed to
/// a name that does not exist.
fn temporary_lookup_failure(e: &io::Error) -> bool {
    e.to_string().contains("Temporary failure")
}

/// The reason of a failed lookup without std's prefix.
fn lookup_reason(e: &io::Error) -> String {
    let s = crate::error::os_reason(e);
    s.strip_prefix("failed to lookup address information: ")
        .map(str::to_string)
        .unwrap_or(s)
}

/// Connects to the first address of `host` that answers (`shown`: for messages).
fn tcp_connect(host: &str, port: u16, shown: &str) -> Result<TcpStream, String> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {}", lookup_reason(&e)))?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(format!(
        "cannot connect to {shown}: {}",
        crate::error::os_reason(&last)
    ))
}

/// At start-up: a TCP input's host must exist (a temporary lookup failure
/// is only reported; the input keeps trying).
pub(crate) fn check_resolvable(ifc: &str, host: &str, port: u16) -> Result<()> {
    match (host, port).to_socket_addrs() {
        Ok(addrs) if !addrs.as_slice().is_empty() => Ok(()),
        Ok(_) => Err(TrapError::BadSpec(format!(
            "input interface `{ifc}`: host `{host}` has no address (check the name, or give an IP address)"
        ))),
        Err(e) if temporary_lookup_failure(&e) => {
            crate::log::warn(&format!(
                "{ifc}: cannot resolve `{host}` now ({}); retrying",
                lookup_reason(&e)
            ));
            Ok(())
        }
        Err(e) => Err(TrapError::BadSpec(format!(
            "input interface `{ifc}`: cannot resolve host `{host}`: {} (check the name, or give an IP address)",
            lookup_reason(&e)
        ))),
    }
}

/// Rate-limited reports of a retry loop (an input that cannot connect).
/// With `-v` the first failure is reported at once; without, a warning
/// comes once it has failed for [`RetryLog::QUIET`] (so an ordinary start,
/// reader before sender, prints nothing); then at most one line every
/// [`RetryLog::EVERY`], with the count. A success after a report says so.
#[derive(Debug, Default)]
pub(crate) struct RetryLog {
    failures: u64,
    since: Option<Instant>,
    reported: Option<Instant>,
}

impl RetryLog {
    pub(crate) const QUIET: Duration = Duration::from_secs(10);
    pub(crate) const EVERY: Duration = Duration::from_secs(30);

    /// One more failed attempt, for `reason`.
    pub(crate) fn failed(&mut self, ifc: &str, reason: &str) {
        let now = Instant::now();
        self.failures += 1;
        let since = *self.since.get_or_insert(now);
        let due = match self.reported {
            None => crate::log::verbosity() >= 0 || now - since >= Self::QUIET,
            Some(last) => now - last >= Self::EVERY,
        };
        if !due {
            return;
        }
        let msg = if self.failures == 1 {
            format!("{ifc}: {reason}; retrying")
        } else {
            format!(
                "{ifc}: {reason} ({} attempts in {} s); still retrying",
                self.failures,
                (now - since).as_secs()
            )
        };
        if self.failures == 1 {
            crate::log::info(0, &msg);
        } else {
            crate::log::warn(&msg);
        }
        self.reported = Some(now);
    }

    /// How long to wait before the next attempt: 100 ms, 1 s once the
    /// failures have lasted [`RetryLog::QUIET`].
    pub(crate) fn pause(&self) -> Duration {
        match self.since {
            Some(s) if s.elapsed() >= Self::QUIET => Duration::from_secs(1),
            _ => TICK,
        }
    }

    /// The attempt worked.
    pub(crate) fn succeeded(&mut self, ifc: &str) {
        if let (Some(since), Some(_)) = (self.since, self.reported) {
            crate::log::note(&format!(
                "{ifc}: connected after {} failed attempts ({} s)",
                self.failures,
                since.elapsed().as_secs()
            ));
        }
        *self = RetryLog::default();
    }
}

/// The receiving side of a `u:` or `t:` interface: connects (and reconnects)
/// to the output, reads the hello and then containers.
pub(crate) struct StreamSource {
    ifc: String,
    target: Target,
    conn: Option<Conn>,
    header: [u8; HEADER_SIZE],
    header_got: usize,
    payload_len: Option<usize>,
    payload: Vec<u8>,
    payload_got: usize,
    stop: Arc<AtomicBool>,
    retry: RetryLog,
    next_attempt: Option<Instant>,
}

enum ReadStep {
    Done,
    Closed,
}

impl StreamSource {
    pub(crate) fn new(ifc: String, target: Target, stop: Arc<AtomicBool>) -> StreamSource {
        StreamSource {
            ifc,
            target,
            conn: None,
            header: [0; HEADER_SIZE],
            header_got: 0,
            payload_len: None,
            payload: Vec::new(),
            payload_got: 0,
            stop,
            retry: RetryLog::default(),
            next_attempt: None,
        }
    }

    /// Where this input connects, for messages.
    fn shown(&self) -> String {
        match &self.target {
            Target::Unix(p, _) => p.display().to_string(),
            Target::Tcp(h, p) | Target::Tls(h, p, _) if h.contains(':') => format!("[{h}]:{p}"),
            Target::Tcp(h, p) | Target::Tls(h, p, _) => format!("{h}:{p}"),
            Target::Memory(_) => "memory".into(),
        }
    }

    /// Connects. `Ok(Err(reason))`: try again later; `Err`: never (a
    /// socket served by another user).
    fn connect(&mut self) -> Result<Result<Conn, String>> {
        let shown = self.shown();
        let cannot = |e: io::Error| {
            Ok(Err(format!(
                "cannot connect to {shown}: {}",
                crate::error::os_reason(&e)
            )))
        };
        match &mut self.target {
            Target::Memory(bytes) => match bytes.take() {
                Some(r) => Ok(Ok(Conn::Memory(r))),
                None => Ok(Err("no more bytes".into())),
            },
            Target::Unix(p, shared) => {
                let s = match UnixStream::connect(&*p) {
                    Ok(s) => s,
                    Err(e) => return cannot(e),
                };
                // The credentials of the process that listens: a socket
                // squatted in a shared directory is not read from.
                use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
                if let Ok(cred) = getsockopt(&s, PeerCredentials) {
                    let uid = cred.uid();
                    if foreign(uid) && !*shared {
                        return Err(TrapError::Refused {
                            ifc: self.ifc.clone(),
                            detail: format!(
                                "{} is served by process {} of user {}, neither this user \
                                 nor root: not reading its records (a socket squatted in a \
                                 shared directory?); give the input perm=MODE or set \
                                 TRAP_SOCKET_MODE to accept other users' senders",
                                p.display(),
                                cred.pid(),
                                user_name(uid)
                            ),
                        });
                    }
                }
                Ok(Ok(Conn::Unix(s)))
            }
            Target::Tcp(host, port) => Ok(tcp_connect(host, *port, &shown).map(Conn::Tcp)),
            Target::Tls(host, port, cfg) => {
                let (host, port, cfg) = (host.clone(), *port, cfg.clone());
                let s = match tcp_connect(&host, port, &shown) {
                    Ok(s) => s,
                    Err(reason) => return Ok(Err(reason)),
                };
                match TlsConn::connect(s, cfg, &host, &self.stop) {
                    Ok(c) => Ok(Ok(Conn::Tls(Box::new(c)))),
                    Err(e) => self.tls_failure(&e).map(Err),
                }
            }
        }
    }

    /// A TLS error of the connection: a failed certificate check ends the
    /// input (libtrap's TRAP_E_BAD_CERT); anything else is worth a retry.
    fn tls_failure(&self, e: &io::Error) -> Result<String> {
        if e.kind() == io::ErrorKind::Interrupted {
            return Err(TrapError::Terminated);
        }
        match tls::bad_cert(e, "the server") {
            Some(cause) => Err(TrapError::BadCert {
                ifc: self.ifc.clone(),
                detail: format!("{}: {cause}", self.shown()),
            }),
            None => Ok(format!("TLS with {} failed: {e}", self.shown())),
        }
    }

    /// Reads into `dst[*got..]` until full. `Ok(None)` = deadline passed.
    fn read_into(
        conn: &mut Conn,
        dst: &mut [u8],
        got: &mut usize,
        deadline: Option<Instant>,
        stop: &AtomicBool,
    ) -> Result<Option<ReadStep>, io::Error> {
        while *got < dst.len() {
            match conn.read(&mut dst[*got..]) {
                Ok(0) => return Ok(Some(ReadStep::Closed)),
                Ok(n) => *got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if stop.load(Relaxed) {
                        return Err(io::Error::new(io::ErrorKind::Interrupted, "terminated"));
                    }
                    let wait = match deadline {
                        Some(d) => {
                            let now = Instant::now();
                            if now >= d {
                                return Ok(None);
                            }
                            (d - now).min(TICK)
                        }
                        None => TICK,
                    };
                    conn.wait(false, wait);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(ReadStep::Done))
    }

    fn drop_connection(&mut self, why: &str) {
        if self.conn.take().is_some() && !matches!(self.target, Target::Memory(_)) {
            crate::log::warn(&format!("{}: {why}; reconnecting", self.ifc));
        }
        self.header_got = 0;
        self.payload_len = None;
        self.payload_got = 0;
    }

    /// Connects and reads the hello. `Ok(Err(reason))`: try again later.
    fn open(&mut self) -> Result<Result<DataFormat, String>> {
        let mut conn = match self.connect()? {
            Ok(c) => c,
            Err(reason) => return Ok(Err(reason)),
        };
        conn.set_nonblocking(true)
            .map_err(|e| TrapError::io(&self.ifc, "cannot set up the connection", e))?;
        // The output sends its hello at once; allow a generous 2 s.
        let limit = Some(Instant::now() + Duration::from_secs(2));
        let no_hello = |step: Result<Option<ReadStep>, io::Error>, shown: String| match step {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(TrapError::Terminated),
            Ok(Some(ReadStep::Done)) => Ok(None),
            Ok(None) => Ok(Some(format!("{shown} sent no TRAP hello within 2 s"))),
            Ok(Some(ReadStep::Closed)) => Ok(Some(format!(
                "{shown} closed the connection before its hello (max_clients reached?)"
            ))),
            Err(e) => Ok(Some(format!(
                "{shown}: {} before the hello",
                crate::error::os_reason(&e)
            ))),
        };
        let mut head = [0u8; HELLO_SIZE];
        let mut got = 0;
        let step = Self::read_into(&mut conn, &mut head, &mut got, limit, &self.stop);
        // TLS 1.3: a server refusing our certificate says so after the
        // handshake, instead of the hello.
        if let (Err(e), Conn::Tls(_)) = (&step, &conn) {
            let reason = self.tls_failure(e)?;
            return Ok(Err(reason));
        }
        if let Some(reason) = no_hello(step, self.shown())? {
            return Ok(Err(reason));
        }
        let header = HelloHeader::parse(&head).map_err(|d| TrapError::Negotiation {
            ifc: self.ifc.clone(),
            detail: d,
        })?;
        let mut spec = vec![0u8; header.spec_len];
        let mut got = 0;
        let step = Self::read_into(&mut conn, &mut spec, &mut got, limit, &self.stop);
        if let Some(reason) = no_hello(step, self.shown())? {
            return Ok(Err(reason));
        }
        let fmt = header
            .into_format(&spec)
            .map_err(|d| TrapError::Negotiation {
                ifc: self.ifc.clone(),
                detail: d,
            })?;
        // Type 0: the output has no format yet; come back later.
        let Some(fmt) = fmt else {
            return Ok(Err(format!("{} has no data format yet", self.shown())));
        };
        crate::log::info(0, &format!("{}: connected", self.ifc));
        self.conn = Some(conn);
        Ok(Ok(fmt))
    }
}

impl Source for StreamSource {
    fn fetch(&mut self, buf: &mut Vec<u8>, deadline: Option<Instant>) -> Result<Fetch> {
        loop {
            if self.stop.load(Relaxed) {
                return Err(TrapError::Terminated);
            }
            if self.conn.is_none() {
                if matches!(self.target, Target::Memory(None)) {
                    return Ok(Fetch::End);
                }
                let now = Instant::now();
                if self.next_attempt.is_none_or(|t| now >= t) {
                    match self.open()? {
                        Ok(fmt) => {
                            self.retry.succeeded(&self.ifc);
                            self.next_attempt = None;
                            return Ok(Fetch::Hello(fmt));
                        }
                        // In-memory bytes: nothing to come back to.
                        Err(_) if matches!(self.target, Target::Memory(_)) => {
                            return Ok(Fetch::End)
                        }
                        Err(reason) => {
                            self.retry.failed(&self.ifc, &reason);
                            self.next_attempt = Some(Instant::now() + self.retry.pause());
                        }
                    }
                }
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Err(TrapError::Timeout);
                }
                let pause = deadline.map_or(TICK, |d| (d - now).min(TICK));
                std::thread::sleep(pause);
                continue;
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let step = match self.payload_len {
                None => {
                    let r = Self::read_into(
                        conn,
                        &mut self.header,
                        &mut self.header_got,
                        deadline,
                        &self.stop,
                    );
                    match r {
                        Ok(Some(ReadStep::Done)) => {
                            let h = &self.header;
                            let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
                            if len > MAX_CONTAINER {
                                self.drop_connection("container too large (not a TRAP sender?)");
                                return Err(TrapError::corrupt(
                                    &self.ifc,
                                    format!("container of {len} bytes announced"),
                                ));
                            }
                            self.payload_len = Some(len);
                            self.payload_got = 0;
                            self.payload.resize(len, 0);
                            continue;
                        }
                        r => r,
                    }
                }
                // A partial payload stays here across timeouts.
                Some(_) => Self::read_into(
                    conn,
                    &mut self.payload,
                    &mut self.payload_got,
                    deadline,
                    &self.stop,
                ),
            };
            match step {
                Ok(Some(ReadStep::Done)) => {
                    let h = self.header;
                    let seq =
                        u64::from_le_bytes([h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11]]);
                    let count = u16::from_le_bytes([h[12], h[13]]);
                    self.header_got = 0;
                    self.payload_len = None;
                    std::mem::swap(buf, &mut self.payload);
                    return Ok(Fetch::Buffer {
                        seq: Some((seq, count)),
                    });
                }
                Ok(Some(ReadStep::Closed)) => {
                    self.drop_connection("the sender closed the connection")
                }
                Ok(None) => return Err(TrapError::Timeout),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    return Err(TrapError::Terminated)
                }
                Err(e) => self.drop_connection(&format!("connection error: {e}")),
            }
        }
    }

    fn id(&self) -> String {
        match &self.target {
            Target::Unix(p, _) => p
                .file_name()
                .map(|f| {
                    f.to_string_lossy()
                        .trim_start_matches("trap-")
                        .trim_end_matches(".sock")
                        .to_string()
                })
                .unwrap_or_default(),
            Target::Tcp(h, p) | Target::Tls(h, p, _) if h.contains(':') => format!("[{h}]:{p}"),
            Target::Tcp(h, p) | Target::Tls(h, p, _) => format!("{h}:{p}"),
            Target::Memory(_) => "memory".into(),
        }
    }

    fn connected(&self) -> bool {
        self.conn.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    /// A reader that returns one byte per read (every partial-read path).
    struct Trickle(io::Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    fn container(seq: u64, msgs: &[&[u8]]) -> Vec<u8> {
        let payload: usize = msgs.iter().map(|m| 2 + m.len()).sum();
        let mut out = (payload as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(msgs.len() as u16).to_le_bytes());
        for m in msgs {
            out.extend_from_slice(&(m.len() as u16).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    }

    fn decode(bytes: Vec<u8>, trickle: bool) -> (Vec<Vec<u8>>, Option<String>, u64) {
        let reader: Box<dyn Read + Send> = if trickle {
            Box::new(Trickle(io::Cursor::new(bytes)))
        } else {
            Box::new(io::Cursor::new(bytes))
        };
        let mut input = Input::from_stream_reader("u:mem", reader);
        let mut got = Vec::new();
        loop {
            match input.recv() {
                Ok(m) if m.is_eos() => return (got, None, input.missed()),
                Ok(m) => got.push(m.data.to_vec()),
                Err(e) => return (got, Some(e.to_string()), input.missed()),
            }
        }
    }

    #[test]
    fn a_connection_is_decoded_from_any_reader() {
        let mut bytes = DataFormat::UniRec("uint32 A".into()).hello();
        bytes.extend(container(0, &[b"abcd", b"efgh"]));
        bytes.extend(container(5, &[b"ijkl", &[0]]));
        for trickle in [false, true] {
            let (got, err, missed) = decode(bytes.clone(), trickle);
            assert_eq!(got, [b"abcd", b"efgh", b"ijkl"]);
            assert_eq!((err, missed), (None, 3));
        }
        // Cut in the middle of a container: the stream just ends there.
        let (got, err, _) = decode(bytes[..bytes.len() - 3].to_vec(), true);
        assert_eq!((got.len(), err), (2, None));
        // A container announcing more than any sender sends.
        let mut bad = DataFormat::UniRec("uint32 A".into()).hello();
        bad.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        bad.extend_from_slice(&[0; 10]);
        let (_, err, _) = decode(bad, false);
        assert!(err.unwrap().contains("container of 4294967295 bytes"));
    }

    /// Found by fuzzing (trap_stream): a sequence number near 2^64 plus the
    /// message count overflowed (a panic in debug builds).
    #[test]
    fn sequence_numbers_wrap() {
        let mut bytes = DataFormat::UniRec("uint32 A".into()).hello();
        bytes.extend(container(u64::MAX - 1, &[b"abcd", b"efgh", b"ijkl"]));
        bytes.extend(container(1, &[b"mnop", &[0]]));
        let (got, err, missed) = decode(bytes, false);
        assert_eq!((got.len(), err, missed), (4, None, 0));
    }
}
