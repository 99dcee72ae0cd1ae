//! The supervisor's status page (`--http`): its JSON and, in headless
//! Chromium, the page its own script renders — the configured modules with
//! their states, a module killed by the test shown restarted, new points in
//! the plot, and a screenshot. Without Chromium the browser part is skipped
//! with one line outside CI; under `CI=true` it is required.
//!
//! Child processes are stopped with SIGTERM (SIGKILL when late), never
//! SIGINT: CI may start the tests with SIGINT ignored.

use nemea_rs::ci;
use nemea_rs::{bin, wait_output, Sandbox};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

/// Debian's `chromium`, or `None` (skipped outside CI).
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !ci(),
            "chromium is required under CI=true (scripts/setup.sh installs it)"
        );
        eprintln!("skipped: chromium is missing (the status page's browser checks)");
    }
    found
}

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(pid: i32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A supervisor serving the status page; dropping it stops it (SIGTERM)
/// and its modules.
struct Sup {
    sb: Sandbox,
    child: Option<Child>,
    addr: String,
}

impl Sup {
    fn start(extra: &[&str]) -> Sup {
        let sb = Sandbox::new();
        let b = |name: &str| bin(name).display().to_string();
        let config = format!(
            r#"[[profile]]
name = "Data sources"
enabled = true
[[profile.module]]
name = "zwave"
path = "{gen}"
params = "-p 0.1"
[[profile.module.interface]]
type = "UNIXSOCKET"
direction = "OUT"
params = "zw"

[[profile]]
name = "Loggers"
enabled = true
[[profile.module]]
name = "zlog"
path = "{logger}"
params = "-t"
[[profile.module.interface]]
type = "UNIXSOCKET"
direction = "IN"
params = "zw"
[[profile.module]]
name = "spare"
path = "{logger}"
params = ""
enabled = false
[[profile.module.interface]]
type = "UNIXSOCKET"
direction = "IN"
params = "zw"
"#,
            gen = b("zwave_generator"),
            logger = b("logger"),
        );
        std::fs::write(sb.path("sup.toml"), config).expect("write config");
        // A free port, released just before the supervisor binds it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = sb
            .cmd("supervisor")
            .arg("-T")
            .arg(sb.path("sup.toml"))
            .arg("-L")
            .arg(sb.path("logs"))
            .arg("-s")
            .arg(sb.path("sup.sock"))
            .args(["--http", &addr])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn supervisor");
        let mut sup = Sup {
            sb,
            child: Some(child),
            addr,
        };
        poll("the status page", || {
            if let Some(Ok(Some(st))) = sup.child.as_mut().map(Child::try_wait) {
                panic!("supervisor exited early: {st}");
            }
            sup.get("/api/status").filter(|(code, _)| *code == 200)
        });
        sup
    }

    fn request(&self, req: &str) -> Option<(u16, String)> {
        let mut conn = std::net::TcpStream::connect(&self.addr).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        conn.write_all(req.as_bytes()).ok()?;
        let mut text = String::new();
        conn.read_to_string(&mut text).ok()?;
        let code = text.get(9..12)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_string();
        Some((code, body))
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.addr
        ))
    }

    fn status(&self) -> serde_json::Value {
        let (code, body) = self.get("/api/status").expect("/api/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    /// The module `name` in the status document.
    fn module(&self, name: &str) -> serde_json::Value {
        let doc = self.status();
        doc["profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["modules"].as_array().into_iter().flatten())
            .find(|m| m["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {doc}"))
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Sup {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            signal(child.id() as i32, "-TERM");
            let _ = wait_output(child, Duration::from_secs(30), "supervisor");
        }
    }
}

/// Runs headless Chromium on the page with `args` (`--dump-dom`,
/// `--screenshot=…`) in its own process group, with a HOME and profile in
/// `dir`, no proxy, and names other than 127.0.0.1 unresolvable (nothing
/// leaves the machine). Returns stdout.
fn browse(chromium: &Path, dir: &Path, url: &str, args: &[&str]) -> String {
    let home = dir.join("chromium-home");
    std::fs::create_dir_all(&home).expect("chromium home");
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-proxy-server",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        // Long enough for the script's first fetches and a few refreshes.
        "--virtual-time-budget=4000",
    ])
    .arg(format!(
        "--user-data-dir={}",
        home.join("profile").display()
    ))
    .args(args)
    .arg(url)
    .env("HOME", &home)
    .env_remove("http_proxy")
    .env_remove("https_proxy")
    .env_remove("HTTP_PROXY")
    .env_remove("HTTPS_PROXY")
    .env_remove("all_proxy")
    .env_remove("ALL_PROXY")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let child = cmd.spawn().expect("spawn chromium");
    let group = child.id() as i32;
    // Its helpers (zygote, renderer) are in its process group: none
    // outlives it, even when it hangs.
    struct Group(i32);
    impl Drop for Group {
        fn drop(&mut self) {
            for pid in group_members(self.0) {
                signal(pid, "-KILL");
            }
        }
    }
    let _group = Group(group);
    let out = wait_output(child, Duration::from_secs(90), "chromium");
    assert!(
        out.status.success(),
        "chromium {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The processes of process group `pgid` (field 5 of /proc/PID/stat).
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().nth(2)?.parse::<i32>().ok())
                    == Some(pgid)
            })
        })
        .collect()
}

