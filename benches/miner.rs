//! Speed of the template miner, in messages per second on one core.
//!
//! ```text
//! cargo bench --bench miner            # target: >= 1M lines/s everywhere
//! ```
//!
//! Groups:
//! - `miner/loghub/<D>`: the 2,000 messages of each Loghub sample dataset
//!   (read from `../shared/loghub-sample` at run time; skipped if absent);
//! - `miner/alerts`: 10,000 synthetic alert texts (`alertname summary`, see
//!   `problems::corpus`).
//!
//! In each group, `tokenise` (masking and splitting only, no mining) is the
//! baseline; `learn` feeds every message to a fresh miner (cold tree, all
//! clusters created, merged and generalised on the way), `steady` feeds them
//! again to a miner that has already seen them (the daemon's common case).
//! A fresh miner is a clone of one built outside the timed loop: building
//! compiles the masks, which a daemon does once.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use correlator::problems::corpus;
use correlator::problems::masks::{default_masks, Masker};
use correlator::problems::miner::{MinerConfig, TemplateMiner};

fn bench_lines(c: &mut Criterion, group: &str, lines: &[String]) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(lines.len() as u64));

    let masker = Masker::new(&default_masks()).expect("built-in masks compile");
    let mut buf = String::new();
    g.bench_function("tokenise", |b| {
        b.iter(|| {
            let mut tokens = 0usize;
            for l in lines {
                tokens += masker.mask(l, &mut buf).split_whitespace().count();
            }
            tokens
        })
    });

    let empty = TemplateMiner::new(MinerConfig::default()).expect("default config is valid");
    // Warm the shared regex caches so `learn` measures mining, not DFA warm-up.
    let mut warmed = empty.clone();
    for l in lines {
        warmed.add(l);
    }
    g.bench_function("learn", |b| {
        b.iter_batched(
            || empty.clone(),
            |mut m| {
                for l in lines {
                    std::hint::black_box(m.add(l));
                }
                m
            },
            BatchSize::LargeInput,
        )
    });

    let mut trained = warmed;
    g.bench_function("steady", |b| {
        b.iter(|| {
            for l in lines {
                std::hint::black_box(trained.add(l));
            }
        })
    });
    g.finish();
}

fn loghub(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/loghub-sample");
    for name in ["HDFS", "OpenSSH", "Linux", "HealthApp"] {
        let path = dir.join(name).join(format!("{name}_2k.content.txt"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("miner bench: {} not found, skipped", path.display());
            continue;
        };
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        bench_lines(c, &format!("miner/loghub/{name}"), &lines);
    }
}

fn alerts(c: &mut Criterion) {
    let lines: Vec<String> = corpus::alert_lines(10_000, 42)
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    bench_lines(c, "miner/alerts", &lines);
}

criterion_group!(benches, loghub, alerts);
criterion_main!(benches);
