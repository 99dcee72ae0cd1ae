//! The real binary learns a pool by probing it: a fake Stratum server on
//! 127.0.0.1 answers the Bitcoin subscribe request, another server answers
//! nonsense; flows (a UniRec file) show one miner talking to each.

use libtrap::{DataFormat, Required, Trap};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use unirec::{RecordBuilder, RecordRef, Template, UrIp, UrTime};

/// A server on 127.0.0.1 answering each connection's request with
/// `reply(request)`; returns its port and a count of connections.
fn server(reply: fn(&str) -> &'static str) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let k = c.read(&mut buf).unwrap_or(0);
            let _ = c.write_all(reply(&String::from_utf8_lossy(&buf[..k])).as_bytes());
        }
    });
    (port, n)
}

fn stratum_pool(req: &str) -> &'static str {
    if req.contains("mining.subscribe") {
        "{\"id\":1,\"result\":[[[\"mining.set_difficulty\",\"1\"],[\"mining.notify\",\"ae68\"]],\"08000002\",4],\"error\":null}\n"
    } else {
        "{\"id\":1,\"result\":null,\"error\":[20,\"unknown method\",null]}\n"
    }
}

fn not_a_pool(_: &str) -> &'static str {
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
}

const T0: u32 = 1_700_000_000;

/// Two minutes of one flow a second from each miner (port 65000, above any
/// ephemeral port, so the lower-port rule makes 127.0.0.1 the server):
/// ACK|PSH, 5 packets of 106 bytes — score 8 and a "yes" from the tree.
fn write_flows(path: &Path, servers: &[(&str, u16)]) {
    let spec = miner_detector::INPUT_SPEC;
    let t = Template::parse(spec).unwrap();
    let mut trap = Trap::init(&format!("f:{}", path.display()), Some(0), Some(1)).unwrap();
    let out = &mut trap.outputs()[0];
    out.set_format(DataFormat::UniRec(t.spec().to_string()))
        .unwrap();
    let i = |n: &str| t.find(n).unwrap();
    let mut b = RecordBuilder::new(&t);
    let mut buf = Vec::new();
    for s in 0..=120 {
        for (miner, port) in servers {
            let time = UrTime::from_secs_millis(T0 + s, 0);
            b.clear();
            b.set_ip(i("SRC_IP"), UrIp::parse(miner).unwrap()).unwrap();
            b.set_ip(i("DST_IP"), UrIp::parse("127.0.0.1").unwrap())
                .unwrap();
            b.set_u16(i("SRC_PORT"), 65000).unwrap();
            b.set_u16(i("DST_PORT"), *port).unwrap();
            b.set_u8(i("TCP_FLAGS"), 0x18).unwrap();
            b.set_u8(i("PROTOCOL"), 6).unwrap();
            b.set_u32(i("PACKETS"), 5).unwrap();
            b.set_u64(i("BYTES"), 530).unwrap();
            b.set_time(i("TIME_FIRST"), time).unwrap();
            b.set_time(i("TIME_LAST"), time).unwrap();
            buf.clear();
            b.finish(&mut buf).unwrap();
            out.send(&buf).unwrap();
        }
    }
    trap.end(true).unwrap();
}

#[derive(Debug, PartialEq)]
struct Alert {
    miner: String,
    pool: String,
    port: u16,
    packets: u32,
    rule: u8,
}

