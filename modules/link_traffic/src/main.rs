//! link_traffic — per-link traffic counters on a unix socket for Munin.

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::records::{Next, Records};
use libtrap::Trap;
use link_traffic::{parse_config, LinkTraffic};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use unirec::{FieldType, Scalar, Template};

/// The C module's config file.
const DEFAULT_CONFIG: &str = "/etc/nemea/link_traffic/link_traff_conf.cfg";

/// Counts flows, packets and bytes per link (LINK_BIT_FIELD equal to a
/// configured VALUE) and direction (DIR_BIT_FIELD 0 = in, 1 = out), and
/// serves the counters on a unix socket for the Munin plugin
/// `link_traffic_` (configs/munin/). Each client gets a header line and a
/// value line, then the connection is closed. Stops at end of stream.
#[derive(Parser, Debug)]
#[command(
    name = "link_traffic",
    version,
    after_help = "Interfaces: 1 input (BYTES, LINK_BIT_FIELD, PACKETS, DIR_BIT_FIELD).\n\
Config lines: VALUE,NAME,UR_FIELD,COLOR (e.g. `1,uplink,LINK_BIT_FIELD,1e90ff`); # comments.\n\
Example: link_traffic -c links.cfg -i u:flow_data_source"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Report only the `in` counters.
    #[arg(short = 'd', long = "no-direction")]
    no_direction: bool,
    /// Links config [default: /etc/nemea/link_traffic/link_traff_conf.cfg; when
    /// it does not exist, every LINK_BIT_FIELD value seen is a link `link<VALUE>`].
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The statistics socket [default: $TRAP_SOCKET_DIR/munin_link_traffic,
    /// TRAP_SOCKET_DIR defaulting to /tmp; NEMEA's is /var/run/libtrap/munin_link_traffic].
    #[arg(short = 's', long = "socket", value_name = "PATH")]
    socket: Option<PathBuf>,
}

/// Offsets of the fields read, in the fixed part of a record.
struct Fields {
    bytes: usize,
    link: usize,
    packets: usize,
    dir: usize,
}

fn fields(t: &Template) -> Result<Fields> {
    let at = |name: &str, s: Scalar| {
        t.find_typed(name, FieldType::Scalar(s))
            .and_then(|i| t.field(i))
            .map(|f| f.offset())
            .ok_or_else(|| anyhow!("the input has no `{} {name}` (it needs uint64 BYTES, uint64 LINK_BIT_FIELD, uint32 PACKETS, uint8 DIR_BIT_FIELD)", s.name()))
    };
    Ok(Fields {
        bytes: at("BYTES", Scalar::U64)?,
        link: at("LINK_BIT_FIELD", Scalar::U64)?,
        packets: at("PACKETS", Scalar::U32)?,
        dir: at("DIR_BIT_FIELD", Scalar::U8)?,
    })
}

fn run(args: &Args) -> Result<()> {
    let (links, discover) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config {}", path.display()))?;
            (
                parse_config(&text).with_context(|| format!("config {}", path.display()))?,
                false,
            )
        }
        None => match std::fs::read_to_string(DEFAULT_CONFIG) {
            Ok(text) => (
                parse_config(&text).with_context(|| format!("config {DEFAULT_CONFIG}"))?,
                false,
            ),
            Err(_) => {
                libtrap::log::note(&format!("no {DEFAULT_CONFIG} (and no -c): every LINK_BIT_FIELD value is a link `link<VALUE>`"));
                (Vec::new(), true)
            }
        },
    };
    let mut stats = LinkTraffic::new(links, args.no_direction, discover);
    let shared = Arc::new(Mutex::new(stats.clone()));
    let view = shared.clone();
    let path = args
        .socket
        .clone()
        .unwrap_or_else(|| munin_socket::default_path("munin_link_traffic"));
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(0))?;
    let _server = munin_socket::Server::start(
        &path,
        Arc::new(move || view.lock().map(|s| s.report()).unwrap_or_default()),
    )?;
    let input = &mut trap.inputs()[0];
    let mut records = Records::new();
    let result = loop {
        let (rec, f) = match records.next(input, fields) {
            Ok(Next::Record { rec, layout, .. }) => (rec, layout),
            Ok(Next::Timeout | Next::Skipped) => continue,
            Ok(Next::End) => break Ok(()),
            Err(e) => break Err(e),
        };
        stats.add(
            u64::from_le_bytes(rec.fixed(f.link)),
            rec.fixed::<1>(f.dir)[0],
            u64::from_le_bytes(rec.fixed(f.bytes)),
            u32::from_le_bytes(rec.fixed(f.packets)),
        );
        if !input.has_buffered() {
            if let Ok(mut s) = shared.lock() {
                s.clone_from(&stats);
            }
        }
    };
    drop(trap);
    Ok(result?)
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("link_traffic");
    module::start("link_traffic", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
