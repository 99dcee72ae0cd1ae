//! TLS for `T:` interfaces: rustls (ring provider), TLS 1.2 and 1.3 only.
//!
//! As libtrap's `T:`, both sides authenticate: each loads its private key,
//! its certificate chain and the CAs it trusts (PEM files); the output
//! requires a client certificate signed by one of its CAs and the input
//! verifies the output's certificate chain against its CAs. Host names are
//! **not** checked, as in libtrap: any certificate signed by a trusted CA is
//! accepted whatever name it carries (the CA file is the trust decision,
//! so give each deployment its own CA). Session resumption is off: every
//! connection verifies the peer's chain.
//!
//! After the handshake the byte stream is exactly the `t:` stream (hello,
//! then 14-byte-header containers), so [`TlsConn`] is one more kind of
//! connection of [`crate::stream`], driven over the same non-blocking
//! socket: [`Read`] returns `WouldBlock` when no plaintext is buffered and
//! the socket has nothing, [`Write`] accepts bytes only once earlier ones
//! have left, and [`Write::flush`] pushes out what rustls still holds.

use crate::error::{Result, TrapError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    ServerConfig, SignatureScheme,
};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The three PEM files of a `T:` interface, in IFC_SPEC order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Private key of this side (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
    /// Certificate chain of this side, its own certificate first.
    pub cert: PathBuf,
    /// The CAs a peer's certificate must be signed by.
    pub ca: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.2 and 1.3 (libtrap disables everything older; rustls has nothing older).
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn pem_error(ifc: &str, what: &str, path: &Path, e: rustls::pki_types::pem::Error) -> TrapError {
    use rustls::pki_types::pem::Error as P;
    let why = match e {
        P::Io(e) => crate::error::os_reason(&e),
        P::NoItemsFound => "no PEM item of that kind in it".to_string(),
        other => format!("not valid PEM ({other})"),
    };
    TrapError::BadSpec(format!(
        "interface `{ifc}`: cannot read the {what} {}: {why}",
        path.display()
    ))
}

fn load_certs(ifc: &str, what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| pem_error(ifc, what, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(
            ifc,
            what,
            path,
            rustls::pki_types::pem::Error::NoItemsFound,
        ));
    }
    Ok(certs)
}

fn load_key(ifc: &str, path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(ifc, "private key (KEYFILE)", path, e))
}

fn load_roots(ifc: &str, path: &Path) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(ifc, "CA certificates (CAFILE)", path)? {
        roots.add(c).map_err(|e| {
            TrapError::BadSpec(format!(
                "interface `{ifc}`: CA certificate in {} is not usable: {e}",
                path.display()
            ))
        })?;
    }
    Ok(Arc::new(roots))
}

/// The error of a key and certificate that cannot be used together.
fn key_error(ifc: &str, files: &TlsFiles, e: rustls::Error) -> TrapError {
    let why = match e {
        rustls::Error::InconsistentKeys(_) => {
            "the key does not belong to the certificate (KEYFILE and CERTFILE swapped or from \
             different pairs?)"
                .to_string()
        }
        other => other.to_string(),
    };
    TrapError::BadSpec(format!(
        "interface `{ifc}`: key {} with certificate {}: {why}",
        files.key.display(),
        files.cert.display()
    ))
}

/// The configuration of a `T:` output: its key and chain, and client
/// certificates required and verified against CAFILE.
pub fn server_config(ifc: &str, files: &TlsFiles) -> Result<Arc<ServerConfig>> {
    let chain = load_certs(ifc, "certificate (CERTFILE)", &files.cert)?;
    let key = load_key(ifc, &files.key)?;
    let roots = load_roots(ifc, &files.ca)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TrapError::BadSpec(format!("interface `{ifc}`: {e}")))?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TrapError::BadSpec(format!("interface `{ifc}`: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| key_error(ifc, files, e))?;
    cfg.send_tls13_tickets = 0;
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(cfg))
}

