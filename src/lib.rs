//! correlator: monitoring alerts in, deduplicated and correlated incidents
//! out, recurring incidents clustered into problem records.
//!
//! Map of the crate (functional core, imperative shell):
//! - [`alert`]: the canonical alert, labels and Alertmanager's fingerprint.
//! - [`decode`]: the wire formats, auto-detected per record.
//! - [`config`]: the TOML configuration and its validation.
//! - [`engine`]: the pure, deterministic core: dedup, correlation rules,
//!   topology, incident lifecycle, priority. No I/O, no clock: `now` is passed in.
//! - [`replay`]: runs a recorded JSONL stream through the engine.

pub mod alert;
pub mod config;
pub mod decode;
pub mod engine;
pub mod replay;
