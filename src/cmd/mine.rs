//! `correlator mine`: runs the template miner over a file of messages and
//! writes each message's cluster and template as CSV.
//!
//! ```text
//! correlator mine --input LINES.txt --output PRED.csv [--mask REGEX]... \
//!     [--similarity F] [--depth N] [--no-default-masks]
//! ```
//!
//! The input holds one message per line (`\n` or `\r\n`; invalid UTF-8 is
//! replaced). The output has the header `LineId,ClusterId,Template`, LineId
//! 1-based. Mining is two passes: every line is learnt first, then each is
//! written with its cluster's *final* id and template, because a cluster's
//! template keeps generalising, and clusters merge, as later lines arrive.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;

use crate::problems::masks::default_masks;
use crate::problems::miner::{ClusterId, MinerConfig, TemplateMiner};

/// Arguments of `correlator mine`.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct MineArgs {
    /// Messages to mine, one per line.
    #[arg(long, value_name = "LINES.txt")]
    pub input: PathBuf,
    /// Where to write the CSV `LineId,ClusterId,Template` (overwritten).
    #[arg(long, value_name = "PRED.csv")]
    pub output: PathBuf,
    /// A regex whose matches are variables, replaced by `<*>` before
    /// tokenising. Repeatable; tried before the built-in masks (numbers, ids,
    /// IPs, hex, UUIDs, durations, paths…), which stay on unless
    /// --no-default-masks is given.
    #[arg(long = "mask", value_name = "REGEX")]
    pub masks: Vec<String>,
    /// Share of a template's tokens a message must match to join it,
    /// 0.0..=1.0 [default: 0.4].
    #[arg(long, value_name = "F")]
    pub similarity: Option<f64>,
    /// Prefix-tree depth as in Drain (root, token count, leading tokens,
    /// leaf): messages are grouped by their first N-3 tokens; at least 3
    /// [default: 4].
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// Use only the --mask regexes, not the built-in masks.
    #[arg(long)]
    pub no_default_masks: bool,
}

impl MineArgs {
    /// The miner configuration these arguments ask for: defaults, with
    /// `--mask`s tried before the built-in masks (or alone).
    pub fn config(&self) -> MinerConfig {
        let mut cfg = MinerConfig::default();
        let mut masks = self.masks.clone();
        if !self.no_default_masks {
            masks.extend(default_masks());
        }
        cfg.masks = masks;
        if let Some(s) = self.similarity {
            cfg.similarity = s;
        }
        if let Some(d) = self.depth {
            cfg.depth = d;
        }
        cfg
    }
}

/// What a `mine` run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MineReport {
    /// Lines read (and rows written).
    pub lines: usize,
    /// Distinct clusters in the output.
    pub clusters: usize,
}

impl std::fmt::Display for MineReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mined {} lines into {} templates",
            self.lines, self.clusters
        )
    }
}

/// Reads `args.input`, mines it and writes the CSV to `args.output`.
pub fn run(args: &MineArgs) -> anyhow::Result<MineReport> {
    let mut miner = TemplateMiner::new(args.config()).context("invalid miner settings")?;
    let bytes =
        fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let ids: Vec<ClusterId> = text
        .lines()
        .map(|line| miner.add(line.strip_suffix('\r').unwrap_or(line)))
        .collect();

    // Final templates, once per cluster (ids are dense small integers).
    let mut templates: Vec<Option<String>> = Vec::new();
    let mut clusters = 0;
    let file = fs::File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut out = BufWriter::new(file);
    let write_err = || format!("writing {}", args.output.display());
    writeln!(out, "LineId,ClusterId,Template").with_context(write_err)?;
    for (i, id) in ids.iter().enumerate() {
        let id = miner.resolve(*id);
        let slot = id.0 as usize;
        if templates.len() <= slot {
            templates.resize(slot + 1, None);
        }
        let template = templates[slot].get_or_insert_with(|| {
            clusters += 1;
            csv_field(&miner.template(id))
        });
        writeln!(out, "{},{},{}", i + 1, id, template).with_context(write_err)?;
    }
    out.flush().with_context(write_err)?;
    Ok(MineReport {
        lines: ids.len(),
        clusters,
    })
}

