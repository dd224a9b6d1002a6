//! The first phase of loading: TOML values into the typed sections, with
//! every key that cannot be read (unknown, wrong type, bad duration)
//! reported at once, each with its dotted path.
//!
//! serde stops at the first error of a struct, so when the whole file does
//! not deserialize, each key of each section is tried on its own (the other
//! keys of that section left to their defaults) to find every bad one.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use toml::{Table, Value};

use super::{
    Config, ConfigIssue, DedupConfig, HttpConfig, IncidentsConfig, KafkaConfig, MatchersConfig,
    PriorityConfig, ProblemsConfig, RetentionConfig, RuleConfig, StoreConfig, TopologyConfig,
};
use crate::decode::Limits;

/// Deserializes `table`, parsed from `text`, or returns every key that
/// cannot be read, section by section in file order.
pub(super) fn read(text: &str, mut table: Table) -> Result<Config, Vec<ConfigIssue>> {
    let whole = match Config::deserialize(Value::Table(table.clone())) {
        Ok(cfg) => return Ok(cfg),
        Err(e) => e,
    };
    let mut issues = Vec::new();
    let mut sections: Vec<(String, Value)> = file_order(text)
        .into_iter()
        .filter_map(|name| table.remove(&name).map(|v| (name, v)))
        .collect();
    sections.extend(table);
    for (name, v) in sections {
        let issues = &mut issues;
        match name.as_str() {
            "kafka" => probe::<KafkaConfig>(&name, v, issues),
            "store" => probe::<StoreConfig>(&name, v, issues),
            "http" => probe::<HttpConfig>(&name, v, issues),
            "dedup" => probe::<DedupConfig>(&name, v, issues),
            "incidents" => probe::<IncidentsConfig>(&name, v, issues),
            "matchers" => probe::<MatchersConfig>(&name, v, issues),
            "topology" => probe::<TopologyConfig>(&name, v, issues),
            "priority" => probe::<PriorityConfig>(&name, v, issues),
            "problems" => probe::<ProblemsConfig>(&name, v, issues),
            "retention" => probe::<RetentionConfig>(&name, v, issues),
            "limits" => probe::<Limits>(&name, v, issues),
            "rules" => match v {
                Value::Array(rules) => {
                    for (i, r) in rules.into_iter().enumerate() {
                        probe::<RuleConfig>(&format!("rules[{i}]"), r, issues);
                    }
                }
                other => issues.push(ConfigIssue {
                    key: name,
                    reason: format!(
                        "must be an array of tables (write [[rules]]), found {}",
                        other.type_str()
                    ),
                }),
            },
            // Not a section: serde's message names the sections there are.
            _ => one_key::<Config>("", &name, v, issues),
        }
    }
    if issues.is_empty() {
        // Not expected (every key read alone, yet not all together); still
        // reported rather than lost.
        issues.push(ConfigIssue {
            key: "(file)".into(),
            reason: whole.message().to_string(),
        });
    }
    Err(issues)
}

/// The top-level names of `text` in the order they appear (a table's place
/// is its header's). The table is sorted by name; a person reads the file
/// from the top.
fn file_order(text: &str) -> Vec<String> {
    let spans: BTreeMap<String, toml::Spanned<IgnoredAny>> =
        toml::from_str(text).unwrap_or_default();
    let mut names: Vec<(usize, String)> = spans
        .into_iter()
        .map(|(name, s)| (s.span().start, name))
        .collect();
    names.sort();
    names.into_iter().map(|(_, name)| name).collect()
}

/// Reports every key of the table `v` at `path` that `T` cannot read.
fn probe<T: DeserializeOwned>(path: &str, v: Value, issues: &mut Vec<ConfigIssue>) {
    let Value::Table(table) = v else {
        issues.push(ConfigIssue {
            key: path.to_string(),
            reason: format!("must be a table, found {}", v.type_str()),
        });
        return;
    };
    let whole = match T::deserialize(Value::Table(table.clone())) {
        Ok(_) => return,
        Err(e) => e,
    };
    let before = issues.len();
    for (k, v) in table {
        one_key::<T>(path, &k, v, issues);
    }
    if issues.len() == before {
        // Every key reads alone: the table lacks a required key.
        issues.push(ConfigIssue {
            key: path.to_string(),
            reason: whole.message().to_string(),
        });
    }
}

/// Reads `T` from a table holding only `key`; reports the error, if any, at
/// `path.key`. A missing required field is not this key's fault: serde
/// reports it only after every present key was read without error.
fn one_key<T: DeserializeOwned>(path: &str, key: &str, v: Value, issues: &mut Vec<ConfigIssue>) {
    let one: Table = [(key.to_string(), v)].into_iter().collect();
    if let Err(e) = T::deserialize(Value::Table(one)) {
        if !e.message().starts_with("missing field") {
            let key = match path {
                "" => toml_key(key),
                _ => format!("{path}.{}", toml_key(key)),
            };
            issues.push(ConfigIssue {
                key,
                reason: e.message().to_string(),
            });
        }
    }
}

/// A key as TOML writes it in a dotted path: bare if it can be, else quoted
/// (`"security.protocol"`).
pub(super) fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}
