//! Accuracy benchmark of the template miner on Loghub-2k samples.
//!
//! Runs the miner over each dataset's messages twice — with the dataset's
//! reference Drain settings (masks, similarity, depth from `settings.json`)
//! and with the miner's own defaults (nothing passed) — and prints Grouping
//! Accuracy (GA) and Parsing Accuracy (PA) per dataset and on average.
//!
//! ```text
//! cargo bench --bench miner_accuracy                      # ../shared/loghub-sample
//! cargo bench --bench miner_accuracy -- --data DIR        # any Loghub-2k layout
//! ```
//!
//! `DIR` holds one folder per dataset `<D>/` with `<D>_2k.log_structured*.csv`
//! (the labels; `_corrected` preferred) and optionally `<D>_2k.content.txt` (one
//! message per line; else the CSV's `Content` column is mined). A
//! `DIR/settings.json` in the sample's format adds the reference run for the
//! datasets it names. The data is read at run time and never copied: its
//! licence asks for its notice with every copy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use correlator::problems::accuracy::{self, Labelled, ReferenceSettings, Scores};
use correlator::problems::miner::MinerConfig;

/// One dataset of a Loghub-style directory.
struct Dataset {
    name: String,
    labelled: Vec<Labelled>,
    reference: Option<ReferenceSettings>,
}

fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/loghub-sample")
}

fn labels_file(dir: &Path, name: &str) -> Option<PathBuf> {
    ["_2k.log_structured_corrected.csv", "_2k.log_structured.csv"]
        .iter()
        .map(|suffix| dir.join(format!("{name}{suffix}")))
        .find(|p| p.is_file())
}

fn load(dir: &Path) -> Result<Vec<Dataset>, String> {
    let settings = match std::fs::read_to_string(dir.join("settings.json")) {
        Ok(text) => accuracy::parse_settings(&text).map_err(|e| e.to_string())?,
        Err(_) => Vec::new(),
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let sub = dir.join(&name);
        let Some(labels) = labels_file(&sub, &name) else {
            continue;
        };
        let text =
            std::fs::read_to_string(&labels).map_err(|e| format!("{}: {e}", labels.display()))?;
        let mut labelled = accuracy::parse_labelled_csv(&text)
            .map_err(|e| format!("{}: {e}", labels.display()))?;
        let content = sub.join(format!("{name}_2k.content.txt"));
        if let Ok(text) = std::fs::read_to_string(&content) {
            let lines: Vec<&str> = text.lines().collect();
            if lines.len() != labelled.len() {
                return Err(format!(
                    "{}: {} lines for {} labels",
                    content.display(),
                    lines.len(),
                    labelled.len()
                ));
            }
            for (l, c) in labelled.iter_mut().zip(lines) {
                l.content = c.to_owned();
            }
        }
        let reference = settings
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.clone());
        out.push(Dataset {
            name,
            labelled,
            reference,
        });
    }
    Ok(out)
}

/// One dataset's scores in the three modes.
struct Row {
    reference: Option<Scores>,
    reference_masks_only: Option<Scores>,
    defaults: Scores,
}

fn cell(s: Option<Scores>) -> String {
    match s {
        Some(s) => format!("{:>6.4} {:>6.4} {:>5}", s.grouping, s.parsing, s.clusters),
        None => format!("{:>6} {:>6} {:>5}", "-", "-", "-"),
    }
}

fn ga_cell(s: Option<Scores>) -> String {
    s.map_or_else(|| format!("{:>6}", "-"), |s| format!("{:>6.4}", s.grouping))
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = xs.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn evaluate(d: &Dataset) -> Result<Row, String> {
    let run = |cfg: MinerConfig| accuracy::evaluate(cfg, &d.labelled).map_err(|e| e.to_string());
    Ok(Row {
        reference: d
            .reference
            .as_ref()
            .map(|s| run(s.to_config()))
            .transpose()?,
        reference_masks_only: d
            .reference
            .as_ref()
            .map(|s| run(s.to_config_replacing_masks()))
            .transpose()?,
        defaults: run(MinerConfig::default())?,
    })
}

fn print_table(datasets: &[Dataset], rows: &[Row]) {
    println!(
        "{:<12} {:>5} {:>6} | {:^19} | {:^9} | {:^19}",
        "", "", "", "reference settings", "ref masks", "miner defaults"
    );
    println!(
        "{:<12} {:>5} {:>6} | {:>6} {:>6} {:>5} | {:>9} | {:>6} {:>6} {:>5}",
        "dataset", "lines", "events", "GA", "PA", "clust", "only GA", "GA", "PA", "clust"
    );
    for (d, r) in datasets.iter().zip(rows) {
        println!(
            "{:<12} {:>5} {:>6} | {} | {:>9} | {}",
            d.name,
            d.labelled.len(),
            r.defaults.events,
            cell(r.reference),
            ga_cell(r.reference_masks_only),
            cell(Some(r.defaults))
        );
    }
    let avg = |pick: &dyn Fn(&Row) -> Option<f64>| {
        mean(rows.iter().filter_map(pick))
            .map_or_else(|| format!("{:>6}", "-"), |x| format!("{x:>6.4}"))
    };
    println!(
        "{:<12} {:>5} {:>6} | {} {} {:>5} | {:>9} | {} {} {:>5}",
        "average",
        "",
        "",
        avg(&|r| r.reference.map(|s| s.grouping)),
        avg(&|r| r.reference.map(|s| s.parsing)),
        "",
        avg(&|r| r.reference_masks_only.map(|s| s.grouping)),
        avg(&|r| Some(r.defaults.grouping)),
        avg(&|r| Some(r.defaults.parsing)),
        ""
    );
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir = std::env::var_os("LOGHUB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(default_dir);
    while let Some(a) = args.next() {
        // cargo bench passes --bench; criterion-style filters are ignored.
        if a == "--data" {
            let Some(d) = args.next() else {
                eprintln!("--data needs a directory");
                return ExitCode::FAILURE;
            };
            dir = PathBuf::from(d);
        }
    }
    if !dir.is_dir() {
        println!("miner_accuracy: no data at {} — skipped", dir.display());
        return ExitCode::SUCCESS;
    }
    let datasets = match load(&dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("miner_accuracy: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Template miner accuracy on {}", dir.display());
    println!("(reference: the dataset's Drain settings, its masks tried before the built-in");
    println!(" ones; ref masks only: the built-in masks off, as the reference Drain runs)");
    println!();
    let mut rows = Vec::new();
    for d in &datasets {
        match evaluate(d) {
            Ok(r) => rows.push(r),
            Err(e) => {
                eprintln!("miner_accuracy: {}: {e}", d.name);
                return ExitCode::FAILURE;
            }
        }
    }
    print_table(&datasets, &rows);
    ExitCode::SUCCESS
}
