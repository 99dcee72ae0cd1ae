//! proto_traffic — per-protocol traffic counters on a unix socket for Munin.

use anyhow::{anyhow, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Trap, TrapError};
use proto_traffic::ProtoTraffic;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use unirec::{FieldType, RecordRef, Scalar, Template};

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

fn le<const N: usize>(d: &[u8], at: usize) -> [u8; N] {
    d.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
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
    let name = input.name().to_string();
    let mut layout: Option<(Template, Fields)> = None;
    let result = loop {
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Timeout) => continue,
            Err(TrapError::Terminated) => break Ok(()),
            Err(e) => break Err(e.into()),
        };
        if msg.is_eos() {
            break Ok(());
        }
        if msg.format_changed || layout.is_none() {
            let Some(DataFormat::UniRec(spec)) = msg.format else {
                break Err(anyhow!("{name}: the sender's data are not UniRec"));
            };
            let t = match Template::parse(spec) {
                Ok(t) => t,
                Err(e) => break Err(anyhow!("{name}: bad template from the sender: {e}")),
            };
            match fields(&t) {
                Ok(f) => layout = Some((t, f)),
                Err(e) => break Err(e.context(name)),
            }
        }
        let Some((t, f)) = &layout else { continue };
        if let Err(e) = RecordRef::new_checked(t, msg.data) {
            break Err(anyhow!("{name}: bad record: {e}"));
        }
        let d = msg.data;
        stats.add(
            le::<1>(d, f.protocol)[0],
            u64::from_le_bytes(le(d, f.bytes)),
            u32::from_le_bytes(le(d, f.packets)),
        );
        if !input.has_buffered() {
            if let Ok(mut s) = shared.lock() {
                *s = stats;
            }
        }
    };
    drop(trap);
    result
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("proto_traffic");
    module::start("proto_traffic", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
