//! The statistics socket of NEMEA's link_traffic and proto_traffic: a unix
//! stream socket where every client that connects is sent the current
//! counters as text (a header line and a value line) and is then
//! disconnected. Munin plugins read it.
//!
//! The socket is created mode 0666 as C does (Munin's plugins run as
//! another user). A socket file left by a dead process is replaced; one a
//! live process still serves is not.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The default socket: `NAME` in `$TRAP_SOCKET_DIR` (default `/tmp`), where
/// this project's TRAP sockets are too. (C uses `/var/run/libtrap/NAME`,
/// libtrap's directory there.)
pub fn default_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("TRAP_SOCKET_DIR")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/tmp".into());
    PathBuf::from(dir).join(name)
}

/// Why the socket cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MuninError {
    #[error("{0}: another running process serves this socket (stop it, or choose another path with --socket)")]
    InUse(PathBuf),
    #[error("{0}: exists and is not a socket (choose another path with --socket)")]
    NotSocket(PathBuf),
    #[error("{path}: {what}: {err}")]
    Io {
        path: PathBuf,
        what: &'static str,
        err: std::io::Error,
    },
}

/// Renders the text a client is sent.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A running statistics socket; dropping it stops serving and removes the file.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(path: &Path, render: Render) -> Result<Server, MuninError> {
        let io = |what: &'static str| {
            let path = path.to_path_buf();
            move |err| MuninError::Io { path, what, err }
        };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(MuninError::NotSocket(path.to_path_buf()));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(MuninError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io("cannot remove the stale socket file"))?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("cannot create the socket's directory"))?;
        }
        let listener = UnixListener::bind(path).map_err(io("cannot create the socket"))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .map_err(io("cannot make the socket readable for Munin"))?;
        listener
            .set_nonblocking(true)
            .map_err(io("cannot set up the socket"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("munin-socket".into())
            .spawn(move || serve(listener, render, flag))
            .map_err(io("cannot start the socket's thread"))?;
        Ok(Server {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn serve(listener: UnixListener, render: Render, stop: Arc<AtomicBool>) {
    while !stop.load(Relaxed) {
        match listener.accept() {
            Ok((mut client, _)) => {
                // A client that does not read is dropped after a second.
                let _ = client.set_nonblocking(false);
                let _ = client.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = client.write_all(render().as_bytes());
                let _ = client.shutdown(std::net::Shutdown::Both);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::Mutex;

    fn read(path: &Path) -> String {
        let mut s = String::new();
        UnixStream::connect(path)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn serves_the_current_text_to_every_client() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/munin_test");
        let value = Arc::new(Mutex::new(1));
        let v = value.clone();
        let server = Server::start(
            &path,
            Arc::new(move || format!("a\n{}\n", v.lock().unwrap())),
        )
        .unwrap();
        assert_eq!(read(&path), "a\n1\n");
        *value.lock().unwrap() = 2;
        assert_eq!(read(&path), "a\n2\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        // A second server on the same live socket is refused.
        let e = Server::start(&path, Arc::new(String::new)).err().unwrap();
        assert!(e.to_string().contains("another running process"), "{e}");
        drop(server);
        assert!(!path.exists());
        // A stale socket is replaced; another file is not touched.
        drop(UnixListener::bind(&path).unwrap());
        let s = Server::start(&path, Arc::new(|| "x".into())).unwrap();
        assert_eq!(read(&path), "x");
        drop(s);
        std::fs::write(&path, b"keep").unwrap();
        let e = Server::start(&path, Arc::new(String::new)).err().unwrap();
        assert!(e.to_string().contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }
}
