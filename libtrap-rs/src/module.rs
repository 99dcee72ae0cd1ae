//! What every module shares: the `-i`/`-v` options, `-h trap`, signals and
//! the one-line error at exit.

use crate::log;
use std::fmt::Display;
use std::process::ExitCode;

/// libtrap's options, to `#[command(flatten)]` into a module's clap arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct TrapArgs {
    /// Interfaces: inputs first, then outputs, separated by `,`
    /// (u:NAME, f:FILE[:w|:a][:size=MB][:time=MIN], t:[HOST:]PORT, T:…TLS, j:SUBJECT, b:).
    /// Run with `-h trap` for the full syntax.
    #[arg(short = 'i', value_name = "IFC_SPEC")]
    pub ifc: String,
    /// More messages on stderr (-v, -vv, -vvv).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The text of `-h trap`.
pub const IFC_HELP: &str = "\
IFC_SPEC: the interfaces of a module, given with -i.

  -i IFC[,IFC...]    inputs first, then outputs, separated by commas;
                     parameters of one interface are separated by colons.

Interface types:
  u:NAME             unix socket $TRAP_SOCKET_DIR/trap-NAME.sock (default dir /tmp),
                     at most 107 bytes of path.
                     Output: the server; optional max_clients=N (<= 64),
                     buffer_size=BYTES, perm=MODE (default 0660, see below);
                     refuses a socket another live process serves (a stale
                     socket file is replaced, unless another user's).
                     Input: connects, reconnects when lost; optional
                     perm=MODE: accept a sender of another user.
  t:[HOST:]PORT      TCP; HOST is a name, an IPv4 address or an IPv6 address
                     in brackets (t:[::1]:7600).
                     Output: t:PORT listens on all IPv4 addresses (as libtrap);
                     t:HOST:PORT on that address only (t:[::]:PORT: IPv6 and
                     IPv4); optional max_clients=N (<= 64), buffer_size=BYTES.
                     Input: connects to HOST (default localhost), which
                     must resolve.
  T:[HOST:]PORT:KEYFILE:CERTFILE:CAFILE
                     TLS (1.2 or 1.3) over TCP, as t: otherwise; three PEM
                     files: this side's private key, its certificate (chain)
                     and the CAs the peer's certificate must be signed by.
                     Both sides verify each other: the output requires a
                     client certificate, the input checks the output's.
                     Host names in certificates are not checked (libtrap
                     does not either): the CA file decides whom to trust.
                     A peer that fails verification is refused with the
                     reason; an input whose peer does so stops with an error.
                     Output: T:PORT:KEY:CERT:CA[:max_clients=N]...
                     Input: T:HOST:PORT:KEY:CERT:CA or T:PORT:KEY:CERT:CA.
  f:PATH             file. Output: f:PATH[:w|:a][:size=MB][:time=MIN]
                       w        overwrite (default)
                       a        append: a new file PATH.00000, .00001, ... each run
                       size=MB  rotate after MB megabytes (<= 16777216):
                                PATH.00000, PATH.00001, ...
                       time=MIN rotate every MIN minutes (<= 525600):
                                PATH.YYYYmmddHHMM
                     PATH may contain strftime sequences (%Y, %m, ...); missing
                     directories are created.
                     Input: f:PATTERN, several files or globs separated by
                     spaces (f:\"rot.trapcap.*\"), read in order as one stream
                     (an end of stream is only allowed at the end of a file).
  b:                 blackhole output: discards everything.
  j:SUBJECT          NATS JetStream (not in libtrap): records kept by a nats-server -js
                     in a stream (file storage, created if missing), so a consumer
                     that stops resumes where it was. Options:
                       server=nats://HOST:PORT  (default nats://localhost:4222)
                       stream=NAME   (default NEMEA_<subject>)
                       user=U:password=P or creds=FILE; tls, ca=FILE (PEM)
                     Output: batches of up to batch=BYTES (100000; buffer=off: one
                     record each), autoflush (default 0.5 s), at most inflight=N
                     (16) awaiting the server's acknowledgement; flush, end of
                     stream and exit wait for every acknowledgement; republishes
                     (without duplicates) while the server is away.
                     Input: durable pull consumer durable=NAME (default
                     <program>_<subject>); a batch is acknowledged once the module
                     took all of it; ack_wait=SECONDS (5) before a dead module's
                     batch is delivered again.
  (libtrap's test generator g: is not supported.)

Common parameters (after the type-specific ones):
  timeout=WAIT|NO_WAIT|HALF_WAIT|MICROSECONDS
        input: how long recv waits (default WAIT = forever).
        output: WAIT blocks until every client takes the data (default);
        HALF_WAIT blocks only while a client is connected; NO_WAIT or a
        number never blocks and drops data a slow client cannot take.
  buffer=on|off      output: batch messages into containers (default on).
  autoflush=off|MICROSECONDS
                     socket output: send a partly filled container after
                     this idle time (default 2000000 = 2 s).
  (MICROSECONDS: at most 86400000000, a day.)

Unix socket permissions:
  Sockets (data and the service socket) are created 0660 whatever the umask.
  perm=MODE on a u: output, or TRAP_SOCKET_MODE=MODE in the environment for
  every socket of the module, sets another octal mode (0666: libtrap's).
  Given either way, the sockets are shared knowingly: only then does a u:
  input read from a socket served by another user (not root), and a u:
  output replace another user's stale socket file.

An input that cannot connect retries and says why: at once with -v, else
after 10 s; then every 30 s at most.

Examples:
  -i u:flow_data
  -i f:data.trapcap,u:out:buffer=off
  -i \"u:in:timeout=NO_WAIT,f:/data/flows.%Y%m%d:a:time=60\"
";

/// Handles `-h trap` / `-h 1` (libtrap's interface help) before the module
/// parses its arguments. Exits the process when it printed the help.
pub fn handle_trap_help() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "-h" || a == "--help") {
        if matches!(args.get(pos + 1).map(String::as_str), Some("trap" | "1")) {
            print!("{IFC_HELP}");
            std::process::exit(0);
        }
    }
}

/// Parses the module's arguments (after `-h trap`, see [`handle_trap_help`]).
/// `--help` and `--version` print as usual; a usage error is one line,
/// `program: error: <what clap says> (try --help)`, and exit status 2.
pub fn parse_args<A: clap::Parser>(program: &str) -> A {
    handle_trap_help();
    parse_cli(program)
}

/// [`parse_args`] for programs without TRAP interfaces (no `-h trap`):
/// the supervisor, supcli, bl_downloader, the capture generator.
pub fn parse_cli<A: clap::Parser>(program: &str) -> A {
    parse_cli_from(program, std::env::args_os())
}

/// [`parse_args`] of a command line the module amended (argv[0] first).
pub fn parse_args_from<A, I, T>(program: &str, args: I) -> A
where
    A: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    handle_trap_help();
    parse_cli_from(program, args)
}

fn parse_cli_from<A, I, T>(program: &str, args: I) -> A
where
    A: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    log::set_program_name(program);
    match A::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            eprintln!(
                "{program}: error: {}",
                usage_error_line(&e.render().to_string())
            );
            std::process::exit(2);
        }
    }
}

