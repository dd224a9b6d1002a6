//! `correlator check-config`: validates a configuration file and prints
//! every problem found (the caller exits with EX_CONFIG on errors).

use std::path::Path;

use crate::cmd::format::plural;
use crate::config::Config;

/// Loads and validates; the one-line summary of a valid file.
pub fn run(path: &Path) -> anyhow::Result<String> {
    let cfg = Config::load(path)?;
    // Valid, but read differently by Alertmanager's two matcher parsers.
    for w in crate::engine::rules::mode_warnings(&cfg) {
        eprintln!("warning: {}: {}: {}", path.display(), w.key, w.reason);
    }
    Ok(summary(path, &cfg))
}

fn summary(path: &Path, cfg: &Config) -> String {
    format!(
        "{}: ok ({}, {}, {})",
        path.display(),
        plural(cfg.rules.len() as u64, "rule", "rules"),
        plural(
            cfg.topology.depends_on.len() as u64,
            "topology service",
            "topology services"
        ),
        plural(
            cfg.kafka.alert_topics.len() as u64,
            "alert topic",
            "alert topics"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_agree_with_their_nouns() {
        let cfg = Config::parse(
            "[kafka]\nalert_topics = [\"alerts\"]\n[[rules]]\nname = \"r\"\ngroup_by = [\"a\"]\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            summary(Path::new("t.toml"), &cfg),
            "t.toml: ok (1 rule, 0 topology services, 1 alert topic)"
        );
    }
}
