//! Shared helpers: build an engine from a config, run a replay in process
//! into a temporary directory and read back the four output files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use correlator::config::Config;
use correlator::engine::{Engine, EngineConfig};

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An engine for the config file at `path`; panics with the config error.
pub fn engine_from_file(path: &Path) -> Engine {
    let cfg = Config::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ec = EngineConfig::compile(&cfg)
        .unwrap_or_else(|issues| panic!("{}: {issues:?}", path.display()));
    Engine::new(ec)
}

/// An engine for TOML text; panics with the config error. Compiled configs
/// are cached per text: property tests build thousands of engines.
pub fn engine_from_toml(toml: &str) -> Engine {
    static CACHE: Mutex<BTreeMap<String, EngineConfig>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let ec = cache
        .entry(toml.to_string())
        .or_insert_with(|| {
            let cfg = Config::parse(toml, "test.toml").unwrap_or_else(|e| panic!("{e}"));
            EngineConfig::compile(&cfg).unwrap_or_else(|issues| panic!("{issues:?}"))
        })
        .clone();
    drop(cache);
    Engine::new(ec)
}

/// The four files a replay writes, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOutput {
    pub incidents: Vec<u8>,
    pub problems: Vec<u8>,
    pub rejected: Vec<u8>,
    pub summary: Vec<u8>,
}

impl ReplayOutput {
    fn read(dir: &Path) -> ReplayOutput {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        ReplayOutput {
            incidents: read("incidents.jsonl"),
            problems: read("problems.jsonl"),
            rejected: read("rejected.jsonl"),
            summary: read("summary.json"),
        }
    }

    /// Each non-empty line of a JSONL file, parsed.
    pub fn lines(bytes: &[u8]) -> Vec<serde_json::Value> {
        let text = std::str::from_utf8(bytes).expect("output is UTF-8");
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    pub fn incidents_json(&self) -> Vec<serde_json::Value> {
        Self::lines(&self.incidents)
    }

    pub fn rejected_json(&self) -> Vec<serde_json::Value> {
        Self::lines(&self.rejected)
    }

    pub fn summary_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.summary).expect("summary.json is JSON")
    }
}

/// Runs `correlator::replay::run` with `engine` on the file `input`.
pub fn replay_file(engine: &mut Engine, input: &Path) -> ReplayOutput {
    let out = tempfile::tempdir().expect("tempdir");
    correlator::replay::run(engine, input, out.path())
        .unwrap_or_else(|e| panic!("replay of {}: {e:#}", input.display()));
    ReplayOutput::read(out.path())
}

/// Replays `lines` (one record per line) under the config `toml`.
pub fn replay_lines(toml: &str, lines: &[String]) -> ReplayOutput {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.jsonl");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&input, text).expect("write input");
    let mut engine = engine_from_toml(toml);
    replay_file(&mut engine, &input)
}
