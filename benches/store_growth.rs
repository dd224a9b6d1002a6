//! Store size and start-up time as history grows, with retention.
//!
//! The shared stream (`support/records.rs`), one record a second of engine
//! time, runs through the engine and the store in process as the daemon
//! runs it: batches of 500 records, each stored in one transaction, final
//! incidents evicted after it. Retention keeps closed incidents for an hour
//! (its shortest), so a million records are about 280 retention periods.
//! At each checkpoint it reports the file's size and bytes per record, the
//! rows kept, and the start-up time (open the file and rebuild the engine,
//! miner included), as a ratio to opening an empty store in the same run.
//!
//! `cargo bench --bench store_growth` checks 1M, 2M and 3M records (10M
//! takes too long on a small machine; `STORE_GROWTH_RECORDS=1000000,10000000`
//! sets the checkpoints). `STORE_GROWTH_RETENTION=3650d` shows the store
//! without retention.

#[path = "support/records.rs"]
mod records;

use std::time::Instant;

use correlator::alert::Timestamp;
use correlator::config::Config;
use correlator::engine::{Engine, EngineConfig};
use correlator::store::{BatchWrite, Store};
use records::{Generator, RULES};

const BATCH: usize = 500;

fn config(retention: &str) -> EngineConfig {
    let toml = format!("{RULES}\n[retention]\nclosed_incidents = \"{retention}\"\n");
    let cfg = Config::parse(&toml, "bench.toml").expect("bench config");
    EngineConfig::compile(&cfg).expect("compiles")
}

/// Best of `runs` start-ups of the store at `path`: seconds, lines re-fed.
fn start_up(path: &std::path::Path, cfg: &EngineConfig, runs: usize) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut fed = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let store = Store::open(path).expect("open");
        let (e, n) = store.load_engine_counted(cfg.clone()).expect("load");
        best = best.min(t.elapsed().as_secs_f64());
        fed = n;
        drop(e);
    }
    (best, fed)
}

fn main() {
    // `cargo test --benches` runs bench binaries with no `--bench`: keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let checkpoints: Vec<u64> = std::env::var("STORE_GROWTH_RECORDS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| {
            if quick {
                vec![10_000, 20_000]
            } else {
                vec![1_000_000, 2_000_000, 3_000_000]
            }
        });
    let retention = std::env::var("STORE_GROWTH_RETENTION").unwrap_or_else(|_| "1h".into());
    let cfg = config(&retention);
    let dir = tempfile::tempdir().expect("tempdir");

    // Baseline: an empty store.
    let empty = dir.path().join("empty.redb");
    drop(Store::open(&empty).expect("open"));
    let (base, _) = start_up(&empty, &cfg, 5);

    let path = dir.path().join("s.redb");
    let mut store = Store::open(&path).expect("open");
    let mut e = Engine::new(cfg.clone());
    e.set_tracking(true);
    e.coalesce_updates(true);
    let start = Timestamp::parse_rfc3339("2026-01-05T10:00:00Z")
        .expect("valid")
        .expect("present")
        .0;
    let mut g = Generator::spread(start, 1000);
    println!(
        "store_growth: retention.closed_incidents = {retention}, one record a second, \
         batches of {BATCH}; start-up baseline (empty store) {:.2} ms",
        base * 1e3
    );
    println!(
        "{:>10} {:>12} {:>10} {:>10} {:>10} {:>8} {:>12} {:>10} {:>8}",
        "records",
        "file bytes",
        "B/record",
        "incidents",
        "retired",
        "alerts",
        "start-up ms",
        "x empty",
        "re-fed"
    );
    let mut done = 0u64;
    let t0 = Instant::now();
    for &target in &checkpoints {
        while done < target {
            let n = (target - done).min(BATCH as u64);
            let mut last = Timestamp(0);
            for _ in 0..n {
                let rec = g.next_record();
                last = Timestamp(rec.ts);
                e.handle(&rec.body, last);
            }
            done += n;
            e.tick(last);
            e.take_updates();
            e.take_problem_events();
            let c = e.take_changes();
            store.commit(&e, &c, BatchWrite::default()).expect("commit");
            e.evict_final();
        }
        let bytes = std::fs::metadata(&path).expect("file").len();
        drop(store);
        let (secs, fed) = start_up(&path, &cfg, 3);
        let loaded = Store::open(&path)
            .expect("open")
            .load_engine_counted(cfg.clone())
            .expect("load")
            .0;
        println!(
            "{:>10} {:>12} {:>10.1} {:>10} {:>10} {:>8} {:>12.1} {:>10.1} {:>8}",
            done,
            bytes,
            bytes as f64 / done as f64,
            loaded.incident_count(),
            loaded.retired_count(),
            loaded.alert_count(),
            secs * 1e3,
            secs / base,
            fed
        );
        drop(loaded);
        // The engine runs on, on the reopened store.
        store = Store::open(&path).expect("open");
    }
    eprintln!("ran {done} records in {:.1} s", t0.elapsed().as_secs_f64());
}
