//! proto_traffic — per-protocol traffic counters on a unix socket for Munin.

use anyhow::{anyhow, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::records::{Next, Records};
use libtrap::Trap;
use proto_traffic::ProtoTraffic;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use unirec::{FieldType, Scalar, Template};

/// Counts flows, packets and bytes per L4 protocol (icmp, tcp, udp, icmp6,
/// esp, gre, sctp, others) and serves the counters on a unix socket for the
/// Munin plugin `proto_traffic_` (configs/munin/). Each client gets a header
/// line and a value line, then the connection is closed. Stops at end of
/// stream.
#[derive(Parser, Debug)]
#[command(
    name = "proto_traffic",
    version,
    after_help = "Interfaces: 1 input (PROTOCOL, BYTES, PACKETS).\n\
Example: proto_traffic -i u:flow_data_source"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// The statistics socket [default: $TRAP_SOCKET_DIR/munin_proto_traffic,
    /// TRAP_SOCKET_DIR defaulting to /tmp; NEMEA's is /var/run/libtrap/munin_proto_traffic].
    #[arg(short = 's', long = "socket", value_name = "PATH")]
    socket: Option<PathBuf>,
}

/// Offsets of the fields read, in the fixed part of a record.
struct Fields {
    protocol: usize,
    bytes: usize,
    packets: usize,
}

fn fields(t: &Template) -> Result<Fields> {
    let at = |name: &str, s: Scalar| {
        t.find_typed(name, FieldType::Scalar(s))
            .and_then(|i| t.field(i))
            .map(|f| f.offset())
            .ok_or_else(|| anyhow!("the input has no `{} {name}` (it needs uint8 PROTOCOL, uint64 BYTES, uint32 PACKETS)", s.name()))
    };
    Ok(Fields {
        protocol: at("PROTOCOL", Scalar::U8)?,
        bytes: at("BYTES", Scalar::U64)?,
        packets: at("PACKETS", Scalar::U32)?,
    })
}

fn run(args: &Args) -> Result<()> {
    let mut stats = ProtoTraffic::default();
    let shared = Arc::new(Mutex::new(stats));
    let view = shared.clone();
    let path = args
        .socket
        .clone()
        .unwrap_or_else(|| munin_socket::default_path("munin_proto_traffic"));
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
            rec.fixed::<1>(f.protocol)[0],
            u64::from_le_bytes(rec.fixed(f.bytes)),
            u32::from_le_bytes(rec.fixed(f.packets)),
        );
        if !input.has_buffered() {
            if let Ok(mut s) = shared.lock() {
                *s = stats;
            }
        }
    };
    drop(trap);
    Ok(result?)
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("proto_traffic");
    module::start("proto_traffic", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
