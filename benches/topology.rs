//! Time to compile a `[topology.depends_on]` service catalog (cycle check,
//! depths, reachability numbers): what `check-config` and every start pay.
//!
//! ```text
//! cargo bench --bench topology                 # criterion groups, then ratios
//! cargo bench --bench topology -- --ratios     # only the ratio table (quick)
//! ```
//!
//! Shapes, at 1,000, 10,000 and 100,000 services:
//! - `chain`: each service depends on the next (the deepest possible graph);
//! - `wide`: each service depends on 3 random services after it (a random DAG
//!   with 3 edges per service).
//!
//! Baseline in every group: building a `HashMap` from each service to its
//! dependencies' names, from the same configuration — the least any graph
//! built from it costs. After the criterion groups (or alone with
//! `--ratios`), a table gives the median of 5 runs of each and their ratio;
//! compiling must stay linear (the ratio about the same at every size) and
//! 100,000 services well under a second.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};

use correlator::config::TopologyConfig;
use correlator::engine::topology::Topology;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn name(i: usize) -> String {
    format!("svc-{i:06}")
}

fn chain(n: usize) -> TopologyConfig {
    let mut cfg = TopologyConfig::default();
    for i in 0..n - 1 {
        cfg.depends_on.insert(name(i), vec![name(i + 1)]);
    }
    cfg
}

/// Every service but the last depends on 3 random later services
/// (xorshift64, fixed seed: the same graph every run).
fn wide(n: usize) -> TopologyConfig {
    let mut cfg = TopologyConfig::default();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut below = |m: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % m as u64) as usize
    };
    for i in 0..n - 1 {
        let deps = (0..3).map(|_| name(i + 1 + below(n - 1 - i))).collect();
        cfg.depends_on.insert(name(i), deps);
    }
    cfg
}

fn baseline(cfg: &TopologyConfig) -> HashMap<String, Vec<String>> {
    cfg.depends_on
        .iter()
        .map(|(s, d)| (s.clone(), d.clone()))
        .collect()
}

fn compile(cfg: &TopologyConfig) -> Topology {
    let mut issues = Vec::new();
    let t = Topology::compile(cfg, &mut issues);
    assert!(issues.is_empty(), "{issues:?}");
    t
}

/// A shape's name and the catalog of `n` services it builds.
type Shape = (&'static str, fn(usize) -> TopologyConfig);

fn shapes() -> [Shape; 2] {
    [("chain", chain), ("wide", wide)]
}

fn criterion_groups(c: &mut Criterion) {
    for (shape, make) in shapes() {
        let mut g = c.benchmark_group(format!("topology/{shape}"));
        for n in SIZES {
            let cfg = make(n);
            g.throughput(Throughput::Elements(n as u64));
            if n >= 100_000 {
                g.sample_size(10);
            }
            g.bench_with_input(BenchmarkId::new("baseline HashMap", n), &cfg, |b, cfg| {
                b.iter(|| baseline(black_box(cfg)))
            });
            g.bench_with_input(BenchmarkId::new("compile", n), &cfg, |b, cfg| {
                b.iter(|| compile(black_box(cfg)))
            });
        }
        g.finish();
    }
}

fn median_of_5<T>(mut f: impl FnMut() -> T) -> Duration {
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[2]
}

fn ratios() {
    println!("shape  services  baseline      compile       ratio");
    for (shape, make) in shapes() {
        for n in SIZES {
            let cfg = make(n);
            let base = median_of_5(|| baseline(&cfg));
            let comp = median_of_5(|| compile(&cfg));
            println!(
                "{shape:<6} {n:>8}  {:>9.3} ms  {:>9.3} ms  {:>5.2}",
                base.as_secs_f64() * 1e3,
                comp.as_secs_f64() * 1e3,
                comp.as_secs_f64() / base.as_secs_f64()
            );
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--ratios") {
        ratios();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_groups(&mut c);
    c.final_summary();
    ratios();
}
