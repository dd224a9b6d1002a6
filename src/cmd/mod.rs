//! The subcommands, one file each; `main.rs` parses the command line and
//! calls them.
//!
//! - [`run`]: `correlator run`, the daemon (store choice, embedded broker).
//! - [`demo`]: `correlator demo` and the sample alerts of `run --demo`.
//! - [`replay`]: `correlator replay`.
//! - [`check_config`]: `correlator check-config`.
//! - [`mine`]: `correlator mine`, the template miner on a text file.
//! - [`send`], [`tail`]: produce alerts to a topic; print incident events.
//! - [`incidents`], [`problems`]: the HTTP API from a terminal, over the
//!   small [`client`].
//! - [`completions`]: shell completions and the man page.
//! - [`format`]: how incidents, problems and events are printed (simple,
//!   extended, json).
//! - [`logging`]: the daemon's log output.

pub mod check_config;
pub mod client;
pub mod completions;
pub mod demo;
pub mod format;
pub mod incidents;
pub mod logging;
pub mod mine;
pub mod problems;
pub mod replay;
pub mod run;
pub mod send;
pub mod tail;
