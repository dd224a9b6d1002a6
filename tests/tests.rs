//! The integration tests: one binary (as ripgrep's `tests/tests.rs`), so
//! cargo links the crate once. The modules live in `tests/it/`, where cargo
//! does not look for test targets of their own.
//!
//! - `replay_golden`: every case under `tests/golden/replay/` replayed in
//!   process and compared with its hand-written `expected.json`; the
//!   byte-exact `example` case, also through the real binary.
//! - `properties`: proptest properties of whole replays (determinism,
//!   duplicate delivery, order independence, no panics, a naive model).
//! - `cli`: `correlator check-config` on the shipped config and on one bad
//!   config per file under `tests/golden/config/bad/`.
//! - `http_limits`: the HTTP edge against slow, oversized, unauthenticated
//!   and too many clients, over raw TCP.

// Tests talk to real brokers and processes in real time (clippy.toml bans
// the wall clock only for the crate's own code).
#![allow(clippy::disallowed_methods)]

#[path = "it/support.rs"]
mod support;

#[path = "it/replay_golden.rs"]
mod replay_golden;

#[path = "it/properties.rs"]
mod properties;

#[path = "it/cli.rs"]
mod cli;

#[path = "it/cli_output.rs"]
mod cli_output;

#[path = "support/mod.rs"]
mod brokers;

#[path = "it/daemon_mock.rs"]
mod daemon_mock;

#[path = "it/broker_harness.rs"]
mod broker_harness;

#[path = "it/api.rs"]
mod api;

#[path = "it/http_limits.rs"]
mod http_limits;

#[path = "it/daemon_e2e.rs"]
mod daemon_e2e;

#[path = "it/crash_tansu.rs"]
mod crash_tansu;

#[path = "it/outage_tansu.rs"]
mod outage_tansu;

#[path = "it/observability.rs"]
mod observability;

#[path = "it/fetch_mock.rs"]
mod fetch_mock;

#[path = "it/embedded_durability.rs"]
mod embedded_durability;

#[path = "it/records_lost.rs"]
mod records_lost;

#[path = "it/problem_quality.rs"]
mod problem_quality;
