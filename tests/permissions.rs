//! Unix sockets do not admit other local users: data and service sockets
//! are created 0660 whatever the umask, and a socket another user squatted
//! in a shared directory is neither read from nor replaced, unless the mode
//! was chosen knowingly (`perm=`, `TRAP_SOCKET_MODE`).
//!
//! The second user is `nobody` (uid 65534) via `setpriv`; without setpriv
//! (or without root, which setpriv needs) the tests are skipped with a
//! printed reason, except under `CI=true`.

use nemea_rs::{bin, interrupt, ok_stdout, wait_output, Sandbox};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NOBODY: &str = "65534";

/// Whether another user can be played here; prints why not.
fn can_switch_user() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    let root = nix_uid() == 0;
    let why = match (setpriv, root) {
        (true, true) => return true,
        (false, _) => "setpriv (util-linux) is missing",
        (true, false) => "not root: setpriv cannot switch to user nobody",
    };
    assert!(!ci, "{why} (required under CI=true)");
    eprintln!("skipped: {why}");
    false
}

fn nix_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// A sandbox shared like /tmp (1777), so that only the sockets' own modes
/// keep user nobody out.
fn shared_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(sb.path("x.csv"), "uint32 A\n1\n2\n3\n").unwrap();
    sb
}

/// `module ARGS` in the sandbox as user nobody.
fn as_nobody(sb: &Sandbox, module: &str, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
    ])
    .arg(bin(module))
    .args(args)
    .current_dir(sb.dir.path())
    .env("TRAP_SOCKET_DIR", sb.dir.path())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