/// The attributes of a start tag (`<tr class="module" data-x="1">`).
fn attributes(tag: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_string();
        let after = &rest[eq + 2..];
        let Some(end) = after.find('"') else { break };
        out.insert(key, after[..end].to_string());
        rest = &after[end + 1..];
    }
    out
}

/// Every element `<NAME …>` of the DOM: its attributes and what follows the
/// start tag up to `</NAME>`.
fn elements(dom: &str, name: &str) -> Vec<(HashMap<String, String>, String)> {
    let open = format!("<{name} ");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i..];
        let Some(end) = rest.find('>') else { break };
        let attrs = attributes(&rest[..end]);
        let inner_end = rest.find(&close).unwrap_or(rest.len());
        out.push((attrs, rest[end + 1..inner_end.max(end + 1)].to_string()));
        rest = &rest[end + 1..];
    }
    out
}

/// The row of module `name` in the rendered table.
fn row(dom: &str, name: &str) -> (HashMap<String, String>, String) {
    elements(dom, "tr")
        .into_iter()
        .find(|(a, _)| {
            a.get("class").map(String::as_str) == Some("module")
                && a.get("data-module").map(String::as_str) == Some(name)
        })
        .unwrap_or_else(|| panic!("no row for {name} in the rendered page:\n{dom}"))
}

/// Points of module `name`'s line in the plot.
fn plot_points(dom: &str, name: &str) -> usize {
    elements(dom, "polyline")
        .into_iter()
        .find(|(a, _)| a.get("data-module").map(String::as_str) == Some(name))
        .and_then(|(a, _)| a.get("data-points")?.parse().ok())
        .unwrap_or_else(|| panic!("no plot line for {name} in the rendered page:\n{dom}"))
}

fn assert_rendered(dom: &str) {
    let body = elements(dom, "body");
    let refreshes: u32 = body
        .first()
        .and_then(|(a, _)| a.get("data-refreshes")?.parse().ok())
        .unwrap_or(0);
    assert!(refreshes >= 1, "the page's script never rendered:\n{dom}");
    assert!(
        !dom.contains("cannot reach the supervisor"),
        "the script could not fetch:\n{dom}"
    );
}

#[test]
fn status_page_shows_modules_restarts_and_a_growing_plot() {
    let sup = Sup::start(&[]);
    // The JSON: configured modules with their states, rates once two polls
    // of the logger were compared.
    let zlog = poll("zlog running with a rate", || {
        let m = sup.module("zlog");
        (m["state"] == "running" && m["records_per_s"].as_f64()? > 0.0).then_some(m)
    });
    let old_pid = zlog["pid"].as_i64().expect("pid");
    assert!(old_pid > 0);
    assert_eq!(zlog["restarts"], 0);
    assert_eq!(zlog["inputs"][0]["id"], "zw");
    assert!(
        zlog["inputs"][0]["rate"].as_f64().is_some_and(|r| r > 0.0),
        "{zlog}"
    );
    let zwave = sup.module("zwave");
    assert_eq!(zwave["state"], "running");
    assert_eq!(zwave["outputs"][0]["clients"], 1);
    let spare = sup.module("spare");
    assert_eq!(
        (spare["state"].as_str(), spare["enabled"].as_bool()),
        (Some("stopped"), Some(false))
    );
    assert_eq!(sup.status()["supervisor"]["control"], false);
    // Without --http-control the control endpoints are refused.
    let (code, _) = sup
        .request(&format!(
            "POST /api/restart/zlog HTTP/1.1\r\nHost: {}\r\nX-Nemea-Control: 1\r\nContent-Length: 0\r\n\r\n",
            sup.addr
        ))
        .expect("POST");
    assert_eq!(code, 403);
    assert_eq!(sup.module("zlog")["pid"].as_i64(), Some(old_pid));

    let browser = chromium();
    let before = browser.as_ref().map(|c| {
        let dom = browse(c, sup.sb.dir.path(), &sup.url(), &["--dump-dom"]);
        assert_rendered(&dom);
        let (a, cells) = row(&dom, "zlog");
        assert_eq!(a["data-state"], "running");
        assert_eq!(a["data-pid"], old_pid.to_string());
        assert_eq!(a["data-restarts"], "0");
        assert!(cells.contains(">running<"), "{cells}");
        let (a, cells) = row(&dom, "zwave");
        assert_eq!(a["data-state"], "running");
        assert!(cells.contains(">zwave<"), "{cells}");
        let (a, cells) = row(&dom, "spare");
        assert_eq!(a["data-state"], "stopped");
        assert!(cells.contains(">stopped<"), "{cells}");
        // Read-only: no buttons.
        assert!(!dom.contains("<button"), "{dom}");
        // The interface table has the logger's input.
        assert!(elements(&dom, "tr").iter().any(|(a, _)| {
            a.get("data-module").map(String::as_str) == Some("zlog")
                && a.get("data-direction").map(String::as_str) == Some("in")
        }));
        let points = plot_points(&dom, "zlog");
        assert!(points >= 1, "no points yet:\n{dom}");
        points
    });

    // Killed: the supervisor restarts it with a new PID.
    signal(old_pid as i32, "-KILL");
    let zlog = poll("zlog restarted", || {
        let m = sup.module("zlog");
        (m["state"] == "running" && m["restarts"] == 1 && m["pid"].as_i64()? != old_pid)
            .then_some(m)
    });
    let new_pid = zlog["pid"].as_i64().expect("pid");
    let Some(chromium) = browser else {
        return;
    };
    let before = before.unwrap_or(0);
    // New samples come once a second; wait for two past the first dump.
    poll("new samples", || {
        let (_, body) = sup.get("/api/history")?;
        let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
        let n = doc["modules"]
            .as_array()?
            .iter()
            .find(|m| m["name"] == "zlog")?["samples"]
            .as_array()?
            .len();
        (n >= before + 2).then_some(())
    });
    let dom = browse(&chromium, sup.sb.dir.path(), &sup.url(), &["--dump-dom"]);
    assert_rendered(&dom);
    let (a, cells) = row(&dom, "zlog");
    assert_eq!(a["data-state"], "running");
    assert_eq!(a["data-pid"], new_pid.to_string());
    assert_eq!(a["data-restarts"], "1");
    assert!(
        cells.contains("<td class=\"num restarts\">1</td>"),
        "{cells}"
    );
    assert!(
        cells.contains(&format!("<td class=\"num pid\">{new_pid}</td>")),
        "{cells}"
    );
    let after = plot_points(&dom, "zlog");
    assert!(
        after > before,
        "the plot did not grow: {before} → {after} points"
    );

    let shot = sup.sb.path("status-page.png");
    browse(
        &chromium,
        sup.sb.dir.path(),
        &sup.url(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1000",
        ],
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.len() > 1000, "screenshot of {} bytes", png.len());
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    eprintln!(
        "status page: zlog plot {before} → {after} points, screenshot {} bytes",
        png.len()
    );
}

