//! `correlator replay`: a recorded JSONL alert stream through the engine,
//! writing incidents, problems, rejections and a summary (see
//! [`crate::replay`] for the contract).

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::engine::{Engine, EngineConfig};

/// Arguments of `correlator replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long)]
    pub out_dir: PathBuf,
}

/// Replays and prints the summary as one JSON line.
pub fn run(a: &ReplayArgs) -> anyhow::Result<()> {
    let mut engine = load_engine(&a.config)?;
    let summary = crate::replay::run(&mut engine, &a.input, &a.out_dir)?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn load_engine(path: &Path) -> anyhow::Result<Engine> {
    let cfg = Config::load(path)?;
    for w in crate::engine::rules::mode_warnings(&cfg) {
        tracing::warn!(key = %w.key, "matcher reads differently per matchers.mode: {}", w.reason);
    }
    // `load` validated everything `compile` checks.
    let ec = EngineConfig::compile(&cfg).map_err(|issues| ConfigError::Invalid {
        file: path.display().to_string(),
        issues,
    })?;
    Ok(Engine::new(ec))
}