/// `s` as one CSV field (RFC 4180): quoted, with `"` doubled, when it holds
/// a comma, a quote or a line break, or starts or ends with a space.
fn csv_field(s: &str) -> String {
    let needs_quotes = s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problems::accuracy::split_csv_record;

    fn args(dir: &std::path::Path, input: &str) -> MineArgs {
        let path = dir.join("in.txt");
        fs::write(&path, input).unwrap();
        MineArgs {
            input: path,
            output: dir.join("out.csv"),
            masks: Vec::new(),
            similarity: None,
            depth: None,
            no_default_masks: false,
        }
    }

    fn rows(a: &MineArgs) -> Vec<Vec<String>> {
        let text = fs::read_to_string(&a.output).unwrap();
        text.lines().map(|l| split_csv_record(l).unwrap()).collect()
    }

    #[test]
    fn writes_final_templates_with_one_based_line_ids() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(
            dir.path(),
            "link eth0 is down\r\nlink eth1 is down\nnode x rebooted\nlink eth2 is down\n",
        );
        let report = run(&a).unwrap();
        assert_eq!(
            report,
            MineReport {
                lines: 4,
                clusters: 2
            }
        );
        let rows = rows(&a);
        assert_eq!(rows[0], ["LineId", "ClusterId", "Template"]);
        // Line 1 reports the template as it is at the end, not as it was.
        assert_eq!(rows[1], ["1", "1", "link eth<*> is down"]);
        assert_eq!(rows[2][1], "1");
        assert_eq!(rows[3], ["3", "2", "node x rebooted"]);
        assert_eq!(rows[4][0], "4");
    }

    #[test]
    fn quotes_templates_with_commas_and_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(dir.path(), "a, \"b\" c\n\n");
        run(&a).unwrap();
        let text = fs::read_to_string(&a.output).unwrap();
        assert_eq!(
            text,
            "LineId,ClusterId,Template\n1,1,\"a, \"\"b\"\" c\"\n2,2,\n"
        );
    }

    #[test]
    fn user_masks_come_first_and_defaults_can_be_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path(), "job ABC-1 done\n");
        a.masks = vec!["[A-Z]+-\\d+".to_owned()];
        let cfg = a.config();
        assert_eq!(cfg.masks[0], "[A-Z]+-\\d+");
        assert_eq!(cfg.masks.len(), 1 + default_masks().len());
        run(&a).unwrap();
        assert_eq!(rows(&a)[1][2], "job <*> done");
        a.no_default_masks = true;
        a.masks.clear();
        assert!(a.config().masks.is_empty());
    }

    #[test]
    fn bad_settings_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path(), "x\n");
        a.masks = vec!["(".to_owned()];
        let err = format!("{:#}", run(&a).unwrap_err());
        assert!(err.contains("mask #1"), "{err}");
        a.masks.clear();
        a.similarity = Some(1.5);
        assert!(run(&a).is_err());
        a.similarity = None;
        a.input = dir.path().join("missing.txt");
        let err = format!("{:#}", run(&a).unwrap_err());
        assert!(err.contains("missing.txt"), "{err}");
    }

    #[test]
    fn golden_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(
            dir.path(),
            include_str!("../../tests/golden/mine/alerts.txt"),
        );
        run(&a).unwrap();
        let got = fs::read_to_string(&a.output).unwrap();
        let want = include_str!("../../tests/golden/mine/alerts.expected.csv");
        assert!(
            got == want,
            "output differs from tests/golden/mine/alerts.expected.csv \
             (see tests/golden/mine/README.md to regenerate):\n{got}"
        );
    }

    #[test]
    fn same_input_same_output() {
        let dir = tempfile::tempdir().unwrap();
        let input: String = crate::problems::corpus::alert_lines(300, 11)
            .into_iter()
            .map(|(l, _)| l + "\n")
            .collect();
        let a = args(dir.path(), &input);
        run(&a).unwrap();
        let first = fs::read(&a.output).unwrap();
        run(&a).unwrap();
        assert_eq!(first, fs::read(&a.output).unwrap());
    }
}
