//! The daemon's log output: tracing to standard error, human lines or JSON.
//! Colour codes only when standard error is a terminal, so log files and
//! journald get plain text.

use std::io::IsTerminal;

/// Installs the global subscriber. `RUST_LOG` wins over `default_filter`.
pub fn init(json: bool, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // Set already (tests): keep the first.
    let _ = if json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}
