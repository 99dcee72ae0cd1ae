//! The supervisor and supcli with real module processes, each test in its
//! own directory (also `TRAP_SOCKET_DIR`) with its own client socket.

use nemea_rs::{bin, wait_output, Sandbox};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Generous deadline for anything that should happen within ~1 s.
const DEADLINE: Duration = Duration::from_secs(15);

/// A running supervisor; dropping it stops it (SIGTERM) and its modules.
struct Sup {
    sb: Sandbox,
    child: Option<Child>,
    config: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    idx: usize,
    name: String,
    enabled: bool,
    running: bool,
    pid: i32,
}

fn signal(pid: i32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// True while the process exists and is not a zombie.
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Sup {
    fn sandbox() -> Sandbox {
        Sandbox::new()
    }

    fn socket(sb: &Sandbox) -> PathBuf {
        sb.path("sup.sock")
    }

    fn command(sb: &Sandbox, config: &Path) -> Command {
        let mut c = sb.cmd("supervisor");
        c.arg("-T")
            .arg(config)
            .arg("-L")
            .arg(sb.path("logs"))
            .arg("-s")
            .arg(Self::socket(sb))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Starts the supervisor on `config` and waits until it answers.
    fn start(sb: Sandbox, config: PathBuf) -> Sup {
        let child = Self::command(&sb, &config)
            .spawn()
            .expect("spawn supervisor");
        let mut sup = Sup {
            sb,
            child: Some(child),
            config,
        };
        sup.wait_ready();
        sup
    }

    fn wait_ready(&mut self) {
        let sock = Self::socket(&self.sb);
        poll("the supervisor socket", || {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("supervisor exited early: {st}");
                }
            }
            std::os::unix::net::UnixStream::connect(&sock)
                .ok()
                .map(|_| ())
        });
    }

    fn cli(&self, args: &[&str]) -> Output {
        let child = self
            .sb
            .cmd("supcli")
            .arg("-s")
            .arg(Self::socket(&self.sb))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn supcli");
        wait_output(child, Duration::from_secs(30), "supcli")
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "supcli {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn status(&self) -> Vec<Row> {
        parse_status(&self.cli_ok(&["status"]))
    }

    fn row(&self, name: &str) -> Row {
        self.status()
            .into_iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} not in status"))
    }

    /// Waits until `name` runs and returns its PID.
    fn running_pid(&self, name: &str) -> i32 {
        poll(&format!("{name} running"), || {
            let r = self.row(name);
            (r.running && r.pid > 0).then_some(r.pid)
        })
    }

    fn events(&self) -> String {
        std::fs::read_to_string(self.sb.path("logs/modules_events")).unwrap_or_default()
    }

    /// Sends `sig` and waits for the supervisor to exit; returns its stderr.
    fn finish(&mut self, sig: &str) -> Output {
        let child = self.child.take().expect("running supervisor");
        signal(child.id() as i32, sig);
        wait_output(child, Duration::from_secs(30), "supervisor")
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

fn parse_status(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| {
            l.starts_with("   ") && l.trim_start().starts_with(|c: char| c.is_ascii_digit())
        })
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 6, "status row {l:?}");
            Row {
                idx: cells[0].parse().expect("index"),
                name: cells[1].to_string(),
                enabled: cells[2] == "true",
                running: cells[3] == "running",
                pid: cells[4].parse().expect("pid"),
            }
        })
        .collect()
}

/// A TOML module entry; `ifcs` as (type, direction, params).
fn module(name: &str, binary: &str, params: &str, ifcs: &[(&str, &str, &str)]) -> String {
    let path = if binary.contains('/') || !bin_dir_has(binary) {
        binary.to_string()
    } else {
        bin(binary).display().to_string()
    };
    let mut s =
        format!("[[profile.module]]\nname = \"{name}\"\npath = \"{path}\"\nparams = {params:?}\n");
    for (t, d, p) in ifcs {
        s += &format!(
            "[[profile.module.interface]]\ntype = \"{t}\"\ndirection = \"{d}\"\nparams = \"{p}\"\n"
        );
    }
    s
}

fn bin_dir_has(name: &str) -> bool {
    nemea_rs::bin_dir().join(name).exists()
}

fn profile(name: &str, enabled: bool, modules: &[String]) -> String {
    format!(
        "[[profile]]\nname = \"{name}\"\nenabled = {enabled}\n{}\n",
        modules.concat()
    )
}

/// Generator → logger pipeline in two profiles, plus a disabled module.
fn pipeline_config() -> String {
    profile(
        "Data sources",
        true,
        &[module(
            "zwave",
            "zwave_generator",
            "-p 0.1",
            &[("UNIXSOCKET", "OUT", "zw")],
        )],
    ) + &profile(
        "Loggers",
        true,
        &[
            module("zlog", "logger", "-t", &[("UNIXSOCKET", "IN", "zw")]),
            module("spare", "logger", "", &[("UNIXSOCKET", "IN", "zw")])
                .replace("params = \"\"\n", "params = \"\"\nenabled = false\n"),
        ],
    )
}

fn write(sb: &Sandbox, name: &str, text: &str) -> PathBuf {
    let p = sb.path(name);
    std::fs::write(&p, text).expect("write config");
    p
}

#[test]
fn status_lists_profiles_and_modules() {
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let sup = Sup::start(sb, cfg);
    let zwave = sup.running_pid("zwave");
    let zlog = sup.running_pid("zlog");
    let text = sup.cli_ok(&["status"]);
    // No terminal: no colours, NEMEA's layout.
    assert!(!text.contains('\x1b'), "{text}");
    // P = max(3, digits of the largest PID); each PID cell is P + 1 wide.
    let p = zwave.max(zlog).to_string().len().max(3);
    let want = format!(
        "--- [CONFIGURATION STATUS] ---
     | name           | enabled | status  | PID{h}|
Profile: Data sources |  true   |
   0 | zwave          |  true   | running | {zwave:<p$} |

Profile: Loggers      |  true   |
   1 | zlog           |  true   | running | {zlog:<p$} |
   2 | spare          |  false  | stopped | {zero:<p$} |

",
        h = " ".repeat(p - 2),
        zero = 0
    );
    assert_eq!(text, want);
    let rows = parse_status(&text);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2].idx, 2);
    assert!(!rows[2].enabled && !rows[2].running && rows[2].pid == 0);
    // The module's output goes to its log file, after a start separator.
    let out = sup.sb.path("logs/modules_logs/zlog_stdout");
    poll("logger output", || {
        let t = std::fs::read_to_string(&out).ok()?;
        (t.starts_with("---> ") && t.contains("uint32 GW_ID,int32 SOAFCount,int32 TIME\n101,1,100"))
            .then_some(())
    });
    // NEMEA's process title: argv[0] is the module name.
    let cmdline = std::fs::read(format!("/proc/{zlog}/cmdline")).expect("cmdline");
    assert!(cmdline.starts_with(b"zlog\0-t\0-i\0u:zw\0"), "{cmdline:?}");
}

