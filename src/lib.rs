//! correlator: monitoring alerts in, deduplicated and correlated incidents
//! out, recurring incidents clustered into problem records.
//!
//! Map of the crate (functional core, imperative shell):
//! - [`alert`]: the canonical alert, labels and Alertmanager's fingerprint.
//! - [`decode`]: the wire formats, auto-detected per record.
//! - [`config`]: the TOML configuration and its validation.
//! - [`matcher`]: Alertmanager's label matcher language, as Alertmanager reads it.
//! - [`engine`]: the pure, deterministic core: dedup, correlation rules,
//!   topology, incident lifecycle, priority. No I/O, no clock: `now` is passed in.
//! - [`problems`]: template mining, signatures, problem lifecycle, known errors.
//! - [`replay`]: runs a recorded JSONL stream through the engine.
//! - [`store`]: redb: state, offsets and outbox, one transaction per batch.
//! - [`kafka`]: consumer pipeline, outbox publisher, embedded broker.
//! - [`http`]: health, readiness.
//! - [`daemon`]: the running daemon, wiring it all together.
//! - [`cmd`]: the subcommands, one file each, and their output formats.

pub mod alert;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod engine;
pub mod http;
pub mod kafka;
pub mod matcher;
pub mod metrics;
pub mod problems;
pub mod read_model;
pub mod replay;
pub mod store;
