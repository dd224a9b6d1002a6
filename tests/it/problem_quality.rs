//! Problem records on generated streams of recurring faults
//! (`benches/support/faults.rs`): a floor on pairwise precision and F1 of
//! incidents → problems, on three seeds.

use correlator::config::Config;
use correlator::engine::{Engine, EngineConfig};

#[path = "../../benches/support/faults.rs"]
#[allow(dead_code)]
mod faults;

fn quality(seed: u64) -> faults::Score {
    let cfg = Config::parse(&faults::config_toml(3), "faults.toml").expect("config");
    let stream = faults::generate(seed, 16, 14);
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("records.jsonl");
    std::fs::write(&input, stream.records.join("\n") + "\n").expect("write records");
    let out = dir.path().join("out");
    let mut engine = Engine::new(EngineConfig::compile(&cfg).expect("compiles"));
    correlator::replay::run(&mut engine, &input, &out).expect("replay");
    let incidents = std::fs::read_to_string(out.join("incidents.jsonl")).expect("incidents");
    let problems = std::fs::read_to_string(out.join("problems.jsonl")).expect("problems");
    faults::score(&incidents, &problems, &stream.truth)
}

#[test]
fn recurring_faults_each_land_in_one_problem() {
    for seed in 1..=3 {
        let s = quality(seed);
        assert!(
            s.f1 >= 0.9 && s.precision >= 0.98,
            "seed {seed}: precision {:.3} recall {:.3} F1 {:.3} ({} incidents, {} problems)",
            s.precision,
            s.recall,
            s.f1,
            s.incidents,
            s.problems
        );
    }
}
