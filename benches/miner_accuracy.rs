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

fn cell(s: Option<Scores>) -> String {
    match s {
        Some(s) => format!("{:>6.4} {:>6.4} {:>5}", s.grouping, s.parsing, s.clusters),
        None => format!("{:>6} {:>6} {:>5}", "-", "-", "-"),
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = xs.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir = std::env::var_os("LOGHUB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(default_dir);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => match args.next() {
                Some(d) => dir = PathBuf::from(d),
                None => {
                    eprintln!("--data needs a directory");
                    return ExitCode::FAILURE;
                }
            },
            // cargo bench passes --bench; criterion-style filters are ignored.
            _ => {}
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
    println!();
    println!(
        "{:<12} {:>6} {:>6} | {:>6} {:>6} {:>5} | {:>6} {:>6} {:>5}",
        "", "", "", "refer", "ence", "", "defau", "lts", ""
    );
    println!(
        "{:<12} {:>6} {:>6} | {:>6} {:>6} {:>5} | {:>6} {:>6} {:>5}",
        "dataset", "lines", "events", "GA", "PA", "clust", "GA", "PA", "clust"
    );
    let mut rows = Vec::new();
    for d in &datasets {
        let reference = d
            .reference
            .as_ref()
            .map(|s| accuracy::evaluate(s.to_config(), &d.labelled));
        let defaults = accuracy::evaluate(MinerConfig::default(), &d.labelled);
        let (reference, defaults) = match (reference.transpose(), defaults) {
            (Ok(r), Ok(x)) => (r, x),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("miner_accuracy: {}: {e}", d.name);
                return ExitCode::FAILURE;
            }
        };
        let events = defaults.events;
        println!(
            "{:<12} {:>6} {:>6} | {} | {}",
            d.name,
            d.labelled.len(),
            events,
            cell(reference),
            cell(Some(defaults))
        );
        rows.push((reference, defaults));
    }
    let avg = |f: fn(&Scores) -> f64, pick: fn(&(Option<Scores>, Scores)) -> Option<Scores>| {
        mean(rows.iter().filter_map(pick).map(|s| f(&s)))
    };
    let fmt = |x: Option<f64>| x.map_or_else(|| format!("{:>6}", "-"), |x| format!("{x:>6.4}"));
    println!(
        "{:<12} {:>6} {:>6} | {} {} {:>5} | {} {} {:>5}",
        "average",
        "",
        "",
        fmt(avg(|s| s.grouping, |r| r.0)),
        fmt(avg(|s| s.parsing, |r| r.0)),
        "",
        fmt(avg(|s| s.grouping, |r| Some(r.1))),
        fmt(avg(|s| s.parsing, |r| Some(r.1))),
        ""
    );
    ExitCode::SUCCESS
}
