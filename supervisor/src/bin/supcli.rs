//! supcli — the client of the NEMEA supervisor.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use supervisor::proto::{self, Request, DEFAULT_SOCKET};

/// Asks a running supervisor for status and counters, or tells it to
/// reload, start, stop or restart modules. NEMEA's flags `-x` (statistics
/// JSON), `-i` (information JSON) and `-r` (reload) work as in supervisor_cli;
/// without a command it enters NEMEA's interactive configuration mode.
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
        out.write_all(proto::send(&args.socket, &req)?.as_bytes())?;
        return Ok(0);
    }
    let Some(cmd) = args.cmd else {
        return configuration_mode(&args.socket);
    };
    let color = out.is_terminal();
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
        Cmd::Start { names } => ext("start", names),
        Cmd::Stop { names } => ext("stop", names),
        Cmd::Restart { names } => ext("restart", names),
        Cmd::Enable { names } => ext("enable", names),
        Cmd::Disable { names } => ext("disable", names),
    };
    let answer = proto::send(&args.socket, &req)?;
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
    let printer = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut out = std::io::stdout();
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                break;
            }
        }
    });
    let mut conn_w = &conn;
    conn_w.write_all(Request::ConfigMode.line().as_bytes())?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        match line.trim() {
            "Cquit" => break,
            "Dstop" => {
                for _ in 0..3 {
                    conn_w.write_all(b"0\n")?;
                }
                break;
            }
            _ => {
                conn_w.write_all(line.as_bytes())?;
                conn_w.write_all(b"\n")?;
            }
        }
    }
    // The daemon answers what was sent, then sees the end and closes.
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let _ = printer.join();
    println!();
    Ok(0)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("supcli: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