#[test]
fn stats_show_live_counters_of_a_logger_input() {
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let sup = Sup::start(sb, cfg);
    let first = poll("logger input counters", || {
        let json: serde_json::Value = serde_json::from_str(&sup.cli_ok(&["-x"])).ok()?;
        let input = &json["zlog"]["inputs"][0];
        (input["type"] == "u" && input["ID"] == "zw" && input["is-conn"] == 1)
            .then(|| input["messages"].as_u64())
            .flatten()
            .filter(|n| *n > 0)
    });
    // Live: the count grows.
    poll("growing counters", || {
        let json: serde_json::Value = serde_json::from_str(&sup.cli_ok(&["stats"])).ok()?;
        (json["zlog"]["inputs"][0]["messages"].as_u64()? > first).then_some(())
    });
    let json: serde_json::Value = serde_json::from_str(&sup.cli_ok(&["-x"])).expect("json");
    assert!(
        json["zwave"]["outputs"][0]["sent-msg"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    assert!(json.get("spare").is_none(), "only running modules: {json}");
    let info: serde_json::Value = serde_json::from_str(&sup.cli_ok(&["-i"])).expect("json");
    assert_eq!(info["spare"]["status"], "stopped");
    assert_eq!(info["zlog"]["idx"], 1);
    assert_eq!(info["zlog"]["params"], "-t");
}

#[test]
fn killed_module_is_restarted_with_a_new_pid() {
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let sup = Sup::start(sb, cfg);
    let old = sup.running_pid("zlog");
    signal(old, "-KILL");
    let new = poll("a new logger", || {
        let r = sup.row("zlog");
        (r.running && r.pid != old).then_some(r.pid)
    });
    assert!(process_alive(new));
    assert!(sup.events().contains("[RESTART] Restarting module zlog"));
}

#[test]
fn crashing_module_is_given_up_after_the_limit() {
    let sb = Sup::sandbox();
    let cfg = profile(
        "Broken",
        true,
        &[module("crashy", "sh", "-c 'exit 3'", &[])
            .replace("params =", "module-restarts = 2\nparams =")],
    );
    let cfg = write(&sb, "sup.toml", &cfg);
    let sup = Sup::start(sb, cfg);
    poll("crashy given up", || {
        let r = sup.row("crashy");
        (!r.enabled && !r.running && r.pid == 0).then_some(())
    });
    let ev = sup.events();
    assert!(
        ev.contains("[RESTART] Module: crashy was restarted 2 times per minute and it is down again. I set it disabled."),
        "{ev}"
    );
    assert_eq!(ev.matches("[START] Starting module crashy.").count(), 1);
    assert_eq!(ev.matches("[RESTART] Restarting module crashy").count(), 2);
    // Enabling it again gives it a fresh allowance.
    sup.cli_ok(&["start", "crashy"]);
    poll("crashy given up again", || {
        (sup.events().matches("I set it disabled").count() == 2).then_some(())
    });
}

#[test]
fn start_stop_restart_by_module_and_profile() {
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let sup = Sup::start(sb, cfg);
    let zlog = sup.running_pid("zlog");
    sup.cli_ok(&["start", "spare"]);
    sup.running_pid("spare");
    sup.cli_ok(&["stop", "Loggers"]);
    poll("loggers stopped", || {
        let rows = sup.status();
        rows.iter()
            .filter(|r| r.name != "zwave")
            .all(|r| !r.running)
            .then_some(())
    });
    assert!(!process_alive(zlog));
    assert!(sup
        .cli_ok(&["status"])
        .contains("Profile: Loggers      |  false  |"));
    sup.cli_ok(&["enable", "Loggers"]);
    let zlog = sup.running_pid("zlog");
    sup.cli_ok(&["restart", "zlog"]);
    poll("zlog restarted", || {
        let r = sup.row("zlog");
        (r.running && r.pid != zlog).then_some(())
    });
    let out = sup.cli(&["stop", "nosuch"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "supcli: error: no such module or profile: nosuch\n"
    );
}

#[test]
fn reload_applies_exactly_the_changes() {
    let sb = Sup::sandbox();
    let gen =
        |name: &str, sock: &str| module(name, "zwave_generator", "-p 0.2", &[("u", "OUT", sock)]);
    let log =
        |name: &str, sock: &str, params: &str| module(name, "logger", params, &[("u", "IN", sock)]);
    let before = profile(
        "P",
        true,
        &[gen("a", "sa"), log("b", "sa", ""), gen("c", "sc")],
    );
    let after = profile(
        "P",
        true,
        &[gen("a", "sa"), log("b", "sa", "-t"), log("d", "sa", "")],
    );
    let cfg = write(&sb, "sup.toml", &before);
    let sup = Sup::start(sb, cfg.clone());
    let (a, b, c) = (
        sup.running_pid("a"),
        sup.running_pid("b"),
        sup.running_pid("c"),
    );
    // A bad edit is refused and changes nothing.
    std::fs::write(&cfg, after.replace("path =", "pth =")).expect("write");
    let out = sup.cli(&["reload"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sup.toml:") && err.contains("pth"), "{err}");
    assert_eq!(
        sup.status().iter().map(|r| r.pid).collect::<Vec<_>>(),
        [a, b, c]
    );

    std::fs::write(&cfg, &after).expect("write");
    let report = sup.cli_ok(&["reload"]);
    assert_eq!(
        report,
        "[RELOAD] Result:\nInserted modules:\t1\nRemoved modules:\t1\nModified modules:\t1\nUnmodified modules:\t1\n[RELOAD] Processing of the new configuration successfully finished.\n"
    );
    let d = sup.running_pid("d");
    let b2 = poll("b restarted", || {
        let r = sup.row("b");
        (r.running && r.pid != b).then_some(r.pid)
    });
    poll("c stopped", || (!process_alive(c)).then_some(()));
    let rows = sup.status();
    assert_eq!(
        rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["a", "b", "d"]
    );
    assert_eq!(sup.row("a").pid, a, "unmodified module keeps running");
    assert!(process_alive(a) && process_alive(b2) && process_alive(d));
    let cmdline = std::fs::read(format!("/proc/{b2}/cmdline")).expect("cmdline");
    assert!(cmdline.starts_with(b"b\0-t\0"), "new params: {cmdline:?}");

    // NEMEA's -r: reload without output (nothing changed now).
    let out = sup.cli(&["-r"]);
    assert!(out.status.success() && out.stdout.is_empty());
}

#[test]
fn stopping_the_supervisor_stops_every_module() {
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let mut sup = Sup::start(sb, cfg);
    let pids = [sup.running_pid("zwave"), sup.running_pid("zlog")];
    let out = sup.finish("-TERM");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pid in pids {
        assert!(!process_alive(pid), "module {pid} survived");
    }
    assert!(!Sup::socket(&sup.sb).exists());
}

#[test]
fn supervisor_restart_reattaches_running_modules() {
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let mut sup = Sup::start(sb, cfg);
    let pids = [sup.running_pid("zwave"), sup.running_pid("zlog")];
    // SIGINT stops only the supervisor (NEMEA's behaviour).
    let out = sup.finish("-INT");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pids.iter().all(|p| process_alive(*p)));
    let child = Sup::command(&sup.sb, &sup.config).spawn().expect("respawn");
    sup.child = Some(child);
    sup.wait_ready();
    assert_eq!(sup.row("zwave").pid, pids[0]);
    assert_eq!(sup.row("zlog").pid, pids[1]);
    // A re-attached module that dies is noticed and restarted.
    signal(pids[1], "-KILL");
    poll("zlog restarted", || {
        let r = sup.row("zlog");
        (r.running && r.pid != pids[1]).then_some(())
    });
    let new_zlog = sup.row("zlog").pid;
    sup.finish("-TERM");
    assert!(!process_alive(pids[0]) && !process_alive(new_zlog));
}

/// The same modules as `pipeline_config`, as NEMEA XML with includes.
fn pipeline_xml(sb: &Sandbox) -> PathBuf {
    let dir = sb.path("loggers");
    std::fs::create_dir(&dir).expect("mkdir");
    let logger = bin("logger").display().to_string();
    std::fs::write(
        dir.join("zlog.sup"),
        format!(
            "<module>\n  <name>zlog</name>\n  <enabled>true</enabled>\n  <path>{logger}</path>\n  <params>-t</params>\n  <trapinterfaces>\n    <interface>\n      <type>UNIXSOCKET</type>\n      <direction>IN</direction>\n      <params>zw</params>\n    </interface>\n  </trapinterfaces>\n</module>\n"
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("spare.sup"),
        format!(
            "<module>\n  <name>spare</name>\n  <enabled>false</enabled>\n  <path>{logger}</path>\n  <params></params>\n  <trapinterfaces>\n    <interface><type>UNIXSOCKET</type><direction>IN</direction><params>zw</params></interface>\n  </trapinterfaces>\n</module>\n"
        ),
    )
    .expect("write");
    std::fs::write(dir.join("ignored.txt"), "not xml").expect("write");
    std::fs::write(
        sb.path("zwave.sup"),
        format!(
            "<module>\n  <name>zwave</name>\n  <enabled>true</enabled>\n  <path>{}</path>\n  <params>-p 0.1</params>\n  <trapinterfaces>\n    <interface><type>UNIXSOCKET</type><direction>OUT</direction><params>zw</params></interface>\n  </trapinterfaces>\n</module>\n",
            bin("zwave_generator").display()
        ),
    )
    .expect("write");
    let template = format!(
        "<?xml version=\"1.0\"?>\n<nemea-supervisor>\n  <modules>\n    <name>Data sources</name>\n    <enabled>true</enabled>\n    <!-- include {} -->\n  </modules>\n  <modules>\n    <name>Loggers</name>\n    <enabled>true</enabled>\n    <!-- include {} -->\n  </modules>\n</nemea-supervisor>\n",
        sb.path("zwave.sup").display(),
        dir.display()
    );
    write(sb, "sup.xml", &template)
}

#[test]
fn xml_with_includes_runs_the_same_modules_as_toml() {
    let sb = Sup::sandbox();
    let toml = write(&sb, "sup.toml", &pipeline_config());
    let mut sup = Sup::start(sb, toml);
    sup.running_pid("zlog");
    let toml_config = sup.cli_ok(&["config"]);
    let toml_names: Vec<_> = sup
        .status()
        .into_iter()
        .map(|r| (r.name, r.enabled))
        .collect();
    sup.finish("-TERM");

    let sb = Sup::sandbox();
    let xml = pipeline_xml(&sb);
    let sup = Sup::start(sb, xml);
    sup.running_pid("zlog");
    sup.running_pid("zwave");
    // zlog.sup and spare.sup come in name order: spare first.
    let xml_rows = sup.status();
    let mut xml_names: Vec<_> = xml_rows.into_iter().map(|r| (r.name, r.enabled)).collect();
    xml_names.swap(1, 2);
    assert_eq!(xml_names, toml_names);
    let xml_config = sup.cli_ok(&["config"]);
    // The same lines, apart from the module indices.
    let norm = |s: &str| {
        let mut lines: Vec<String> = s
            .lines()
            .map(|l| match l.strip_prefix("   ") {
                Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .to_string(),
                _ => l.to_string(),
            })
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(norm(&xml_config), norm(&toml_config));
    assert!(
        xml_config.contains("      IFC 0:  IN; UNIXSOCKET; zw; none\n"),
        "{xml_config}"
    );
    poll("logger output", || {
        let t = std::fs::read_to_string(sup.sb.path("logs/modules_logs/zlog_stdout")).ok()?;
        t.contains("101,1,100").then_some(())
    });
}

fn start_fails(sb: &Sandbox, config: &Path) -> String {
    let child = Sup::command(sb, config).spawn().expect("spawn");
    let out = wait_output(child, Duration::from_secs(30), "supervisor");
    assert!(!out.status.success(), "a bad config was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configs_are_refused_naming_the_spot() {
    let sb = Sup::sandbox();
    let xml = pipeline_xml(&sb);
    let zlog = sb.path("loggers/zlog.sup");
    let good = std::fs::read_to_string(&zlog).expect("read");

    std::fs::write(
        &zlog,
        good.replace(
            "  <params>-t</params>\n",
            "  <params>-t</params>\n  <colour>red</colour>\n",
        ),
    )
    .expect("write");
    let err = start_fails(&sb, &xml);
    assert_eq!(
        err,
        format!(
            "supervisor: error: {}:6: unexpected element <colour> in <module>\n",
            zlog.display()
        )
    );

    std::fs::write(
        &zlog,
        good.replace(&format!("  <path>{}</path>\n", bin("logger").display()), ""),
    )
    .expect("write");
    let err = start_fails(&sb, &xml);
    assert!(
        err.contains("zlog.sup:1: module \"zlog\": missing <path>"),
        "{err}"
    );

    std::fs::write(
        &zlog,
        good.replace("<name>zlog</name>", "<name>zwave</name>"),
    )
    .expect("write");
    let err = start_fails(&sb, &xml);
    assert!(
        err.contains("zlog.sup:1: duplicate module name \"zwave\""),
        "{err}"
    );

    std::fs::write(&zlog, &good).expect("write");
    let missing = write(
        &sb,
        "bad.xml",
        "<nemea-supervisor>\n<!-- include /nonexistent/x.sup -->\n</nemea-supervisor>\n",
    );
    let err = start_fails(&sb, &missing);
    assert!(
        err.contains(
            "bad.xml:2: include /nonexistent/x.sup: neither a readable file nor a directory"
        ),
        "{err}"
    );

    let toml = write(
        &sb,
        "dup.toml",
        &(pipeline_config() + &profile("More", true, &[module("zlog", "logger", "", &[])])),
    );
    let err = start_fails(&sb, &toml);
    assert!(
        err.contains("profile More, module zlog: duplicate module name"),
        "{err}"
    );
    let toml = write(
        &sb,
        "unknown.toml",
        &pipeline_config().replace("params = \"-t\"", "parms = \"-t\""),
    );
    let err = start_fails(&sb, &toml);
    assert!(
        err.contains("unknown.toml:") && err.contains("unknown field `parms`"),
        "{err}"
    );
    // Nothing was started by any of these.
    assert!(!sb.path("logs/modules_events").exists());
}

#[test]
fn supcli_without_supervisor_fails_cleanly() {
    let sb = Sandbox::new();
    let out = sb
        .cmd("supcli")
        .args(["-s", "nosuch.sock", "status"])
        .output()
        .expect("run supcli");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("supcli: error: Could not connect to supervisor at nosuch.sock"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

/// Runs a shipped configuration with the binaries on PATH.
fn start_shipped(name: &str) -> Sup {
    let sb = Sup::sandbox();
    let path = format!(
        "{}:{}",
        nemea_rs::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let config = nemea_rs::repo_root().join("configs").join(name);
    let child = Sup::command(&sb, &config)
        .env("PATH", path)
        .spawn()
        .expect("spawn supervisor");
    let mut sup = Sup {
        sb,
        child: Some(child),
        config,
    };
    sup.wait_ready();
    sup
}

#[test]
fn shipped_profiles_run_in_both_formats() {
    let mut configs = Vec::new();
    for name in ["nemea-rs.toml", "supervisor_config_template.xml"] {
        let sup = start_shipped(name);
        for m in [
            "flow_repeater",
            "zwave_generator",
            "flow_logger",
            "zwave_logger",
        ] {
            sup.running_pid(m);
        }
        // All 1000 generated flows reach flow_logger through the repeater.
        let out = sup.sb.path("logs/modules_logs/flow_logger_stdout");
        poll("flows logged", || {
            let t = std::fs::read_to_string(&out).ok()?;
            (t.lines().count() == 1002).then_some(())
        });
        poll("zwave logged", || {
            let t = std::fs::read_to_string(sup.sb.path("logs/modules_logs/zwave_logger_stdout"))
                .ok()?;
            t.contains(",101,1,100\n").then_some(())
        });
        // The generator finished and is not restarted (module-restarts = 0).
        poll("flow_generator done", || {
            let r = sup.row("flow_generator");
            (!r.enabled && !r.running).then_some(())
        });
        configs.push(sup.cli_ok(&["config"]));
    }
    assert_eq!(configs[0], configs[1]);
    assert!(configs[0].contains("   1 | flow_repeater\n      PATH: traffic_repeater\n      PARAMS: -n\n      IFC 0:  IN; UNIXSOCKET; flow_data_source; none\n      IFC 1:  OUT; UNIXSOCKET; flow_copy; copy of the generated flows\n"), "{}", configs[0]);
}

fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    Some(text)
}

#[test]
fn metrics_serve_prometheus_text() {
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    // A free port (released just before the supervisor binds it).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Sup::command(&sb, &cfg)
        .args(["--metrics", &addr])
        .spawn()
        .expect("spawn supervisor");
    let mut sup = Sup {
        sb,
        child: Some(child),
        config: cfg,
    };
    sup.wait_ready();
    let text = poll("logger messages in metrics", || {
        let t = http_get(&addr)?;
        let line = t
            .lines()
            .find(|l| l.starts_with("nemea_input_messages_total{module=\"zlog\""))?;
        let n: u64 = line.rsplit(' ').next()?.parse().ok()?;
        (n > 0).then_some(t)
    });
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    assert!(text.contains("nemea_module_running{module=\"spare\",profile=\"Loggers\"} 0\n"));
    assert!(text.contains(
        "nemea_input_messages_total{module=\"zlog\",profile=\"Loggers\",ifc=\"0\",type=\"u\",id=\"zw\"} "
    ));
}

/// supcli without a command: NEMEA's menu, fed on stdin.
fn menu(sup: &Sup, input: &str) -> String {
    use std::io::Write;
    let mut child = sup
        .sb
        .cmd("supcli")
        .arg("-s")
        .arg(Sup::socket(&sup.sb))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn supcli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write menu input");
    let out = wait_output(child, Duration::from_secs(30), "supcli menu");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn configuration_mode_menu() {
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let mut sup = Sup::start(sb, cfg);
    let zlog = sup.running_pid("zlog");
    let out = menu(&sup, "4\n1\n2\nCquit\n");
    assert!(out.contains("1. ENABLE MODULE OR PROFILE\n"), "{out}");
    assert!(out.contains("--- [CONFIGURATION STATUS] ---\n"), "{out}");
    assert!(out.contains("   2 | spare\n[INTERACTIVE] Type in number or interval separated by comma (e.g. \"2,4-6,13\"): Module spare enabled.\n"), "{out}");
    let spare = sup.running_pid("spare");
    // Dstop: the daemon ends, the modules keep running.
    let out = menu(&sup, "Dstop\n");
    assert!(
        out.contains("[INFO] Supervisor stops; modules keep running.\n"),
        "{out}"
    );
    let child = sup.child.take().expect("supervisor");
    let st = wait_output(child, Duration::from_secs(30), "supervisor");
    assert!(st.status.success());
    assert!(process_alive(zlog) && process_alive(spare));
    // The next supervisor takes them over (and Drop stops them).
    sup.child = Some(Sup::command(&sup.sb, &sup.config).spawn().expect("respawn"));
    sup.wait_ready();
    assert_eq!(sup.row("spare").pid, spare);
    assert!(sup.row("spare").enabled);
}

/// The modules_events lines that tell of a restart or of giving up.
fn restart_events(events: &str) -> Vec<&str> {
    events.lines().filter(|l| l.contains("[RESTART]")).collect()
}

/// What a stopped module's status row says after NEMEA's last column.
fn reason(status: &str, name: &str) -> String {
    let row = status
        .lines()
        .find(|l| l.split('|').nth(1).is_some_and(|c| c.trim() == name))
        .unwrap_or_else(|| panic!("{name} not in {status}"));
    row.split('|').nth(5).unwrap_or("").trim().to_string()
}

#[test]
fn shipped_configs_start_without_restarts() {
    for name in [
        "nemea-rs.toml",
        "supervisor_config_template.xml",
        "detectors.toml",
        "stream-tools.toml",
    ] {
        // The chains that wait for flows on flow_data_source (no generator).
        let standalone = matches!(name, "detectors.toml" | "stream-tools.toml");
        let sup = start_shipped(name);
        // Every module that should run, runs.
        let should_run = |text: &str, r: &Row| {
            r.enabled && r.name != "flow_generator" && reason(text, &r.name) != "profile disabled"
        };
        poll("every enabled module running", || {
            let text = sup.cli_ok(&["status"]);
            parse_status(&text)
                .iter()
                .all(|r| r.running || !should_run(&text, r))
                .then_some(())
        });
        if !standalone {
            // The one-shot generator's run ended and flow_logger got every
            // flow through the repeater...
            let out = sup.sb.path("logs/modules_logs/flow_logger_stdout");
            poll("flows logged", || {
                let t = std::fs::read_to_string(&out).ok()?;
                (t.lines().count() == 1002).then_some(())
            });
        }
        // ...and a while later nothing has been restarted.
        std::thread::sleep(Duration::from_millis(1000));
        let events = sup.events();
        let restarts = restart_events(&events);
        let text = sup.cli_ok(&["status"]);
        if standalone {
            assert!(restarts.is_empty(), "{name}: {events}");
        }
        if name == "detectors.toml" {
            // The chains that need installed files ship disabled.
            assert_eq!(reason(&text, "ipblacklistfilter"), "profile disabled");
            assert_eq!(reason(&text, "miner_detector"), "profile disabled");
        } else if !standalone {
            // Only the generator ended, as configured (module-restarts = 0).
            assert_eq!(restarts.len(), 1, "{name}: {events}");
            assert!(
                restarts[0].contains("Module: flow_generator was restarted 0 times"),
                "{name}: {events}"
            );
            assert_eq!(
                reason(&text, "flow_generator"),
                "not restarted (module-restarts = 0); last run: exit status 0"
            );
        }
        let rows = parse_status(&text);
        assert!(rows.iter().filter(|r| r.running).count() >= 4, "{text}");
        for r in &rows {
            assert_eq!(r.running, should_run(&text, r), "{name}: {text}");
        }
    }
}

/// A module that ignores SIGINT (and whose children do too): only the
/// SIGKILL 0.5 s after the stop ends it.
fn stubborn() -> String {
    module(
        "stubborn",
        "sh",
        "-c 'trap \"\" INT; while :; do sleep 0.05; done'",
        &[],
    )
}

#[test]
fn start_stop_restart_return_once_done() {
    let sb = Sup::sandbox();
    let cfg = pipeline_config() + &profile("Slow", true, &[stubborn()]);
    let cfg = write(&sb, "sup.toml", &cfg);
    let sup = Sup::start(sb, cfg);
    let zlog = sup.running_pid("zlog");
    let stubborn = sup.running_pid("stubborn");
    // stop: the processes are gone when supcli returns.
    let out = sup.cli_ok(&["stop", "Loggers"]);
    assert_eq!(
        out,
        "Profile Loggers disabled.\nModule zlog stopped.\nModule spare stopped.\n"
    );
    assert!(!process_alive(zlog));
    assert!(!sup.row("zlog").running);
    // start: running, with its PID, when supcli returns.
    let out = sup.cli_ok(&["start", "Loggers"]);
    let pid: i32 = out
        .strip_prefix("Profile Loggers enabled.\nModule zlog started (PID ")
        .and_then(|r| r.strip_suffix(").\n"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(process_alive(pid));
    assert_eq!(sup.row("zlog").pid, pid);
    // restart: a new process.
    let out = sup.cli_ok(&["restart", "zlog"]);
    let new: i32 = out
        .strip_prefix("Module zlog restarted (PID ")
        .and_then(|r| r.strip_suffix(").\n"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(new != pid && process_alive(new) && !process_alive(pid));
    // A stop that takes longer than the timeout says so, in one line.
    let out = sup.cli(&["--timeout", "0.2", "stop", "stubborn"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("supcli: error: timed out after 0.2 s: stubborn still running (PID {stubborn})\n")
    );
    // The SIGKILL still follows.
    poll("stubborn killed", || {
        (!process_alive(stubborn)).then_some(())
    });
    // A module in a disabled profile is enabled but does not run: not waited for.
    sup.cli_ok(&["stop", "Loggers"]);
    let out = sup.cli_ok(&["start", "spare"]);
    assert_eq!(
        out,
        "Module spare enabled; its profile Loggers is disabled, so it does not run.\n"
    );
}

#[test]
fn status_says_why_a_module_is_not_running() {
    let sb = Sup::sandbox();
    let with = |m: String, line: &str| m.replace("params =", &format!("{line}\nparams ="));
    let cfg = profile(
        "P",
        true,
        &[
            with(
                module("ghost", "/no/such/binary", "", &[]),
                "module-restarts = 1",
            ),
            with(
                module("crashy", "sh", "-c 'exit 3'", &[]),
                "module-restarts = 1",
            ),
            with(
                module("once", "sh", "-c 'kill -9 $$'", &[]),
                "module-restarts = 0",
            ),
            with(
                module("off", "sh", "-c 'sleep 100'", &[]),
                "enabled = false",
            ),
            module("runs", "sh", "-c 'sleep 100'", &[]),
        ],
    );
    let cfg = write(&sb, "sup.toml", &cfg);
    let sup = Sup::start(sb, cfg);
    let runs = sup.running_pid("runs");
    let text = poll("three modules given up", || {
        let t = sup.cli_ok(&["status"]);
        (t.matches("limit reached").count() == 2 && t.contains("not restarted")).then_some(t)
    });
    assert_eq!(
        reason(&text, "ghost"),
        "restart limit reached (1 restart within a minute); binary missing: /no/such/binary does not exist"
    );
    assert_eq!(
        reason(&text, "crashy"),
        "restart limit reached (1 restart within a minute); last run: exit status 3"
    );
    assert_eq!(
        reason(&text, "once"),
        "not restarted (module-restarts = 0); last run: killed by SIGKILL"
    );
    // Disabled: the `enabled` column says it, the row is NEMEA's.
    assert_eq!(reason(&text, "off"), "");
    // A running row is NEMEA's: nothing after the last column.
    let row = text
        .lines()
        .find(|l| l.contains("| runs "))
        .expect("runs row");
    assert!(row.ends_with(&format!("| running | {runs} |")), "{text}");
    // The detailed status says it too.
    let v = sup.cli_ok(&["status", "-v"]);
    assert!(
        v.contains("| ghost | disabled | stopped | restart limit reached"),
        "{v}"
    );
    // Starting it again fails at once, saying why.
    let out = sup.cli(&["start", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "supcli: error: ghost did not start: binary missing: /no/such/binary does not exist\n"
    );
}

/// The process is gone (allowing for the last moments of its exit).
fn exited(pid: i32) -> bool {
    let start = Instant::now();
    while process_alive(pid) {
        if start.elapsed() > Duration::from_millis(200) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Ends a detached supervisor (by its PID) when a test fails half-way.
struct Detached(i32);

impl Drop for Detached {
    fn drop(&mut self) {
        if process_alive(self.0) {
            signal(self.0, "-TERM");
        }
    }
}

fn supervisor_pid(sb: &Sandbox) -> i32 {
    let log = std::fs::read_to_string(sb.path("logs/supervisor_log")).unwrap_or_default();
    log.lines()
        .rev()
        .find_map(|l| l.split("Supervisor started (PID ").nth(1))
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no PID in supervisor_log: {log}"))
}

#[test]
fn shutdown_stops_a_detached_supervisor() {
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let detach = |sb: &Sandbox| {
        let out = Sup::command(sb, &cfg)
            .arg("-d")
            .output()
            .expect("supervisor -d");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Detached(supervisor_pid(sb))
    };
    let mut sup = Sup {
        sb,
        child: None,
        config: cfg.clone(),
    };
    // --keep-modules (NEMEA's Dstop): the supervisor exits, the modules stay.
    let daemon = detach(&sup.sb);
    let pids = [sup.running_pid("zwave"), sup.running_pid("zlog")];
    let out = sup.cli_ok(&["shutdown", "--keep-modules"]);
    assert_eq!(out, "Supervisor stopped; modules keep running.\n");
    assert!(exited(daemon.0), "the supervisor still runs");
    assert!(pids.iter().all(|p| process_alive(*p)));
    // The next one re-attaches; shutdown stops it and every module.
    let daemon = detach(&sup.sb);
    assert_eq!(sup.row("zlog").pid, pids[1]);
    let out = sup.cli_ok(&["shutdown"]);
    assert_eq!(out, "Supervisor stopped; modules stopped.\n");
    assert!(exited(daemon.0), "the supervisor still runs");
    for pid in pids {
        assert!(!process_alive(pid), "module {pid} survived");
    }
    assert!(!Sup::socket(&sup.sb).exists());
    sup.child = None;
    // Nothing to talk to any more.
    let out = sup.cli(&["shutdown"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn default_socket_as_non_root_says_to_pass_s() {
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let root = nix_is_root();
    if root && !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipped: running as root without setpriv to drop to nobody");
        return;
    }
    // The sandbox must be usable by nobody.
    let _ = Command::new("chmod")
        .arg("0777")
        .arg(sb.dir.path())
        .status();
    for detach in [false, true] {
        let mut c = if root {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin("supervisor"));
            c
        } else {
            Command::new(bin("supervisor"))
        };
        c.current_dir(sb.dir.path())
            .env("TRAP_SOCKET_DIR", sb.dir.path())
            .arg("-T")
            .arg(&cfg)
            .arg("-L")
            .arg(sb.path("logs"))
            .stdin(Stdio::null());
        if detach {
            c.arg("-d");
        }
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn supervisor");
        let out = wait_output(child, Duration::from_secs(30), "supervisor");
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            eprintln!("skipped: the default socket is writable here");
            return;
        }
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("supervisor: error: cannot ")
                && err.contains("/var/run/nemea-supervisor")
                && err.ends_with(": Permission denied (os error 13); the default socket needs root: pass -s PATH (e.g. -s /tmp/nemea-supervisor.sock)\n"),
            "{err}"
        );
        assert_eq!(err.matches("Permission denied").count(), 1, "{err}");
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

// ---- Hardening (issue 16): bounded requests, connection caps, a second user ----

/// A field of /proc/PID/status (`Threads`, `VmRSS` in kB) as a number.
fn proc_field(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// Starts a supervisor with extra arguments, under `umask` when given.
fn start_with(sb: Sandbox, cfg: PathBuf, extra: &[&str], umask: Option<&str>) -> Sup {
    let plain = Sup::command(&sb, &cfg);
    let mut c = match umask {
        Some(mask) => {
            // The shell sets the umask and becomes the supervisor (same PID).
            let mut c = sb.cmd("supervisor");
            let mut sh = Command::new("/bin/sh");
            sh.arg("-c")
                .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
                .arg(c.get_program())
                .args(plain.get_args());
            for (k, v) in c.get_envs() {
                if let Some(v) = v {
                    sh.env(k, v);
                }
            }
            if let Some(d) = c.get_current_dir() {
                sh.current_dir(d);
            }
            c = sh;
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c
        }
        None => plain,
    };
    let child = c.args(extra).spawn().expect("spawn supervisor");
    let mut sup = Sup {
        sb,
        child: Some(child),
        config: cfg,
    };
    sup.wait_ready();
    sup
}

fn sup_pid(sup: &Sup) -> u32 {
    sup.child.as_ref().expect("running supervisor").id()
}

/// Writes `total` bytes of `a` without a newline until the peer refuses;
/// returns how many were written.
fn flood(w: &mut impl std::io::Write, total: usize) -> usize {
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0;
    while sent < total {
        match w.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    sent
}

/// Reads what comes until EOF, an error or `limit`.
fn read_some(r: &mut impl std::io::Read) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn metrics_bound_request_size_time_and_connections() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let addr = "127.0.0.1:23301";
    let sup = start_with(sb, cfg, &["--metrics", addr], None);
    let pid = sup_pid(&sup);
    poll("metrics", || {
        http_get(addr).filter(|t| t.starts_with("HTTP/1.0 200"))
    });
    // VmHWM: the peak, so memory taken and given back is seen too.
    let (rss0, threads0) = (proc_field(pid, "VmHWM"), proc_field(pid, "Threads"));

    // Headers beyond 8 KiB: 431, and the connection is closed.
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut req = b"GET /metrics HTTP/1.0\r\n".to_vec();
    while req.len() < 16 << 10 {
        req.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    c.write_all(&req).expect("write headers");
    let answer = read_some(&mut c);
    assert!(
        answer.starts_with("HTTP/1.0 431 "),
        "{}",
        &answer[..answer.len().min(200)]
    );

    // One 64 MiB line without a newline is cut off, memory stays flat.
    let mut c = TcpStream::connect(addr).expect("connect");
    let sent = flood(&mut c, 64 << 20);
    assert!(sent < 64 << 20, "the supervisor read all of a 64 MiB line");
    drop(c);
    let rss = proc_field(pid, "VmHWM");
    assert!(
        rss < rss0 + 16 * 1024,
        "peak RSS grew from {rss0} kB to {rss} kB"
    );

    // Slowloris: one byte a second never completes a request; the
    // supervisor closes the connection after its 5 s limit.
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_millis(900)))
        .expect("timeout");
    let start = Instant::now();
    let mut closed = false;
    for b in b"GET /metrics HTTP/1.0\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaa" {
        if slow.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match slow.read(&mut buf) {
            Ok(_) => {
                closed = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        if start.elapsed() > Duration::from_secs(12) {
            break;
        }
    }
    assert!(closed, "a dripping client kept its connection for 12 s");

    // 400 idle connections: a bounded number of threads.
    let conns: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect_timeout(&addr.parse().expect("addr"), DEADLINE).ok())
        .collect();
    assert!(conns.len() > 100, "only {} connections", conns.len());
    std::thread::sleep(Duration::from_millis(500));
    let threads = proc_field(pid, "Threads");
    assert!(
        threads <= threads0 + 20,
        "{} connections: {threads} threads (was {threads0})",
        conns.len()
    );
    drop(conns);
    // Once they are gone, requests are served again.
    poll("metrics after the flood", || {
        http_get(addr).filter(|t| t.starts_with("HTTP/1.0 200"))
    });
}

#[test]
fn control_socket_bounds_messages_and_clients() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let sb = Sup::sandbox();
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let sup = Sup::start(sb, cfg);
    let pid = sup_pid(&sup);
    let sock = Sup::socket(&sup.sb);
    sup.running_pid("zlog");
    // VmHWM: the peak, so memory taken and given back is seen too.
    let (rss0, threads0) = (proc_field(pid, "VmHWM"), proc_field(pid, "Threads"));

    // A 64 MiB request without a newline: refused with one line, memory flat.
    let mut c = UnixStream::connect(&sock).expect("connect");
    c.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let sent = flood(&mut c, 64 << 20);
    assert!(
        sent < 64 << 20,
        "the supervisor read all of a 64 MiB request"
    );
    let answer = read_some(&mut c);
    assert_eq!(answer, "[ERROR] Request longer than 64 KiB.\n");
    let rss = proc_field(pid, "VmHWM");
    assert!(
        rss < rss0 + 16 * 1024,
        "peak RSS grew from {rss0} kB to {rss} kB"
    );

    // A request dripped a byte a second is cut off after 5 s.
    let mut slow = UnixStream::connect(&sock).expect("connect");
    slow.set_read_timeout(Some(Duration::from_millis(900)))
        .expect("timeout");
    let start = Instant::now();
    let mut answer = None;
    for b in b"CMD\tstatus\txxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" {
        if slow.write_all(&[*b]).is_err() {
            // Closed by the supervisor between two bytes: its answer, if
            // any, is still there to read (a loaded machine can delay the
            // read below past the cut-off).
            let mut rest = Vec::new();
            let _ = slow.read_to_end(&mut rest);
            answer = Some(String::from_utf8_lossy(&rest).into_owned());
            break;
        }
        let mut buf = [0u8; 256];
        match slow.read(&mut buf) {
            Ok(n) => {
                answer = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                answer = Some(String::new());
                break;
            }
        }
        if start.elapsed() > Duration::from_secs(12) {
            break;
        }
    }
    let answer = answer.expect("a dripping client kept its connection for 12 s");
    assert_eq!(answer, "[ERROR] No complete request within 5 s.\n");

    // 200 idle clients: a bounded number of threads; a client beyond the
    // cap is told so at once.
    let conns: Vec<UnixStream> = (0..200)
        .filter_map(|_| UnixStream::connect(&sock).ok())
        .collect();
    assert_eq!(conns.len(), 200);
    std::thread::sleep(Duration::from_millis(300));
    let threads = proc_field(pid, "Threads");
    assert!(
        threads <= threads0 + 20,
        "200 clients: {threads} threads (was {threads0})"
    );
    // On a loaded machine the supervisor may still be accepting the flood
    // (a client in the backlog is not counted yet): ask until it says busy.
    let busy = "supcli: error: The supervisor is busy: 16 clients connected; try again later.\n";
    let start = Instant::now();
    loop {
        let out = sup.cli(&["status"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() == Some(1) && err == busy {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "200 idle clients, yet status answered ({}): {err}",
            out.status
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(conns);
    poll("status after the flood", || {
        sup.cli(&["status"]).status.success().then_some(())
    });
}

/// `setpriv` to run as nobody, or `None` (with the reason printed) when this
/// test cannot switch users; under `CI=true` setpriv is required.
fn setpriv() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let found = ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(p) = found else {
        assert!(
            !ci,
            "setpriv is missing (util-linux; required under CI=true)"
        );
        eprintln!("skipped: setpriv is missing (util-linux)");
        return None;
    };
    if !nix_is_root() {
        eprintln!("skipped: switching to another user (setpriv --reuid) needs root");
        return None;
    }
    Some(p)
}

/// supcli run as uid/gid 65534 (nobody) without supplementary groups.
fn cli_as(setpriv: &Path, gid: u32, sock: &Path, args: &[&str]) -> Output {
    let child = Command::new(setpriv)
        .args(["--reuid=65534", &format!("--regid={gid}"), "--clear-groups"])
        .arg(bin("supcli"))
        .arg("-s")
        .arg(sock)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn setpriv supcli");
    wait_output(child, Duration::from_secs(30), "supcli as nobody")
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_second_user_cannot_use_the_control_socket() {
    use std::os::unix::fs::PermissionsExt;
    let Some(setpriv) = setpriv() else { return };
    for umask in ["000", "022"] {
        let sb = Sup::sandbox();
        // nobody may pass through the sandbox, not list or write it.
        std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o711))
            .expect("chmod sandbox");
        let cfg = write(&sb, "sup.toml", &pipeline_config());
        let sup = start_with(sb, cfg, &[], Some(umask));
        let sock = Sup::socket(&sup.sb);
        let zlog = sup.running_pid("zlog");
        assert_eq!(mode(&sock), 0o600, "socket under umask {umask}");
        // Log directory and files: explicit modes, whatever the umask.
        let logs = sup.sb.path("logs");
        poll("module log files", || {
            sup.sb
                .path("logs/modules_logs/zlog_stderr")
                .exists()
                .then_some(())
        });
        for (p, want) in [
            (logs.clone(), 0o750),
            (logs.join("modules_logs"), 0o750),
            (logs.join("supervisor_log"), 0o640),
            (logs.join("modules_events"), 0o640),
            (logs.join("modules_statistics"), 0o640),
            (logs.join("modules_logs/zlog_stdout"), 0o640),
            (logs.join("modules_logs/zlog_stderr"), 0o640),
        ] {
            assert_eq!(mode(&p), want, "{} under umask {umask}", p.display());
        }
        for args in [&["stop", "Loggers"][..], &["status"], &["-x"]] {
            let out = cli_as(&setpriv, 65534, &sock, args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "nobody ran {args:?}: {err}");
            assert!(
                err.starts_with("supcli: error: Could not connect to supervisor at ")
                    && err.ends_with(": Permission denied (os error 13)\n"),
                "{err}"
            );
        }
        // Even through a socket made accessible by mistake, the peer's
        // credentials are checked on every connection.
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666))
            .expect("chmod socket");
        let out = cli_as(&setpriv, 65534, &sock, &["stop", "Loggers"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "supcli: error: Permission denied: uid 65534 may not control this supervisor (only root may).\n"
        );
        let events = sup.events();
        assert!(
            events.contains("[REFUSED] Client connection from uid 65534 gid 65534 (PID "),
            "{events}"
        );
        assert_eq!(sup.row("zlog").pid, zlog);
        assert!(sup.row("zlog").enabled);
    }
}

#[test]
fn a_control_group_admits_its_members_only() {
    let Some(setpriv) = setpriv() else { return };
    let group = std::fs::read_to_string("/etc/group").ok().and_then(|g| {
        g.lines()
            .find(|l| l.split(':').nth(2) == Some("65534"))
            .and_then(|l| l.split(':').next().map(str::to_string))
    });
    let Some(group) = group else {
        eprintln!("skipped: no group 65534 in /etc/group");
        return;
    };
    let sb = Sup::sandbox();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o711))
            .expect("chmod sandbox");
    }
    let cfg = write(&sb, "sup.toml", &pipeline_config());
    let sup = start_with(sb, cfg, &["--control-group", &group], Some("077"));
    let sock = Sup::socket(&sup.sb);
    sup.running_pid("zlog");
    assert_eq!(mode(&sock), 0o660);
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&sock).expect("stat").gid(), 65534);
    }
    // A member commands the supervisor.
    let out = cli_as(&setpriv, 65534, &sock, &["stop", "spare", "zlog"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!sup.row("zlog").enabled);
    // The same user in another group cannot connect.
    let out = cli_as(&setpriv, 1, &sock, &["start", "zlog"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).ends_with(": Permission denied (os error 13)\n"));
    assert!(!sup.row("zlog").enabled);
}
