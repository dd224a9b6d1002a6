//! How well problem records group recurring incidents, on generated
//! streams with known truth (`support/faults.rs`): pairwise precision,
//! recall and F1 of incidents → problems, per seed and size, through the
//! replay path (replay = daemon).
//!
//! ```text
//! cargo bench --bench problem_quality
//! PROBLEM_SEEDS=10 cargo bench --bench problem_quality    # more seeds
//! ```

use std::time::Instant;

use correlator::config::Config;
use correlator::engine::{Engine, EngineConfig};

#[path = "support/faults.rs"]
mod faults;

fn main() {
    let seeds: u64 = std::env::var("PROBLEM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let cfg = Config::parse(&faults::config_toml(3), "problem_quality.toml").expect("config");
    println!(
        "{:>5} {:>6} {:>5} {:>6} {:>8} {:>9} {:>8} {:>7} {:>7} {:>7} {:>8}",
        "seed",
        "faults",
        "days",
        "occurs",
        "records",
        "incidents",
        "problems",
        "P",
        "R",
        "F1",
        "replay"
    );
    let mut worst = f64::MAX;
    for (faults_n, days) in [(16usize, 14i64), (40, 30)] {
        for seed in 1..=seeds {
            let stream = faults::generate(seed, faults_n, days);
            let dir = tempfile::tempdir().expect("tempdir");
            let input = dir.path().join("records.jsonl");
            std::fs::write(&input, stream.records.join("\n") + "\n").expect("write records");
            let out = dir.path().join("out");
            let mut engine = Engine::new(EngineConfig::compile(&cfg).expect("compiles"));
            let started = Instant::now();
            correlator::replay::run(&mut engine, &input, &out).expect("replay");
            let took = started.elapsed();
            let incidents = std::fs::read_to_string(out.join("incidents.jsonl")).expect("read");
            let problems = std::fs::read_to_string(out.join("problems.jsonl")).expect("read");
            let s = faults::score(&incidents, &problems, &stream.truth);
            worst = worst.min(s.f1);
            println!(
                "{seed:>5} {:>6} {days:>5} {:>6} {:>8} {:>9} {:>8} {:>7.3} {:>7.3} {:>7.3} {:>6.0}ms",
                stream.faults,
                stream.occurrences,
                stream.records.len(),
                s.incidents,
                s.problems,
                s.precision,
                s.recall,
                s.f1,
                took.as_secs_f64() * 1000.0
            );
        }
    }
    println!("worst F1 {worst:.3} (target >= 0.95, precision >= 0.98 on every seed)");
}