/// clap's error text as one line: the first paragraph without `error: `,
/// its lines joined, and clap's tip (a similar option...) when it gives one.
pub fn usage_error_line(rendered: &str) -> String {
    let mut paragraphs = rendered.split("\n\n").map(|p| {
        p.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    });
    let first = paragraphs.next().unwrap_or_default();
    let mut line = first
        .strip_prefix("error: ")
        .unwrap_or(&first)
        .trim_end_matches(':')
        .to_string();
    for p in paragraphs {
        if let Some(tip) = p.strip_prefix("tip: ") {
            line.push_str("; ");
            line.push_str(tip);
        }
    }
    line.push_str(" (try --help)");
    line
}

/// SIGINT/SIGTERM set the terminate flag (modules then flush and send
/// end-of-stream); a second signal exits at once with 130.
pub fn install_signal_handlers() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = crate::stop_flag();
    for sig in [SIGINT, SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone());
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
}

/// Common start-up: program name, verbosity, signals.
pub fn start(program: &str, args: &TrapArgs) {
    log::set_program_name(program);
    log::set_verbosity(args.verbose as i8 - 1);
    install_signal_handlers();
}

/// Turns a module's result into its exit status, printing an error as one
/// line: `program: error: ...`.
pub fn exit_status<E: Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: error: {e}", log::program_name());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(name = "demo")]
    struct Demo {
        #[command(flatten)]
        trap: TrapArgs,
        #[arg(short = 't', long = "title")]
        title: bool,
    }

    fn line(args: &[&str]) -> String {
        let e = Demo::try_parse_from(args).unwrap_err();
        usage_error_line(&e.render().to_string())
    }

    #[test]
    fn clap_errors_become_one_line() {
        assert_eq!(
            line(&["demo"]),
            "the following required arguments were not provided: -i <IFC_SPEC> (try --help)"
        );
        assert_eq!(
            line(&["demo", "-i", "u:x", "--titl"]),
            "unexpected argument '--titl' found; a similar argument exists: '--title' (try --help)"
        );
        assert_eq!(
            line(&["demo", "-i"]),
            "a value is required for '-i <IFC_SPEC>' but none was supplied (try --help)"
        );
        for args in [&["demo"][..], &["demo", "-i", "u:x", "-q"], &["demo", "-i"]] {
            assert!(!line(args).contains('\n'), "{args:?}");
        }
    }
}