#[test]
fn status_page_control_restarts_a_module_when_enabled() {
    let sup = Sup::start(&["--http-control"]);
    let old = poll("zlog running", || {
        let m = sup.module("zlog");
        (m["state"] == "running")
            .then(|| m["pid"].as_i64())
            .flatten()
    });
    assert_eq!(sup.status()["supervisor"]["control"], true);
    let post = |path: &str, headers: &str| {
        sup.request(&format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Length: 0\r\n\r\n",
            sup.addr
        ))
        .expect("POST")
    };
    // What a form of another site could send: refused.
    let (code, body) = post("/api/restart/zlog", "Origin: http://example.com\r\n");
    assert_eq!(code, 403, "{body}");
    // What the page's buttons send.
    let (code, body) = post("/api/restart/zlog", "X-Nemea-Control: 1\r\n");
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
    assert_eq!(answer["ok"], true);
    let new = sup.module("zlog")["pid"].as_i64().expect("pid");
    assert_ne!(new, old);
    assert_eq!(
        answer["message"],
        format!("Module zlog restarted (PID {new}).")
    );
    // Asked for, not a restart after a failure.
    assert_eq!(sup.module("zlog")["restarts"], 0);
    let (code, _) = post("/api/stop/nosuch", "X-Nemea-Control: 1\r\n");
    assert_eq!(code, 404);
    let (code, body) = post("/api/stop/Loggers", "X-Nemea-Control: 1\r\n");
    assert_eq!(code, 200, "{body}");
    assert_eq!(sup.module("zlog")["state"], "stopped");
    // The metrics port's limits: 8 KiB of head, 16 clients at once.
    let big = format!(
        "GET /api/status HTTP/1.1\r\nHost: {}\r\nX-Filler: {}\r\n\r\n",
        sup.addr,
        "a".repeat(9000)
    );
    assert_eq!(sup.request(&big).map(|r| r.0), Some(431));
    let idle: Vec<std::net::TcpStream> = (0..24)
        .filter_map(|_| std::net::TcpStream::connect(&sup.addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let busy = idle
        .iter()
        .filter(|c| {
            let mut c: &std::net::TcpStream = c;
            // Turned away at once; the others wait for their request.
            let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
            let mut head = [0u8; 12];
            c.read_exact(&mut head).is_ok() && &head == b"HTTP/1.0 503"
        })
        .count();
    assert!(busy >= 24 - 16, "{busy} of 24 idle connections turned away");
    drop(idle);
    poll("the page after the idle clients", || {
        sup.get("/api/status").filter(|(code, _)| *code == 200)
    });
    if let Some(chromium) = chromium() {
        let dom = browse(&chromium, sup.sb.dir.path(), &sup.url(), &["--dump-dom"]);
        assert_rendered(&dom);
        // Buttons on every module and profile row.
        let (_, cells) = row(&dom, "zlog");
        for verb in ["start", "stop", "restart"] {
            assert!(cells.contains(&format!("data-verb=\"{verb}\"")), "{cells}");
        }
    }
}
