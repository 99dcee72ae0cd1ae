//! supervisor — runs NEMEA modules from a configuration of profiles.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use supervisor::daemon::{self, Options};
use supervisor::proto::DEFAULT_SOCKET;

/// Starts every enabled module of every enabled profile, restarts modules
/// that exit (up to the per-minute limit), collects their interface counters
/// and serves `supcli` on a unix socket. SIGTERM stops the modules and the
/// supervisor; SIGINT/SIGQUIT stop only the supervisor (modules keep running
/// and are re-attached by the next start); SIGHUP reloads the configuration.
#[derive(Parser, Debug)]
#[command(name = "supervisor", version)]
struct Args {
    /// Configuration: NEMEA XML template (with `<!-- include PATH -->`
    /// lines) or native TOML (`.toml`).
    #[arg(short = 'T', long = "config-template", value_name = "FILE")]
    config: PathBuf,
    /// Log directory (supervisor_log, modules_events, modules_statistics,
    /// modules_logs/).
    #[arg(short = 'L', long = "logs-path", value_name = "DIR")]
    logs: PathBuf,
    /// Detach into the background once the client socket is ready.
    #[arg(short = 'd', long = "daemon")]
    daemon: bool,
    /// Client socket.
    #[arg(short = 's', long = "daemon-socket", value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Directory to write the generated XML (supervisor_config_gener.xml) to.
    #[arg(short = 'C', long = "configs-path", value_name = "DIR")]
    configs: Option<PathBuf>,
    /// Serve the modules' counters in Prometheus text format on this
    /// address (e.g. 127.0.0.1:9188), at any path.
    #[arg(long = "metrics", value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Serve a live status page on this address (e.g. 127.0.0.1:9189): the
    /// status table with restarts, CPU and memory, per-interface message
    /// rates and a plot of each module's records/s over the last 5 minutes;
    /// the same data as JSON at /api/status and /api/history, the metrics
    /// text at /metrics. Read-only unless --http-control is given.
    #[arg(long = "http", value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// Show start/stop/restart buttons on the status page and accept its
    /// POST /api/{start,stop,restart}/NAME requests (refused with 403
    /// otherwise). Anyone who can reach --http ADDR can then control the
    /// modules: bind it to a loopback or management address.
    #[arg(long = "http-control", requires = "http")]
    http_control: bool,
    /// Also let the members of this group (name or number) use the client
    /// socket (then mode 0660, owned by the group); otherwise only root and
    /// the supervisor's own user may (mode 0600).
    #[arg(long = "control-group", value_name = "GROUP")]
    control_group: Option<String>,
}

const DETACHED: &str = "NEMEA_SUPERVISOR_DETACHED";

/// Re-runs this program in the background and waits until it serves.
fn detach(args: &Args) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find own executable")?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(DETACHED, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the daemon")?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Some(status) = child.try_wait()? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            // The daemon's own one-line error says why; pass it on as it is.
            let err = err.trim();
            match err.strip_prefix("supervisor: error: ") {
                Some(why) if !why.contains('\n') => bail!("{why}"),
                _ if err.is_empty() => bail!("the daemon exited ({status})"),
                _ => bail!("the daemon exited ({status}): {}", err.replace('\n', " ")),
            }
        }
        if std::os::unix::net::UnixStream::connect(&args.socket).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("daemon did not open {} in time", args.socket.display())
}

fn run(args: Args) -> Result<()> {
    if args.daemon && std::env::var_os(DETACHED).is_none() {
        return detach(&args);
    }
    if std::env::var_os(DETACHED).is_some() {
        // Leave the caller's session; failure only means we already lead one.
        let _ = nix::unistd::setsid();
    }
    let logs = std::path::absolute(&args.logs).unwrap_or(args.logs);
    let config = std::path::absolute(&args.config).unwrap_or(args.config);
    daemon::run(Options {
        config,
        logs,
        socket: args.socket,
        configs_dir: args.configs,
        metrics: args.metrics,
        http: args.http,
        http_control: args.http_control,
        control_group: args.control_group,
    })?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = libtrap::module::parse_cli("supervisor");
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("supervisor: error: {e:#}");
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
    fn nemea_long_options_parse() {
        // NEMEA's spellings (getopt_long, `--opt=value`) are ours.
        let a = Args::try_parse_from([
            "supervisor",
            "--config-template=sup.xml",
            "--logs-path=/tmp/l",
            "--daemon-socket=/tmp/s.sock",
            "--configs-path=/tmp/c",
            "--daemon",
        ])
        .expect("NEMEA's options");
        assert!(a.daemon);
        assert_eq!(a.socket, PathBuf::from("/tmp/s.sock"));
        assert_eq!(a.configs, Some(PathBuf::from("/tmp/c")));
    }
}
