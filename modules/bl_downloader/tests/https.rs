//! bl_downloader fetching over HTTPS from a local server with a throwaway CA:
//! trusted through `ca_file`, refused without it, HTTP errors reported.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

const LIST: &str = "# test list\n192.0.2.1\n198.51.100.0/24 a comment\n2001:db8::/32\n";

/// Serves `LIST` at `/list.txt` (404 elsewhere) over TLS with a certificate
/// for 127.0.0.1 signed by a fresh CA; returns the port and the CA's PEM.
fn https_server() -> (u16, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                continue;
            };
            // A client that refuses the certificate ends the handshake:
            // that connection fails, the server goes on.
            let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
            let mut request = String::new();
            if tls.read_line(&mut request).is_err() {
                continue;
            }
            let mut line = String::new();
            while tls.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (status, body) = if request.starts_with("GET /list.txt ") {
                ("200 OK", LIST)
            } else {
                ("404 Not Found", "no such list\n")
            };
            let tls = tls.get_mut();
            let _ = write!(
                tls,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, ca_cert.pem())
}

fn run_once(dir: &Path, source: &str, ca_file: Option<&Path>) -> Output {
    let ca = ca_file
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    let config = dir.join("bl.toml");
    std::fs::write(
        &config,
        format!(
            "timeout = 5\n{ca}ipv4_file = \"{}\"\nipv6_file = \"{}\"\n\n\
             [[blacklist]]\nid = 3\nname = \"test\"\nsource = \"{source}\"\n",
            dir.join("ip4.blist").display(),
            dir.join("ip6.blist").display()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_bl_downloader"))
        .args(["--once", "-c"])
        .arg(&config)
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .output()
        .unwrap()
}

#[test]
fn https_list_with_ca_file_refused_without_it() {
    let (port, ca_pem) = https_server();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let url = format!("https://127.0.0.1:{port}/list.txt");

    // Not signed by a built-in root: refused, nothing written.
    let out = run_once(dir.path(), &url, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(!dir.path().join("ip4.blist").exists());

    // Trusted through ca_file.
    let out = run_once(dir.path(), &url, Some(&ca));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ip4.blist")).unwrap(),
        "192.0.2.1,4\n198.51.100.0/24,4\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ip6.blist")).unwrap(),
        "2001:db8::/32,4\n"
    );

    // An HTTP error names the status; the last good files stay.
    let out = run_once(
        dir.path(),
        &format!("https://127.0.0.1:{port}/gone.txt"),
        Some(&ca),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("HTTP status 404"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ip4.blist")).unwrap(),
        "192.0.2.1,4\n198.51.100.0/24,4\n"
    );
}
