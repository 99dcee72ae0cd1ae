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
pub mod jetstream;
pub mod log;
pub mod module;
pub mod output;
pub mod records;
pub mod service;
pub mod spec;
pub mod stats;
pub mod stream;
pub mod tls;

pub use error::{Result, TrapError};
pub use format::{DataFormat, Required};
pub use input::{Input, Message};
pub use output::Output;
pub use spec::{Configured, Ifc, IfcKind, IfcSpec, Timeout};

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

fn open_input(c: &Configured) -> Result<Input> {
    let name = c.spec.to_string();
    let timeout = c.spec.timeout.unwrap_or_default();
    let source: Box<dyn input::Source> = match &c.ifc {
        Ifc::FileIn { pattern } => Box::new(file::FileSource::new(name.clone(), pattern)),
        Ifc::UnixIn { path, shared } => Box::new(stream::StreamSource::new(
            name.clone(),
            stream::Target::Unix(path.clone(), *shared),
            stop_flag(),
        )),
        Ifc::TcpIn { host, port } => {
            stream::check_resolvable(&name, host, *port)?;
            Box::new(stream::StreamSource::new(
                name.clone(),
                stream::Target::Tcp(host.clone(), *port),
                stop_flag(),
            ))
        }
        Ifc::TlsIn { host, port, files } => {
            let cfg = tls::client_config(&name, files)?;
            stream::check_resolvable(&name, host, *port)?;
            Box::new(stream::StreamSource::new(
                name.clone(),
                stream::Target::Tls(host.clone(), *port, cfg),
                stop_flag(),
            ))
        }
        Ifc::JetStreamIn(opts) => Box::new(jetstream::JsSource::open(name.clone(), opts.clone())?),
        _ => {
            return Err(TrapError::Unsupported(format!(
                "input interface `{name}`: this interface type cannot be an input"
            )))
        }
    };
    Ok(Input::new(name, source, timeout, c.spec.kind.letter()))
}

fn open_output(c: &Configured) -> Result<Output> {
    let name = c.spec.to_string();
    let sink = match &c.ifc {
        Ifc::FileOut(opts) => Sink::File(file::FileWriter::new(
            name.clone(),
            opts.clone(),
            Box::new(file::SystemClock),
        )),
        Ifc::UnixOut {
            name: sock,
            path,
            mode,
            opts,
        } => Sink::Stream(stream::StreamWriter::bind(
            name.clone(),
            stream::Bind::Unix {
                name: sock.clone(),
                path: path.clone(),
                mode: *mode,
            },
            opts.clone(),
            stop_flag(),
        )?),
        Ifc::TcpOut { host, port, opts } => Sink::Stream(stream::StreamWriter::bind(
            name.clone(),
            stream::Bind::Tcp(host.clone(), *port),
            opts.clone(),
            stop_flag(),
        )?),
        Ifc::TlsOut {
            host,
            port,
            files,
            opts,
        } => Sink::Stream(stream::StreamWriter::bind(
            name.clone(),
            stream::Bind::Tls(host.clone(), *port, tls::server_config(&name, files)?),
            opts.clone(),
            stop_flag(),
        )?),
        Ifc::JetStreamOut(opts) => Sink::JetStream(Box::new(jetstream::JsWriter::open(
            name.clone(),
            opts.clone(),
        )?)),
        Ifc::Blackhole => {
            let s = Arc::new(stats::OutputStats::default());
            s.num_clients.store(1, Relaxed);
            Sink::Blackhole(s)
        }
        _ => {
            return Err(TrapError::BadSpec(format!(
                "output interface `{name}`: this interface type cannot be an output"
            )))
        }
    };
    Ok(Output::new(name, sink))
}

impl Trap {
    /// Opens the interfaces of `ifc_spec` for a module with `n_in` inputs and
    /// `n_out` outputs (`None` on one side = as many as the spec has left), and
    /// starts the service interface.
    pub fn init(ifc_spec: &str, n_in: Option<usize>, n_out: Option<usize>) -> Result<Trap> {
        let (ins, outs) = spec::split(spec::parse(ifc_spec)?, n_in, n_out)?;
        let service_mode = spec::SocketMode::resolve(None).map_err(TrapError::BadSpec)?;
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
        let service = service::Service::start(registry.clone(), service_mode);
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

    /// A counter of the module itself (what a data plane dropped, sessions
    /// running), served on the service interface under `"counters": {NAME:
    /// value}` (see [`stats::Registry::counter`]).
    pub fn counter(&self, name: &str) -> Arc<std::sync::atomic::AtomicU64> {
        self.registry.counter(name)
    }

    /// The registry the service interface serves (for module counters
    /// created and removed while the interfaces are borrowed).
    pub fn registry(&self) -> Arc<stats::Registry> {
        self.registry.clone()
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
