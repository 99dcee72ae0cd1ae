//! TRAP, the communication layer of CESNET NEMEA, compatible with libtrap
//! 1.18 on the wire: unix sockets (`u:`), TCP (`t:`), `.trapcap` files (`f:`)
//! and the blackhole (`b:`), with libtrap's hello negotiation, container and
//! block framing, file rotation names and service-interface statistics.
//!
//! ```no_run
//! use libtrap::{DataFormat, Trap};
//! let mut trap = Trap::init("f:in.trapcap,u:out", Some(1), Some(1))?;
//! let (inputs, outputs) = trap.split_mut();
//! loop {
//!     let msg = inputs[0].recv()?;
//!     if msg.format_changed {
//!         let fmt = inputs[0].format().cloned().expect("known after a message");
//!         outputs[0].set_format(fmt)?;
//!         continue; // (a real module would re-receive nothing: see traffic_repeater)
//!     }
//!     # break;
//! }
//! # Ok::<(), libtrap::TrapError>(())
//! ```
#![forbid(unsafe_code)]

pub mod error;
pub mod file;
pub mod format;
pub mod input;
pub mod log;
pub mod module;
pub mod output;
pub mod service;
pub mod spec;
pub mod stats;
pub mod stream;

pub use error::{Result, TrapError};
pub use format::{DataFormat, Required};
pub use input::{Input, Message};
pub use output::Output;
pub use spec::{IfcKind, IfcSpec, Timeout};

use output::Sink;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};

static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// The process-wide terminate flag (set by SIGINT/SIGTERM, see [`module`]).
pub fn stop_flag() -> Arc<AtomicBool> {
    STOP.clone()
}

/// Stops every blocking receive, send and wait with [`TrapError::Terminated`].
pub fn terminate() {
    STOP.store(true, Relaxed);
}

pub fn is_terminated() -> bool {
    STOP.load(Relaxed)
}

/// Sleeps for `d`, waking early when the module is told to stop.
pub fn sleep(d: std::time::Duration) {
    let mut left = d;
    while !left.is_zero() && !is_terminated() {
        let step = left.min(std::time::Duration::from_millis(100));
        std::thread::sleep(step);
        left -= step;
    }
}

/// `Terminated` is how a stopped module's last sends end: not an error.
pub fn ok_if_terminated(r: Result<()>) -> Result<()> {
    match r {
        Err(TrapError::Terminated) => Ok(()),
        r => r,
    }
}

/// The interfaces of one module, built from an IFC_SPEC.
pub struct Trap {
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    registry: Arc<stats::Registry>,
    service: Option<service::Service>,
}

fn open_input(spec: &IfcSpec) -> Result<Input> {
    let name = spec.to_string();
    let timeout = spec.timeout.unwrap_or_default();
    let source: Box<dyn input::Source> = match spec.kind {
        IfcKind::File => Box::new(file::FileSource::new(name.clone(), &spec.joined_params())),
        IfcKind::Unix => {
            // libtrap uses the last of several parameters as the name.
            let sock = spec.params.last().map(String::as_str).unwrap_or_default();
            Box::new(stream::StreamSource::new(
                name.clone(),
                stream::Target::Unix(stream::socket_path(sock)),
                stop_flag(),
            ))
        }
        IfcKind::Tcp => {
            let (host, port) = spec::tcp_input_addr(&spec.params)
                .map_err(|e| TrapError::BadSpec(format!("input interface `{name}`: {e}")))?;
            Box::new(stream::StreamSource::new(
                name.clone(),
                stream::Target::Tcp(host, port),
                stop_flag(),
            ))
        }
        IfcKind::Tls => {
            return Err(TrapError::Unsupported(format!(
                "input interface `{name}`: TLS (T:) is not supported yet"
            )))
        }
        _ => {
            return Err(TrapError::Unsupported(format!(
                "input interface `{name}`: this interface type cannot be an input"
            )))
        }
    };
    Ok(Input::new(name, source, timeout, spec.kind.letter()))
}

