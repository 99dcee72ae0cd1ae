//! The service interface: a unix socket `trap-service_<PID>.sock` where a
//! supervisor (or `trap_stats`) asks for the module's interface counters.
//!
//! Request: 8 bytes, `u8` command (10 = statistics), 3 zero bytes, `u32`
//! host-order size. Reply: command 12, the same header with the size of the
//! JSON text plus its terminating NUL, then the text and the NUL. Any other
//! command closes the connection.

use crate::stats::Registry;
use crate::stream::socket_path;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub const CMD_GET_STATS: u8 = 10;
pub const REPLY_OK: u8 = 12;

/// A running service interface; dropping it removes the socket.
pub struct Service {
    path: PathBuf,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    /// Starts the service socket for this process. Failing to create it is
    /// not fatal for a module (libtrap only warns either).
    pub fn start(registry: Arc<Registry>) -> Option<Service> {
        let path = socket_path(&format!("service_{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                crate::log::info(
                    0,
                    &format!("service interface {} not created: {e}", path.display()),
                );
                return None;
            }
        };
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666));
        let closing = Arc::new(AtomicBool::new(false));
        let flag = closing.clone();
        let thread = std::thread::Builder::new()
            .name("trap-service".into())
            .spawn(move || serve(listener, registry, flag))
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

fn serve(listener: UnixListener, registry: Arc<Registry>, closing: Arc<AtomicBool>) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !closing.load(Relaxed) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::from(100u16)), Ok(n) if n > 0) {
            continue;
        }
        while let Ok((conn, _)) = listener.accept() {
            let registry = registry.clone();
            let _ = std::thread::Builder::new()
                .name("trap-service-client".into())
                .spawn(move || answer(conn, &registry));
        }
    }
}

/// Serves requests on one connection until the peer leaves or misbehaves.
fn answer(mut conn: UnixStream, registry: &Registry) {
    if conn.set_nonblocking(false).is_err()
        || conn
            .set_read_timeout(Some(Duration::from_secs(60)))
            .is_err()
    {
        return;
    }
    let mut req = [0u8; 8];
    while conn.read_exact(&mut req).is_ok() {
        if req[0] != CMD_GET_STATS {
            return;
        }
        let mut body = registry.to_json().into_bytes();
        body.push(0);
        let mut reply = Vec::with_capacity(8 + body.len());
        reply.extend_from_slice(&[REPLY_OK, 0, 0, 0]);
        reply.extend_from_slice(&(body.len() as u32).to_ne_bytes());
        reply.extend_from_slice(&body);
        if conn.write_all(&reply).is_err() {
            return;
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
