//! NEMEA supervisor: runs profiles of modules, restarts what dies, serves
//! status and counters to `supcli`.
//!
//! - [`config`]: the model, [`toml_cfg`] and [`xml`] the two file formats;
//! - [`restart`]: the pure decisions of the run-time loop;
//! - [`status`]: the tables and JSON supcli prints;
//! - [`proto`]: the client protocol; [`daemon`]: the supervisor itself;
//! - [`web`]: the status page (`--http`) and its JSON.

#![forbid(unsafe_code)]

pub mod config;
pub mod daemon;
pub mod error;
pub mod net;
pub mod proto;
pub mod restart;
pub mod status;
pub mod toml_cfg;
pub mod web;
pub mod xml;

pub use config::Config;
pub use error::{ClientError, ConfigError};
