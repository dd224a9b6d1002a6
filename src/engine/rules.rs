//! Correlation rules: which alerts belong together.
//!
//! Rules are tried in order and the first whose matchers all match wins, as
//! in an Alertmanager route with `continue: false`. The group key is the rule
//! name plus the values of its `group_by` labels; alerts that match no rule
//! get the implicit `default` rule, grouped per fingerprint.

use std::time::Duration;

use crate::alert::{Fingerprint, Labels};
use crate::config::{Config, ConfigIssue};
use crate::matcher::{mode_dependence, parse_matchers, Matcher};

/// Name of the implicit rule for alerts no configured rule matches.
pub const DEFAULT_RULE: &str = "default";

/// How a rule groups alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// By the listed label names (missing labels group as "").
    Labels(Vec<String>),
    /// `"..."`: by every label, i.e. one group per alert identity.
    All,
}

/// A rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub group_by: GroupBy,
    pub window: Duration,
    pub min_alerts: usize,
    pub reopen_window: Duration,
}

impl Rule {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// The group key: rule name, then `name=value` for each grouping label,
    /// separated by 0x1F (never valid in a label name, rare in values).
    pub fn group_key(&self, labels: &Labels, fp: Fingerprint) -> String {
        let mut key = String::with_capacity(64);
        key.push_str(&self.name);
        match &self.group_by {
            GroupBy::All => {
                key.push('\u{1f}');
                key.push_str(&fp.to_string());
            }
            GroupBy::Labels(names) => {
                for n in names {
                    key.push('\u{1f}');
                    key.push_str(n);
                    key.push('=');
                    key.push_str(labels.get_or_empty(n));
                }
            }
        }
        key
    }

    /// The grouping labels of an alert, for display. Empty when grouping by
    /// all labels: the incident's single alert shows them.
    pub fn group_labels(&self, labels: &Labels) -> Vec<(String, String)> {
        match &self.group_by {
            GroupBy::All => Vec::new(),
            GroupBy::Labels(names) => names
                .iter()
                .map(|n| (n.clone(), labels.get_or_empty(n).to_string()))
                .collect(),
        }
    }
}

/// Compiles `[[rules]]`, appending the implicit default rule last.
pub fn compile(cfg: &Config, issues: &mut Vec<ConfigIssue>) -> Vec<Rule> {
    let mut rules = Vec::with_capacity(cfg.rules.len() + 1);
    for (i, r) in cfg.rules.iter().enumerate() {
        let mut matchers = Vec::with_capacity(r.matchers.len());
        for (j, m) in r.matchers.iter().enumerate() {
            // Like Alertmanager's config, an entry may hold several matchers.
            match parse_matchers(m, cfg.matchers.mode) {
                Ok(ms) => matchers.extend(ms),
                Err(e) => issues.push(ConfigIssue {
                    key: format!("rules[{i}].matchers[{j}]"),
                    reason: format!("{m:?}: {e}"),
                }),
            }
        }
        let group_by = if r.group_by.iter().any(|g| g == "...") {
            GroupBy::All
        } else {
            GroupBy::Labels(r.group_by.clone())
        };
        rules.push(Rule {
            name: r.name.clone(),
            matchers,
            group_by,
            window: r.window.0,
            min_alerts: r.min_alerts.max(1),
            reopen_window: r.reopen_window.0,
        });
    }
    rules.push(Rule {
        name: DEFAULT_RULE.to_string(),
        matchers: Vec::new(),
        group_by: GroupBy::All,
        window: Duration::ZERO,
        min_alerts: 1,
        reopen_window: cfg.incidents.default_reopen_window.0,
    });
    rules
}

/// Warnings for `check-config`: each `matchers` entry the UTF-8 and classic
/// parsers read differently, so that its meaning depends on `matchers.mode`
/// (and on Alertmanager's mode, for a matcher shared with it).
pub fn mode_warnings(cfg: &Config) -> Vec<ConfigIssue> {
    let mut warnings = Vec::new();
    for (i, r) in cfg.rules.iter().enumerate() {
        for (j, m) in r.matchers.iter().enumerate() {
            if let Some(d) = mode_dependence(m) {
                warnings.push(ConfigIssue {
                    key: format!("rules[{i}].matchers[{j}]"),
                    reason: format!("{m:?}: {d}"),
                });
            }
        }
    }
    warnings
}

/// Index of the first rule matching `labels` (the default rule always matches).
pub fn select(rules: &[Rule], labels: &Labels) -> usize {
    rules
        .iter()
        .position(|r| r.matches(labels))
        .unwrap_or(rules.len() - 1)
}