/// `module ARGS` in the sandbox under `umask MASK` (as this user).
fn under_umask(sb: &Sandbox, mask: &str, module: &str, args: &[&str]) -> Child {
    Command::new("sh")
        .current_dir(sb.dir.path())
        .env("TRAP_SOCKET_DIR", sb.dir.path())
        .arg("-c")
        .arg(format!("umask {mask}; exec \"$0\" \"$@\""))
        .arg(bin(module))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Lets `child` try for 1.5 s, stops it and returns what it did.
fn after_a_while(child: Child) -> Output {
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(&child);
    wait_output(child, Duration::from_secs(10), "nobody's logger")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn another_user_cannot_connect_to_data_or_service_sockets_under_any_umask() {
    if !can_switch_user() {
        return;
    }
    for mask in ["000", "022", "077"] {
        let sb = shared_sandbox();
        let name = format!("perm{mask}");
        let replay = under_umask(
            &sb,
            mask,
            "logreplay",
            &["-f", "x.csv", "-i", &format!("u:{name}")],
        );
        let data = sb.path(&format!("trap-{name}.sock"));
        let service_name = format!("service_{}", replay.id());
        let service = sb.path(&format!("trap-{service_name}.sock"));
        wait_for(&data);
        wait_for(&service);
        // logger is the probe: `-v` prints why it cannot connect.
        for target in [&name, &service_name] {
            let spec = format!("u:{target}");
            let o = after_a_while(
                as_nobody(&sb, "logger", &["-v", "-i", &spec])
                    .spawn()
                    .unwrap(),
            );
            assert!(
                stderr(&o).contains("Permission denied; retrying"),
                "umask {mask}: nobody reached {spec}: {}",
                stderr(&o)
            );
            assert!(o.stdout.is_empty());
        }
        assert_eq!(mode(&data), 0o660, "umask {mask}: data socket");
        assert_eq!(mode(&service), 0o660, "umask {mask}: service socket");
        // The owner's reader gets everything.
        let text = ok_stdout(&sb.run("logger", &["-i", &format!("u:{name}")]), "logger");
        assert_eq!(text, "1\n2\n3\n");
        ok_stdout(
            &wait_output(replay, Duration::from_secs(10), "logreplay"),
            "logreplay",
        );
    }
}

#[test]
fn the_mode_can_be_opened_knowingly() {
    if !can_switch_user() {
        return;
    }
    let sb = shared_sandbox();
    // perm= on the output, TRAP_SOCKET_MODE for every socket of a module.
    let by_param = under_umask(
        &sb,
        "077",
        "logreplay",
        &["-f", "x.csv", "-i", "u:open1:perm=0666"],
    );
    let by_env = sb
        .cmd("logreplay")
        .args(["-f", "x.csv", "-i", "u:open2"])
        .env("TRAP_SOCKET_MODE", "0666")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let service = sb.path(&format!("trap-service_{}.sock", by_env.id()));
    wait_for(&service);
    assert_eq!(
        mode(&service),
        0o666,
        "TRAP_SOCKET_MODE sets the service socket too"
    );
    for (name, child) in [("open1", by_param), ("open2", by_env)] {
        let path = sb.path(&format!("trap-{name}.sock"));
        wait_for(&path);
        assert_eq!(mode(&path), 0o666);
        let o = as_nobody(&sb, "logger", &["-i", &format!("u:{name}")])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "1\n2\n3\n",
            "{}",
            stderr(&o)
        );
        ok_stdout(
            &wait_output(child, Duration::from_secs(10), "logreplay"),
            "logreplay",
        );
    }
}

#[test]
fn a_socket_squatted_by_another_user_is_not_read_nor_replaced() {
    if !can_switch_user() {
        return;
    }
    let sb = shared_sandbox();
    // nobody serves the name a root pipeline expects.
    let squatter = as_nobody(&sb, "logreplay", &["-f", "x.csv", "-i", "u:squat"])
        .spawn()
        .unwrap();
    let path = sb.path("trap-squat.sock");
    wait_for(&path);
    std::thread::sleep(Duration::from_millis(200));
    let o = sb.run("logger", &["-i", "u:squat"]);
    assert_eq!(
        stderr(&o),
        format!(
            "logger: error: u:squat: {} is served by process {} of user nobody (uid 65534), \
             neither this user nor root: not reading its records (a socket squatted in a \
             shared directory?); give the input perm=MODE or set TRAP_SOCKET_MODE to accept \
             other users' senders\n",
            path.display(),
            squatter.id()
        )
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    // The refused reader was connected for a moment, and a TRAP server does
    // not wait for a client's answer to its hello: a squatter scheduled in
    // that moment may have sent it everything and gone. A second squatter
    // serves the reader that accepts it knowingly.
    let _ = Command::new("kill")
        .args(["-9", &squatter.id().to_string()])
        .status();
    let _ = wait_output(squatter, Duration::from_secs(10), "squatter");
    let squatter = as_nobody(&sb, "logreplay", &["-f", "x.csv", "-i", "u:squat2"])
        .spawn()
        .unwrap();
    wait_for(&sb.path("trap-squat2.sock"));
    // Knowingly shared: read.
    let text = ok_stdout(&sb.run("logger", &["-i", "u:squat2:perm=0660"]), "logger");
    assert_eq!(text, "1\n2\n3\n");
    ok_stdout(
        &wait_output(squatter, Duration::from_secs(10), "squatter"),
        "squatter",
    );

    // A stale socket nobody left (its process killed) is not replaced.
    let stale = as_nobody(&sb, "logreplay", &["-f", "x.csv", "-i", "u:stale"])
        .spawn()
        .unwrap();
    let path = sb.path("trap-stale.sock");
    wait_for(&path);
    let _ = Command::new("kill")
        .args(["-9", &stale.id().to_string()])
        .status();
    let _ = wait_output(stale, Duration::from_secs(10), "killed squatter");
    assert!(path.exists());
    let o = sb.run("logreplay", &["-f", "x.csv", "-i", "u:stale"]);
    assert_eq!(
        stderr(&o),
        format!(
            "logreplay: error: u:stale: {} is a socket of user nobody (uid 65534), not \
             replaced (left or placed there by someone else?): remove it, pick another name, \
             or give perm=MODE or TRAP_SOCKET_MODE to share sockets between users\n",
            path.display()
        )
    );
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), 65534);
    // With the mode chosen knowingly it is replaced.
    let replay = sb
        .cmd("logreplay")
        .args(["-f", "x.csv", "-i", "u:stale"])
        .env("TRAP_SOCKET_MODE", "0660")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = ok_stdout(&sb.run("logger", &["-i", "u:stale"]), "logger");
    assert_eq!(text, "1\n2\n3\n");
    ok_stdout(
        &wait_output(replay, Duration::from_secs(10), "logreplay"),
        "logreplay",
    );
}
