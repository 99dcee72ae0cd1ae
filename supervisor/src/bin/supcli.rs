//! supcli — the client of the NEMEA supervisor.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use supervisor::proto::{self, Request, DEFAULT_SOCKET};

/// Asks a running supervisor for status and counters, or tells it to
/// reload, start, stop or restart modules, or to shut down. NEMEA's flags
/// `-x` (statistics JSON), `-i` (information JSON) and `-r` (reload) work as
/// in supervisor_cli; without a command it enters NEMEA's interactive
/// configuration mode. start/stop/restart/enable/disable and shutdown return
/// once the change is done, or fail after --timeout.
#[derive(Parser, Debug)]
#[command(name = "supcli", version)]
struct Args {
    /// Supervisor socket.
    #[arg(short = 's', long = "socket", value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print module statistics JSON and exit.
    #[arg(short = 'x', conflicts_with_all = ["info", "reload"])]
    stats: bool,
    /// Print module information JSON and exit.
    #[arg(short = 'i', conflicts_with = "reload")]
    info: bool,
    /// Ask the supervisor to reload its configuration and exit.
    #[arg(short = 'r')]
    reload: bool,
    /// Seconds start/stop/restart/enable/disable and shutdown wait for the
    /// change (0: do not wait, answer at once).
    #[arg(short = 't', long = "timeout", value_name = "SECS", default_value = "5", value_parser = parse_secs)]
    timeout: Duration,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// The status table (-v: detailed, with interfaces).
    Status {
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
    },
    /// Counters of the running modules (JSON).
    Stats,
    /// Every module with path, params, status and counters (JSON).
    Info,
    /// Reload the configuration and print what changed.
    Reload,
    /// The loaded configuration.
    Config,
    /// Supervisor information (version, paths, counts).
    About,
    /// Enable and start modules or profiles.
    Start { names: Vec<String> },
    /// Disable and stop modules or profiles.
    Stop { names: Vec<String> },
    /// Restart modules (or the running modules of profiles).
    Restart { names: Vec<String> },
    /// Same as start.
    Enable { names: Vec<String> },
    /// Same as stop.
    Disable { names: Vec<String> },
    /// Stop the modules and the supervisor; returns once it has exited.
    Shutdown {
        /// Stop only the supervisor and leave the modules running (NEMEA's
        /// `Dstop`); the next supervisor with the same config and log
        /// directory re-attaches to them.
        #[arg(long = "keep-modules")]
        keep_modules: bool,
    },
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=86_400.0).contains(v))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{s}` is not a number of seconds (0 to 86400)"))
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.1}", d.as_secs_f64())
    }
}

/// `supcli shutdown`: the daemon answers at once and keeps the connection
/// until its process exits, modules stopped.
fn shutdown(socket: &std::path::Path, keep: bool, limit: Duration) -> Result<i32> {
    let args = if keep {
        vec![proto::KEEP_MODULES.to_string()]
    } else {
        vec![]
    };
    // Some time for the answer itself even with --timeout 0.
    let limit = limit.max(Duration::from_millis(100));
    match proto::send_within(socket, &ext("shutdown", args), limit) {
        Ok(answer) => {
            let (code, text) = proto::split_answer(&answer);
            if code != 0 {
                eprint!("supcli: error: {text}");
                return Ok(code);
            }
            if answer.is_empty() {
                bail!("the supervisor closed the connection without an answer (an older version?)");
            }
            println!(
                "Supervisor stopped; {}.",
                if keep {
                    "modules keep running"
                } else {
                    "modules stopped"
                }
            );
            Ok(0)
        }
        Err(supervisor::ClientError::TimedOut(_)) => bail!(
            "timed out after {} s: the supervisor is still running",
            secs(limit)
        ),
        Err(e) => Err(e.into()),
    }
}

fn ext(verb: &str, args: Vec<String>) -> Request {
    Request::Cmd(verb.into(), args)
}

fn run(args: Args) -> Result<i32> {
    let flags = [args.stats, args.info, args.reload];
    if args.cmd.is_some() && flags.iter().any(|f| *f) {
        bail!("give either -x, -i, -r or a command, not both");
    }
    let mut out = std::io::stdout();
    if args.stats || args.info || args.reload {
        let req = if args.stats {
            Request::Stats
        } else if args.info {
            Request::Info
        } else {
            Request::Reload
        };
        let answer = proto::send(&args.socket, &req)?;
        if let Some(why) = proto::refusal(&answer) {
            bail!("{}", why.trim_end());
        }
        out.write_all(answer.as_bytes())?;
        return Ok(0);
    }
    let Some(cmd) = args.cmd else {
        return configuration_mode(&args.socket);
    };
    let color = out.is_terminal();
    let waiting = |mut names: Vec<String>| {
        if !args.timeout.is_zero() {
            names.insert(0, proto::wait_arg(args.timeout));
        }
        names
    };
    let req = match cmd {
        Cmd::Status { verbose } => ext(
            "status",
            [verbose.then_some("-v"), color.then_some("color")]
                .into_iter()
                .flatten()
                .map(String::from)
                .collect(),
        ),
        Cmd::Stats => ext("stats", vec![]),
        Cmd::Info => ext("info", vec![]),
        Cmd::Reload => ext("reload", vec![]),
        Cmd::Config => ext("config", vec![]),
        Cmd::About => ext("about", vec![]),
        Cmd::Start { names } => ext("start", waiting(names)),
        Cmd::Stop { names } => ext("stop", waiting(names)),
        Cmd::Restart { names } => ext("restart", waiting(names)),
        Cmd::Enable { names } => ext("enable", waiting(names)),
        Cmd::Disable { names } => ext("disable", waiting(names)),
        Cmd::Shutdown { keep_modules } => {
            return shutdown(&args.socket, keep_modules, args.timeout)
        }
    };
    // The daemon gives up waiting at --timeout; allow for the answer itself.
    let answer = proto::send_within(&args.socket, &req, args.timeout + Duration::from_secs(30))?;
    let (code, text) = proto::split_answer(&answer);
    if code == 0 {
        out.write_all(text.as_bytes())?;
    } else {
        eprint!("supcli: error: {text}");
    }
    Ok(code)
}

/// NEMEA's configuration mode: the daemon's menu on this terminal. `Cquit`
/// (or end of input) leaves; `Dstop` stops the daemon, modules keep running.
fn configuration_mode(socket: &std::path::Path) -> Result<i32> {
    use std::io::{BufRead, Read};
    let conn = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
        supervisor::ClientError::Connect {
            path: socket.to_path_buf(),
            cause: e,
        }
    })?;
    let mut reader = conn.try_clone()?;
    // The menu, or one `[ERROR] …` line when the daemon turns us away.
    let printer = std::thread::spawn(move || -> Option<String> {
        let mut buf = [0u8; 4096];
        let mut out = std::io::stdout();
        let mut first = true;
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n]);
            if first {
                if let Some(why) = proto::refusal(&text) {
                    return Some(why.trim_end().to_string());
                }
            }
            first = false;
            if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                break;
            }
        }
        None
    });
    let mut conn_w = &conn;
    // Turned away, the daemon may close before reading: its answer says why.
    let _ = conn_w.write_all(Request::ConfigMode.line().as_bytes());
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        match line.trim() {
            "Cquit" => break,
            "Dstop" => {
                let _ = conn_w.write_all(b"0\n0\n0\n");
                break;
            }
            _ => {
                let mut l = line.into_bytes();
                l.push(b'\n');
                // A closed connection: the printer has the daemon's last word.
                if conn_w.write_all(&l).is_err() {
                    break;
                }
            }
        }
    }
    // The daemon answers what was sent, then sees the end and closes.
    let _ = conn.shutdown(std::net::Shutdown::Write);
    if let Ok(Some(why)) = printer.join() {
        bail!("{why}");
    }
    println!();
    Ok(0)
}

fn main() -> ExitCode {
    match run(libtrap::module::parse_cli::<Args>("supcli")) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("supcli: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every long option (and visible alias) uses hyphens, never `_`.
    fn check(cmd: &clap::Command) {
        for a in cmd.get_arguments() {
            for long in a
                .get_long()
                .into_iter()
                .chain(a.get_visible_aliases().into_iter().flatten())
            {
                assert!(!long.contains('_'), "{}: --{long}", cmd.get_name());
            }
        }
        for sub in cmd.get_subcommands() {
            assert!(!sub.get_name().contains('_'), "{}", sub.get_name());
            check(sub);
        }
    }

    #[test]
    fn long_options_use_hyphens() {
        Args::command().debug_assert();
        check(&Args::command());
    }

    #[test]
    fn timeout_is_seconds() {
        assert_eq!(parse_secs("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_secs("0"), Ok(Duration::ZERO));
        assert!(
            parse_secs("-1").is_err() && parse_secs("x").is_err() && parse_secs("inf").is_err()
        );
        assert_eq!(secs(Duration::from_millis(2500)), "2.5");
        assert_eq!(secs(Duration::from_secs(5)), "5");
    }
}
