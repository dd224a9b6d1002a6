//! Parsing and validation, through `Config::parse` as `check-config` runs it.

use super::*;

fn err(text: &str) -> String {
    match Config::parse(text, "c.toml") {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_config_is_valid_with_defaults() {
    let c = Config::parse("", "c.toml").unwrap();
    assert_eq!(c.dedup.resolve_timeout.0, Duration::from_secs(300));
    assert_eq!(c.kafka.alert_topics, vec!["alerts".to_string()]);
}

#[test]
fn unknown_key_named() {
    let e = err("[dedup]\nresolve_timout = \"5m\"\n");
    assert!(e.contains("c.toml") && e.contains("resolve_timout"), "{e}");
}

#[test]
fn bad_duration_named() {
    let e = err("[dedup]\nresolve_timeout = \"5 parsecs\"\n");
    assert!(
        e.contains("invalid duration") && e.contains("resolve_timeout"),
        "{e}"
    );
}

#[test]
fn semantic_errors_listed_together() {
    let e = err(
        "[[rules]]\nname = \"a\"\nmin_alerts = 0\n[[rules]]\nname = \"a\"\n[dedup]\nflap_threshold = 1\n",
    );
    assert!(
        e.contains("c.toml: rules[0].min_alerts: must be at least 1"),
        "{e}"
    );
    assert!(
        e.contains("c.toml: rules[1].name: \"a\" is used by an earlier rule"),
        "{e}"
    );
    assert!(e.contains("c.toml: dedup.flap_threshold"), "{e}");
}

#[test]
fn store_cache_is_bounded_by_default_and_range_checked() {
    let c = Config::parse("", "c.toml").unwrap();
    assert_eq!(c.store.cache_mib, 256);
    let c = Config::parse("[store]\ncache_mib = 64\n", "c.toml").unwrap();
    assert_eq!(c.store.cache_mib, 64);
    let e = err("[store]\ncache_mib = 0\n");
    assert!(
        e.contains("c.toml: store.cache_mib: 0 is out of range 1..=65536"),
        "{e}"
    );
}