fn read_alerts(path: &Path) -> Vec<Alert> {
    let mut trap = Trap::init(&format!("f:{}", path.display()), Some(1), Some(0)).unwrap();
    let input = &mut trap.inputs()[0];
    input.set_required(Required::UniRec(miner_detector::ALERT_SPEC.into()));
    let mut alerts = Vec::new();
    let mut tmpl: Option<Template> = None;
    loop {
        let msg = input.recv().unwrap();
        if msg.is_eos() {
            break;
        }
        if msg.format_changed || tmpl.is_none() {
            let Some(DataFormat::UniRec(spec)) = msg.format else {
                panic!("not UniRec")
            };
            tmpl = Some(Template::parse(spec).unwrap());
        }
        let t = tmpl.as_ref().unwrap();
        let r = RecordRef::new_checked(t, msg.data).unwrap();
        let i = |n: &str| t.find(n).unwrap();
        alerts.push(Alert {
            miner: r.get_ip(i("SRC_IP")).unwrap().to_string(),
            pool: r.get_ip(i("DST_IP")).unwrap().to_string(),
            port: r.get_u16(i("DST_PORT")).unwrap(),
            packets: r.get_u32(i("EVENT_SCALE")).unwrap(),
            rule: r.get_u8(i("SERVER_RULE")).unwrap(),
        });
    }
    alerts
}

/// Runs the detector on `dir`/in.trapcap (output out.trapcap) with `extra`
/// options; fails the test if it takes over a minute or fails.
fn detect(dir: &Path, extra: &[&str]) -> Vec<Alert> {
    let ifc = format!(
        "f:{},f:{}",
        dir.join("in.trapcap").display(),
        dir.join("out.trapcap").display()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_miner_detector"))
        .args(extra)
        .args(["-i", &ifc])
        .current_dir(dir)
        .env("TRAP_SOCKET_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("miner_detector did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "miner_detector failed: {err}");
    read_alerts(&dir.join("out.trapcap"))
}

#[test]
fn stratum_pool_is_learned_and_its_miner_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, pool_hits) = server(stratum_pool);
    let (web, web_hits) = server(not_a_pool);
    write_flows(
        &dir.path().join("in.trapcap"),
        &[("10.0.0.5", pool), ("10.0.0.6", web)],
    );
    let alerts = detect(
        dir.path(),
        &[
            "--stratum-check",
            "--conn-timeout",
            "2",
            "--read-timeout",
            "2",
            "--store-blacklist",
            "bl.txt",
            "--store-whitelist",
            "wl.txt",
        ],
    );
    assert_eq!(
        alerts,
        [Alert {
            miner: "10.0.0.5".into(),
            pool: "127.0.0.1".into(),
            port: pool,
            packets: 121 * 5,
            rule: 4,
        }]
    );
    // The pool answered the first (Bitcoin) probe; the other server got all
    // four and matched none.
    assert_eq!(pool_hits.load(Ordering::SeqCst), 1);
    assert_eq!(web_hits.load(Ordering::SeqCst), 4);
    let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
    assert_eq!(read("bl.txt"), format!("127.0.0.1:{pool}\n"));
    assert_eq!(read("wl.txt"), format!("127.0.0.1:{web}\n"));
}

#[test]
fn without_stratum_check_nothing_is_probed_or_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, pool_hits) = server(stratum_pool);
    write_flows(&dir.path().join("in.trapcap"), &[("10.0.0.5", pool)]);
    let alerts = detect(dir.path(), &[]);
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(pool_hits.load(Ordering::SeqCst), 0);
}

#[test]
fn xml_stratum_check_and_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, pool_hits) = server(stratum_pool);
    write_flows(&dir.path().join("in.trapcap"), &[("10.0.0.5", pool)]);
    let xml = |threshold: u32| {
        format!(
            "<configuration><struct name=\"main struct\">\
             <element name=\"stratum_check\">true</element>\
             <element name=\"score_treshold\">{threshold}</element>\
             <element name=\"conn_timeout\">2</element>\
             <element name=\"read_timeout\">2</element>\
             </struct></configuration>"
        )
    };
    // The flows score 8: a threshold of 9 asks nothing.
    std::fs::write(dir.path().join("c.xml"), xml(9)).unwrap();
    assert!(detect(dir.path(), &["-u", "c.xml"]).is_empty());
    assert_eq!(pool_hits.load(Ordering::SeqCst), 0);
    std::fs::write(dir.path().join("c.xml"), xml(8)).unwrap();
    let alerts = detect(dir.path(), &["-u", "c.xml"]);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].port, pool);
    assert_eq!(pool_hits.load(Ordering::SeqCst), 1);
}