/// The configuration of a `T:` input: its key and chain for the output to
/// verify, and the output's chain verified against CAFILE (names unchecked).
pub fn client_config(ifc: &str, files: &TlsFiles) -> Result<Arc<ClientConfig>> {
    let chain = load_certs(ifc, "certificate (CERTFILE)", &files.cert)?;
    let key = load_key(ifc, &files.key)?;
    let roots = load_roots(ifc, &files.ca)?;
    let verifier = Arc::new(ChainOnly {
        roots,
        provider: provider(),
    });
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TrapError::BadSpec(format!("interface `{ifc}`: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|e| key_error(ifc, files, e))?;
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

/// Verifies the output's certificate chain up to a CA of CAFILE (validity
/// period, signatures, key usage for a TLS server) but not the name in it:
/// libtrap does not check host names either.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The name an input presents (SNI) and rustls wants: the host as given,
/// or, when it is no valid DNS name, 127.0.0.1 (names are not checked, and
/// an address is not sent as SNI).
fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_string())
        .unwrap_or(ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
}

/// How long a handshake may take.
pub const HANDSHAKE_TIME: Duration = Duration::from_secs(2);

/// A TLS connection over a non-blocking TCP socket.
pub struct TlsConn {
    tls: rustls::Connection,
    sock: TcpStream,
}

impl TlsConn {
    /// The output's side: handshakes with a client that just connected and
    /// verifies its certificate, within [`HANDSHAKE_TIME`].
    pub fn accept(sock: TcpStream, cfg: Arc<ServerConfig>, stop: &AtomicBool) -> io::Result<Self> {
        let tls = rustls::ServerConnection::new(cfg).map_err(io::Error::other)?;
        Self::handshake(tls.into(), sock, stop)
    }

    /// The input's side: handshakes with the output at `host` and verifies
    /// its certificate chain, within [`HANDSHAKE_TIME`].
    pub fn connect(
        sock: TcpStream,
        cfg: Arc<ClientConfig>,
        host: &str,
        stop: &AtomicBool,
    ) -> io::Result<Self> {
        let tls =
            rustls::ClientConnection::new(cfg, server_name(host)).map_err(io::Error::other)?;
        Self::handshake(tls.into(), sock, stop)
    }

    fn handshake(tls: rustls::Connection, sock: TcpStream, stop: &AtomicBool) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        let mut c = TlsConn { tls, sock };
        let limit = Instant::now() + HANDSHAKE_TIME;
        let waited = |c: &TlsConn, write: bool| -> io::Result<()> {
            if stop.load(Relaxed) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "terminated"));
            }
            let now = Instant::now();
            if now >= limit {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake not finished within 2 s",
                ));
            }
            let pause = (limit - now).min(Duration::from_millis(100));
            crate::stream::wait_fd(c.sock.as_fd(), write, pause);
            Ok(())
        };
        while c.tls.is_handshaking() || c.tls.wants_write() {
            while c.tls.wants_write() {
                match c.tls.write_tls(&mut c.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => waited(&c, true)?,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if !c.tls.is_handshaking() {
                break;
            }
            match c.tls.read_tls(&mut c.sock) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection during the TLS handshake",
                    ))
                }
                Ok(_) => {
                    if let Err(e) = c.tls.process_new_packets() {
                        // Tell the peer why (the alert rustls queued), briefly.
                        let _ = c.sock.set_nonblocking(false);
                        let _ = c.sock.set_write_timeout(Some(Duration::from_millis(200)));
                        let _ = c.tls.write_tls(&mut c.sock);
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => waited(&c, false)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(c)
    }

    /// The TCP socket under the TLS.
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// Writes what rustls holds; `WouldBlock` while the socket is full.
    fn push(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for TlsConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                // Ok(0): the peer sent close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: for TRAP as good as an
                // end (a cut container is discarded by the framing).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let n = self.tls.read_tls(&mut self.sock)?;
            if let Err(e) = self.tls.process_new_packets() {
                let _ = self.push();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Anything rustls answers on its own (alerts, key updates).
            match self.push() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
            if n == 0 {
                return Ok(0);
            }
        }
    }
}

impl Write for TlsConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // New bytes only once the earlier ones are out, so a slow peer
        // shows as `WouldBlock` here, as on a plain socket.
        self.push()?;
        let n = self.tls.writer().write(buf)?;
        match self.push() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()
    }
}

impl Drop for TlsConn {
    fn drop(&mut self) {
        // A clean close (best effort, never blocking).
        self.tls.send_close_notify();
        let _ = self.push();
    }
}

