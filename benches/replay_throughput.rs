//! End-to-end replay throughput, against a baseline measured in the same run.
//!
//! Generates a realistic stream (default 1,000,000 records: 8–12 labels per
//! alert, re-sends, resolutions, 400 services, Alertmanager webhook, API v2
//! and PagerDuty bodies) and measures, best of 3:
//! (a) parse-only: read the file and `serde_json` each line into a `Value`;
//! (b) full replay: `correlator replay` minus process start (read, decode,
//!     engine, write incidents.jsonl/summary.json);
//! (c) engine only: pre-decoded signals through `Engine::handle_signals`;
//! (d) memory per active alert, counted by a global allocator.
//!
//! `cargo bench --bench replay_throughput` (REPLAY_BENCH_RECORDS=N to resize).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use correlator::alert::{Signal, Timestamp};
use correlator::config::Config;
use correlator::engine::{Engine, EngineConfig};

#[path = "support/records.rs"]
mod records;
use records::{labels_of, obj, Generator, RULES};

/// Counts live heap bytes so memory per alert is measured, not guessed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(
    unsafe_code,
    reason = "a global allocator wrapper is unsafe by definition; it only forwards to System"
)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Generates `n` replay lines: the shared stream ([`Generator`]), keyed by
/// cluster (`eu0`…`eu3`, as the services' `cluster` label).
fn generate(n: usize) -> Vec<u8> {
    let start = Timestamp::parse_rfc3339("2026-01-05T10:00:00Z")
        .unwrap()
        .unwrap()
        .0;
    let mut g = Generator::new(start);
    let mut out = Vec::with_capacity(n * 700);
    for _ in 0..n {
        let rec = g.next_record();
        let value: serde_json::Value = serde_json::from_slice(&rec.body).unwrap();
        let line = serde_json::json!({
            "ts": Timestamp(rec.ts).to_rfc3339(),
            "key": format!("eu{}", rec.svc % 4),
            "value": value,
        });
        serde_json::to_writer(&mut out, &line).unwrap();
        out.push(b'\n');
    }
    out
}

fn engine() -> Engine {
    let cfg = Config::parse(RULES, "bench.toml").expect("bench config");
    Engine::new(EngineConfig::compile(&cfg).expect("compiles"))
}

fn best_of<F: FnMut() -> u64>(runs: usize, mut f: F) -> (f64, u64) {
    let mut best = f64::MAX;
    let mut count = 0;
    for _ in 0..runs {
        let t = Instant::now();
        count = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, count)
}

fn main() {
    // `cargo test --benches` runs bench binaries with no `--bench`: keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("REPLAY_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 1_000_000 });
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("records.jsonl");
    let data = generate(n);
    std::fs::File::create(&input)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let mb = data.len() as f64 / 1e6;
    drop(data);
    println!("replay throughput: {n} records, {mb:.0} MB");

    let runs = if quick { 1 } else { 3 };
    let (parse_s, _) = best_of(runs, || {
        let f = BufReader::with_capacity(1 << 20, std::fs::File::open(&input).unwrap());
        let mut k = 0;
        for line in f.lines() {
            let line = line.unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            std::hint::black_box(&v);
            k += 1;
        }
        k
    });
    let out = dir.path().join("out");
    let (replay_s, _) = best_of(runs, || {
        let mut e = engine();
        let s = correlator::replay::run(&mut e, &input, &out).unwrap();
        assert_eq!(s.rejected, 0, "generated records must all decode");
        s.records
    });

    // Engine only: decode outside the timed loop.
    let f = BufReader::new(std::fs::File::open(&input).unwrap());
    let decoded: Vec<(Timestamp, Vec<Signal>)> = f
        .lines()
        .map(|l| {
            let l = l.unwrap();
            let r = correlator::replay::parse_line(&l).unwrap();
            let d = correlator::decode::decode(&r.body, r.ts, &Default::default());
            (r.ts, d.signals)
        })
        .collect();
    let mut engine_s = f64::MAX;
    let mut engine_alerts = 0;
    for _ in 0..runs {
        let mut e = engine();
        let batch = decoded.clone();
        let t = Instant::now();
        for (ts, sig) in batch {
            std::hint::black_box(e.handle_signals(sig, ts));
        }
        engine_s = engine_s.min(t.elapsed().as_secs_f64());
        engine_alerts = e.stats().alerts;
    }

    let parse_rate = n as f64 / parse_s;
    let replay_rate = n as f64 / replay_s;
    println!(
        "{:<34} {:>12} {:>14}",
        "measurement", "seconds", "records/s"
    );
    println!(
        "{:<34} {:>12.3} {:>14.0}",
        "(a) parse-only (serde_json Value)", parse_s, parse_rate
    );
    println!(
        "{:<34} {:>12.3} {:>14.0}",
        "(b) full replay", replay_s, replay_rate
    );
    println!(
        "ratio b/a = {:.2} (target >= 0.50)",
        replay_rate / parse_rate
    );
    println!(
        "(c) engine only: {:.0} alerts/s ({} alert notifications in {:.3} s; target >= 1,000,000)",
        engine_alerts as f64 / engine_s,
        engine_alerts,
        engine_s
    );

    // Memory per active alert: N distinct firing alerts held in incidents.
    let active = if quick { 10_000 } else { 100_000 };
    let bodies: Vec<Vec<u8>> = (0..active as u64)
        .map(|i| {
            let labels = labels_of(i + 1_000_000);
            let body = serde_json::json!({"labels": obj(&labels), "annotations": {"summary": "disk 91% full on /var"}});
            serde_json::to_vec(&body).unwrap()
        })
        .collect();
    let mut e = engine();
    let before = LIVE.load(Ordering::Relaxed);
    for (k, b) in bodies.iter().enumerate() {
        e.handle(b, Timestamp(1_767_607_200_000 + k as i64));
    }
    let after = LIVE.load(Ordering::Relaxed);
    let per = (after - before) as f64 / e.alert_count() as f64;
    println!(
        "(d) memory: {} active alerts, {:.0} bytes per active alert (target <= 1024)",
        e.alert_count(),
        per
    );
}
