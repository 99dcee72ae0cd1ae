//! ipv6stats — IPv4/IPv6 traffic, tunnel and unique address statistics to files.

use anyhow::{anyhow, Result};
use clap::Parser;
use ipv6stats::{Config, File, Flow, Ipv6Stats};
use libtrap::module::{self, TrapArgs};
use libtrap::records::{Next, Records};
use libtrap::{Timeout, Trap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use unirec::{FieldType, Scalar, Template};

/// Gathers IPv4/IPv6 statistics per short and long window of record time
/// and writes them to the files cnt_addr, traffic, ipv6_tunnels (short
/// window) and cnt_addr_L (long window) in -d DIR: distinct IPv4/IPv6
/// addresses and /48, /64 prefixes (SRC_IP of flows with at least -p
/// packets), packets, bits and flows per second of IPv4, IPv6 and each IPv6
/// tunnel type (IPV6_TUN_TYPE). If no data comes for 40 s the files are
/// written with an INACTIVE line. At the end, the current windows are
/// written too (unless -n).
#[derive(Parser, Debug)]
#[command(
    name = "ipv6stats",
    version,
    after_help = "Interfaces: 1 input (SRC_IP, PACKETS, BYTES, TIME_LAST; IPV6_TUN_TYPE if present).\n\
Example: ipv6stats -d /var/lib/ipv6stats -s 300 -L 12 -i u:flow_data_source"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Directory of the output files (created when missing) [default: the working directory].
    #[arg(short = 'd', long = "dir", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Long window in seconds [default: 12 short windows].
    #[arg(short = 'l', long = "length-long", alias = "length_long", value_name = "SEC",
          value_parser = clap::value_parser!(u32).range(1..))]
    long: Option<u32>,
    /// Long window as a multiple of the short one (overrides -l).
    #[arg(short = 'L', long = "length-multi", alias = "length_multi", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    multi: Option<u32>,
    /// Do not write the last (incomplete) windows at the end.
    #[arg(short = 'n', long = "no-last", alias = "no_last")]
    no_last: bool,
    /// Packets a flow needs for its SRC_IP to count as a unique address.
    #[arg(short = 'p', long = "packets", value_name = "K", default_value_t = 1)]
    packets: u32,
    /// Short window in seconds.
    #[arg(short = 's', long = "length-small", alias = "length_small", value_name = "SEC", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(1..))]
    short: u32,
}

/// C's wait before the files are written as INACTIVE.
const IDLE: u64 = 40_000_000;

fn stamp() -> String {
    chrono::Local::now().format("%Y-%m-%d.%H:%M:%S").to_string()
}

/// Writes the files (each replaced at once, so readers never see half of
/// one); a failure is a warning, as in C, and the module goes on.
fn write(dir: &Path, files: &[File]) {
    if files.is_empty() {
        return;
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        libtrap::log::warn(&format!("cannot create {}: {e}", dir.display()));
        return;
    }
    for (name, text) in files {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
            libtrap::log::warn(&format!("cannot write {}: {e}", path.display()));
        }
    }
}

struct Fields {
    src: usize,
    packets: usize,
    bytes: usize,
    time: usize,
    tunnel: Option<usize>,
}

fn fields(t: &Template) -> Result<Fields> {
    let off = |name: &str, s: Scalar| {
        t.find_typed(name, FieldType::Scalar(s))
            .and_then(|i| t.field(i))
            .map(|f| f.offset())
    };
    let need = |name: &str, s: Scalar| {
        off(name, s).ok_or_else(|| anyhow!("the input has no `{} {name}` (it needs ipaddr SRC_IP, uint32 PACKETS, uint64 BYTES, time TIME_LAST)", s.name()))
    };
    Ok(Fields {
        src: need("SRC_IP", Scalar::IpAddr)?,
        packets: need("PACKETS", Scalar::U32)?,
        bytes: need("BYTES", Scalar::U64)?,
        time: need("TIME_LAST", Scalar::Time)?,
        tunnel: off("IPV6_TUN_TYPE", Scalar::U8),
    })
}

fn run(args: &Args) -> Result<()> {
    let long = match (args.multi, args.long) {
        (Some(m), _) => args.short.saturating_mul(m),
        (None, Some(l)) => l,
        (None, None) => args.short.saturating_mul(12),
    };
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut stats = Ipv6Stats::new(Config {
        short: args.short,
        long,
        threshold: args.packets,
    });
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(0))?;
    let input = &mut trap.inputs()[0];
    input.set_timeout(Timeout::Micros(IDLE));
    let mut records = Records::new();
    // 0: data flowing; 1: written once as inactive; 2: written twice, waiting.
    let mut idle = 0;
    let mut out = Vec::new();
    let mut rearm = false;
    let result = loop {
        if std::mem::take(&mut rearm) {
            input.set_timeout(Timeout::Micros(IDLE));
        }
        let (rec, f) = match records.next(input, fields) {
            Ok(Next::Record { rec, layout, .. }) => (rec, layout),
            Ok(Next::Timeout) => {
                write(&dir, &stats.inactive(&stamp()));
                idle += 1;
                input.set_timeout(if idle == 1 {
                    Timeout::Micros(u64::from(args.short) * 1_000_000)
                } else {
                    Timeout::Wait
                });
                continue;
            }
            Ok(Next::Skipped) => continue,
            Ok(Next::End) => break Ok(()),
            Err(e) => break Err(e),
        };
        // Data again: the 40 s wait from the next receive on.
        rearm |= std::mem::take(&mut idle) > 0;
        let flow = Flow {
            src_ip: unirec::UrIp(rec.fixed(f.src)),
            packets: u32::from_le_bytes(rec.fixed(f.packets)),
            bytes: u64::from_le_bytes(rec.fixed(f.bytes)),
            tunnel: f.tunnel.map_or(0, |o| rec.fixed::<1>(o)[0]),
            time: (u64::from_le_bytes(rec.fixed(f.time)) >> 32) as u32,
        };
        out.clear();
        stats.flow(&flow, stamp, &mut out);
        write(&dir, &out);
    };
    if !args.no_last {
        write(&dir, &stats.files(&stamp()));
    }
    drop(trap);
    Ok(result?)
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("ipv6stats");
    module::start("ipv6stats", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