/// When `e` (from a handshake or a read) is a failed certificate check
/// (libtrap's TRAP_E_BAD_CERT), the cause in words; `peer`: whose
/// certificate we checked ("the client", "the server").
pub fn bad_cert(e: &io::Error, peer: &str) -> Option<String> {
    let err = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match err {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => format!(
                "the certificate of {peer} is not signed by a CA of our CAFILE (unknown issuer)"
            ),
            CertificateError::BadSignature => {
                format!("the certificate of {peer} has a bad signature")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the certificate of {peer} has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the certificate of {peer} is not valid yet")
            }
            CertificateError::Revoked => format!("the certificate of {peer} is revoked"),
            other => format!("the certificate of {peer} is not acceptable: {other:?}"),
        },
        rustls::Error::NoCertificatesPresented => format!("{peer} presented no certificate"),
        rustls::Error::AlertReceived(a) => match a {
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateRequired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied
            | AlertDescription::DecryptError => format!(
                "{peer} refused our certificate (TLS alert {a:?}: is our CERTFILE signed by \
                 a CA in its CAFILE?)"
            ),
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_clear_errors() {
        let files = TlsFiles {
            key: "/nonexistent/k.pem".into(),
            cert: "/nonexistent/c.pem".into(),
            ca: "/nonexistent/ca.pem".into(),
        };
        let e = server_config("T:1:x", &files).unwrap_err().to_string();
        assert_eq!(
            e,
            "interface `T:1:x`: cannot read the certificate (CERTFILE) /nonexistent/c.pem: \
             No such file or directory"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let files = TlsFiles {
            key: empty.clone(),
            cert: empty.clone(),
            ca: empty.clone(),
        };
        let e = client_config("T:1:x", &files).unwrap_err().to_string();
        assert!(e.contains("certificate (CERTFILE)"), "{e}");
        assert!(e.contains("no PEM item"), "{e}");
    }

    #[test]
    fn only_certificate_errors_are_bad_cert() {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert!(bad_cert(&e, "the client")
            .unwrap()
            .contains("unknown issuer"));
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
        );
        assert!(bad_cert(&e, "the server")
            .unwrap()
            .starts_with("the server refused our certificate"));
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
        );
        assert_eq!(bad_cert(&e, "the server"), None);
        assert_eq!(bad_cert(&io::ErrorKind::TimedOut.into(), "x"), None);
    }

    /// A CA and two leaf certificates signed by it, as PEM files in `dir`:
    /// the files of the server and of the client side.
    fn pki(dir: &Path, ca_name: &str) -> (TlsFiles, TlsFiles) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            // A name that is not the host connected to: names are not checked.
            let cert = rcgen::CertificateParams::new(vec![format!("{name}.invalid")])
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            let (k, c) = (
                dir.join(format!("{name}.key")),
                dir.join(format!("{name}.crt")),
            );
            std::fs::write(&k, key.serialize_pem()).unwrap();
            std::fs::write(&c, cert.pem()).unwrap();
            TlsFiles {
                key: k,
                cert: c,
                ca: dir.join("ca.pem"),
            }
        };
        (leaf("server"), leaf("client"))
    }

    fn wait(c: &TlsConn, write: bool, limit: Instant) {
        assert!(Instant::now() < limit, "stalled");
        crate::stream::wait_fd(c.socket().as_fd(), write, Duration::from_millis(100));
    }

    /// A burst far larger than rustls's buffers, sent as soon as the
    /// handshake is done, then silence: the reader, reading small pieces
    /// late, gets all of it (each `WouldBlock` is a real wait for the
    /// socket), then the close.
    #[test]
    fn a_burst_and_close_are_read_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (server, client) = pki(dir.path(), "tl-ca");
        // With session tickets after the handshake, as OpenSSL servers send.
        let mut scfg = (*server_config("T:s", &server).unwrap()).clone();
        scfg.send_tls13_tickets = 2;
        scfg.session_storage = rustls::server::ServerSessionMemoryCache::new(8);
        let (scfg, ccfg) = (Arc::new(scfg), client_config("T:c", &client).unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let writer = std::thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            let mut c = TlsConn::accept(sock, scfg, &stop2).unwrap();
            let limit = Instant::now() + Duration::from_secs(20);
            let mut pos = 0;
            while pos < sent.len() {
                match c.write(&sent[pos..]) {
                    Ok(n) => pos += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait(&c, true, limit),
                    Err(e) => panic!("{e}"),
                }
            }
            while let Err(e) = c.flush() {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                wait(&c, true, limit);
            }
            // Open until the reader has everything, then close_notify.
            let _ = done_rx.recv();
        });
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut c = TlsConn::connect(sock, ccfg, "127.0.0.1", &stop).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let limit = Instant::now() + Duration::from_secs(5);
        let (mut got, mut buf) = (Vec::new(), [0u8; 1000]);
        let mut read = |got: &mut Vec<u8>| loop {
            match c.read(&mut buf) {
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait(&c, false, limit),
                Err(e) => panic!("{e}"),
            }
        };
        while got.len() < data.len() {
            assert!(read(&mut got) > 0, "closed after {} bytes", got.len());
        }
        assert!(got == data);
        done_tx.send(()).unwrap();
        assert_eq!(read(&mut got), 0, "the close");
        writer.join().unwrap();
    }

    #[test]
    fn a_peer_of_another_ca_is_refused_with_the_cause() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (server, _) = pki(d1.path(), "tl-ca");
        let (_, stranger) = pki(d2.path(), "tl-ca2");
        let scfg = server_config("T:s", &server).unwrap();
        let ccfg = client_config("T:c", &stranger).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let srv = std::thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            TlsConn::accept(sock, scfg, &stop2).err()
        });
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // The stranger does not trust the server's CA either.
        let e = TlsConn::connect(sock, ccfg, "127.0.0.1", &stop)
            .err()
            .unwrap();
        assert!(
            bad_cert(&e, "the server")
                .unwrap()
                .contains("unknown issuer"),
            "{e}"
        );
        let e = srv.join().unwrap().unwrap();
        assert!(
            bad_cert(&e, "the client")
                .unwrap()
                .contains("refused our certificate"),
            "{e}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (server, client) = pki(dir.path(), "tl-ca");
        let mixed = TlsFiles {
            key: client.key.clone(),
            ..server
        };
        let e = server_config("T:s", &mixed).unwrap_err().to_string();
        assert!(
            e.contains("the key does not belong to the certificate"),
            "{e}"
        );
    }

    #[test]
    fn names_that_are_no_dns_names_get_a_placeholder() {
        assert_eq!(server_name("localhost").to_str(), "localhost");
        assert_eq!(server_name("::1").to_str(), "::1");
        assert_eq!(server_name("bad name!").to_str(), "127.0.0.1");
    }
}