fn open_output(spec: &IfcSpec) -> Result<Output> {
    let name = spec.to_string();
    let buffered = spec.buffer.unwrap_or(true);
    let bad = |m: String| TrapError::BadSpec(format!("output interface `{name}`: {m}"));
    let sink = match spec.kind {
        IfcKind::File => {
            let opts = file::FileOptions::parse(&spec.params, buffered).map_err(bad)?;
            Sink::File(file::FileWriter::new(
                name.clone(),
                opts,
                Box::new(file::SystemClock),
            ))
        }
        IfcKind::Unix | IfcKind::Tcp => {
            let (bind, extra) = if spec.kind == IfcKind::Unix {
                let (name, extra) = spec
                    .params
                    .split_first()
                    .map(|(t, e)| (t.as_str(), e))
                    .unwrap_or(("", &[]));
                (stream::Bind::Unix(name.to_string()), extra)
            } else {
                let (host, port, extra) = spec::tcp_output_addr(&spec.params).map_err(bad)?;
                (stream::Bind::Tcp(host, port), extra)
            };
            let opts = stream::StreamOptions::parse(
                extra,
                spec.timeout.unwrap_or_default(),
                buffered,
                spec.autoflush,
            )
            .map_err(bad)?;
            Sink::Stream(stream::StreamWriter::bind(
                name.clone(),
                bind,
                opts,
                stop_flag(),
            )?)
        }
        IfcKind::Blackhole => {
            let s = Arc::new(stats::OutputStats::default());
            s.num_clients.store(1, Relaxed);
            Sink::Blackhole(s)
        }
        IfcKind::Tls => {
            return Err(TrapError::Unsupported(format!(
                "output interface `{name}`: TLS (T:) is not supported yet"
            )))
        }
        _ => return Err(bad("this interface type cannot be an output".into())),
    };
    Ok(Output::new(name, sink))
}

impl Trap {
    /// Opens the interfaces of `ifc_spec` for a module with `n_in` inputs and
    /// `n_out` outputs (`None` on one side = as many as the spec has left), and
    /// starts the service interface.
    pub fn init(ifc_spec: &str, n_in: Option<usize>, n_out: Option<usize>) -> Result<Trap> {
        let (ins, outs) = spec::split(spec::parse(ifc_spec)?, n_in, n_out)?;
        let registry = Arc::new(stats::Registry::default());
        let inputs = ins.iter().map(open_input).collect::<Result<Vec<_>>>()?;
        let outputs = outs.iter().map(open_output).collect::<Result<Vec<_>>>()?;
        for i in &inputs {
            let (info, s) = i.stats();
            registry.add_input(info, s);
        }
        for o in &outputs {
            let (info, s) = o.stats();
            registry.add_output(info, s);
        }
        let service = service::Service::start(registry.clone());
        Ok(Trap {
            inputs,
            outputs,
            registry,
            service,
        })
    }

    pub fn inputs(&mut self) -> &mut [Input] {
        &mut self.inputs
    }

    pub fn outputs(&mut self) -> &mut [Output] {
        &mut self.outputs
    }

    /// Inputs and outputs at once (a module reads one and writes the other).
    pub fn split_mut(&mut self) -> (&mut [Input], &mut [Output]) {
        (&mut self.inputs, &mut self.outputs)
    }

    /// The statistics JSON the service interface serves.
    pub fn stats_json(&self) -> String {
        self.registry.to_json()
    }

    /// Path of the service socket, if it could be created.
    pub fn service_path(&self) -> Option<&std::path::Path> {
        self.service.as_ref().map(|s| s.path())
    }

    /// Ends a producer: the end-of-stream message on every output (when
    /// `eos`), then [`finish`](Self::finish). After SIGINT/SIGTERM this is
    /// best effort and not an error.
    pub fn end(mut self, eos: bool) -> Result<()> {
        let mut first = Ok(());
        if eos {
            for o in &mut self.outputs {
                let r = ok_if_terminated(o.send_eos());
                if first.is_ok() {
                    first = r;
                }
            }
        }
        let r = ok_if_terminated(self.finish());
        first.and(r)
    }

    /// Flushes and closes every output; returns the first error.
    pub fn finish(mut self) -> Result<()> {
        let mut first = Ok(());
        for o in &mut self.outputs {
            let r = o.close();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}
