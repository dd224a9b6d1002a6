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

#[test]
fn huge_duration_refused_with_key_named() {
    let e = err("[dedup]\nresolve_timeout = \"1000000000y\"\n");
    assert!(
        e.contains("c.toml: dedup.resolve_timeout: 365250000000d is out of range 1s..=365d"),
        "{e}"
    );
}

#[test]
fn nanosecond_tick_refused() {
    let e = err("[kafka]\ntick_interval = \"1ns\"\n");
    assert!(
        e.contains("c.toml: kafka.tick_interval: 1ns is out of range 10ms..=1m"),
        "{e}"
    );
}

/// Every duration and size key is range-checked, at both ends.
#[test]
fn every_duration_and_size_key_has_a_range() {
    let cases = [
        (
            "kafka",
            "batch_linger",
            "\"2s\"",
            "2s is out of range 0s..=1s",
        ),
        (
            "kafka",
            "tick_interval",
            "\"2m\"",
            "2m is out of range 10ms..=1m",
        ),
        (
            "kafka",
            "session_timeout",
            "\"500ms\"",
            "500ms is out of range 1s..=1h",
        ),
        (
            "kafka",
            "batch_max",
            "100001",
            "100001 is out of range 1..=100000",
        ),
        (
            "store",
            "cache_mib",
            "65537",
            "65537 is out of range 1..=65536",
        ),
        (
            "http",
            "max_body_bytes",
            "100",
            "100 is out of range 1024..=67108864",
        ),
        (
            "dedup",
            "resolve_timeout",
            "\"0s\"",
            "0s is out of range 1s..=365d",
        ),
        (
            "dedup",
            "webhook_resolve_timeout",
            "\"0s\"",
            "0s is out of range 1s..=365d",
        ),
        (
            "dedup",
            "pagerduty_resolve_timeout",
            "\"366d\"",
            "366d is out of range 0s..=365d",
        ),
        (
            "dedup",
            "flap_window",
            "\"366d\"",
            "366d is out of range 1s..=365d",
        ),
        (
            "dedup",
            "flap_threshold",
            "1001",
            "1001 is out of range 2..=1000",
        ),
        (
            "incidents",
            "default_reopen_window",
            "\"400d\"",
            "400d is out of range 0s..=365d",
        ),
        (
            "topology",
            "window",
            "\"0s\"",
            "0s is out of range 1s..=365d",
        ),
        (
            "problems",
            "lookback",
            "\"500ms\"",
            "500ms is out of range 1s..=365d",
        ),
        (
            "problems",
            "reject_suppression",
            "\"2y\"",
            "17532h is out of range 0s..=365d",
        ),
        (
            "problems",
            "min_incidents",
            "100001",
            "100001 is out of range 2..=100000",
        ),
        (
            "retention",
            "closed_incidents",
            "\"10m\"",
            "10m is out of range 1h..=3650d",
        ),
        (
            "retention",
            "resolved_problems",
            "\"3651d\"",
            "3651d is out of range 1h..=3650d",
        ),
        (
            "retention",
            "miner_snapshot_lines",
            "10",
            "10 is out of range 100..=1000000",
        ),
        (
            "limits",
            "max_record_bytes",
            "1000",
            "1000 is out of range 1024..=67108864",
        ),
        (
            "limits",
            "max_alerts_per_record",
            "0",
            "0 is out of range 1..=100000",
        ),
        (
            "limits",
            "max_labels",
            "1025",
            "1025 is out of range 1..=1024",
        ),
        (
            "limits",
            "max_label_name_bytes",
            "4097",
            "4097 is out of range 1..=4096",
        ),
        (
            "limits",
            "max_label_value_bytes",
            "0",
            "0 is out of range 1..=1048576",
        ),
        (
            "limits",
            "max_annotation_bytes",
            "1048577",
            "1048577 is out of range 1..=1048576",
        ),
    ];
    for (section, key, value, reason) in cases {
        let e = err(&format!("[{section}]\n{key} = {value}\n"));
        let want = format!("c.toml: {section}.{key}: {reason}");
        assert!(e.contains(&want), "want: {want}\n got: {e}");
    }
    let e = err(
        "[[rules]]\nname = \"r\"\nwindow = \"400d\"\nreopen_window = \"400d\"\nmin_alerts = 100001\n",
    );
    for want in [
        "c.toml: rules[0].window: 400d is out of range 0s..=365d",
        "c.toml: rules[0].reopen_window: 400d is out of range 0s..=365d",
        "c.toml: rules[0].min_alerts: 100001 is out of range 1..=100000",
    ] {
        assert!(e.contains(want), "want: {want}\n got: {e}");
    }
}

#[test]
fn unknown_librdkafka_property_refused_with_key_named() {
    let e = err("[kafka.properties]\n\"no.such.property\" = \"1\"\n");
    assert!(
        e.contains("c.toml: kafka.properties.\"no.such.property\": No such configuration property: \"no.such.property\""),
        "{e}"
    );
}

#[test]
fn bad_librdkafka_value_refused_and_good_properties_accepted() {
    let e = err(
        "[kafka.properties]\n\"fetch.wait.max.ms\" = \"soon\"\n\"security.protocol\" = \"plaintext\"\n\"client.id\" = \"c1\"\n",
    );
    assert!(
        e.contains("c.toml: kafka.properties.\"fetch.wait.max.ms\": "),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "only the bad value is refused: {e}");
    Config::parse(
        "[kafka.properties]\n\"security.protocol\" = \"plaintext\"\n\"statistics.interval.ms\" = \"5000\"\n",
        "c.toml",
    )
    .expect("valid properties");
}

/// Keys that cannot be read are all reported, not only the first.
#[test]
fn every_unreadable_key_reported_at_once() {
    let e = err(concat!(
        "[kafka]\ntick_interval = \"soon\"\nbatch_max = -1\n",
        "[dedup]\nresolve_timout = \"5m\"\n",
        "[[rules]]\nname = \"r\"\nmin_alerts = \"three\"\n",
        "[[rules]]\nmatchers = []\n",
        "[limits]\nmax_labels = 10\nmax_lables = 10\n",
        "[nosuch]\nx = 1\n",
    ));
    for want in [
        "c.toml: kafka.tick_interval: invalid duration \"soon\"",
        "c.toml: kafka.batch_max: invalid value: integer `-1`",
        "c.toml: dedup.resolve_timout: unknown field `resolve_timout`, expected one of",
        "c.toml: rules[0].min_alerts: invalid type: string \"three\"",
        "c.toml: rules[1]: missing field `name`",
        "c.toml: limits.max_lables: unknown field `max_lables`",
        "c.toml: nosuch: unknown field `nosuch`, expected one of `kafka`",
    ] {
        assert!(e.contains(want), "want: {want}\n got: {e}");
    }
    assert_eq!(e.lines().count(), 7, "{e}");
}

#[test]
fn a_section_of_the_wrong_shape_is_named() {
    let e = err("kafka = 3\nrules = \"r\"\n");
    assert!(
        e.contains("c.toml: kafka: must be a table, found integer"),
        "{e}"
    );
    assert!(
        e.contains("c.toml: rules: must be an array of tables (write [[rules]]), found string"),
        "{e}"
    );
}

#[test]
fn toml_syntax_errors_keep_line_and_column() {
    let e = err("[dedup]\nresolve_timeout = \n");
    assert!(e.starts_with("c.toml: TOML parse error at line 2"), "{e}");
}

#[test]
fn matchers_mode_selects_the_parser() {
    let rule = "[[rules]]\nname = \"r\"\nmatchers = ['foo=~\"\\d+\"']\n";
    // Fallback, the default: the classic parser reads the backslash.
    let c = Config::parse(rule, "c.toml").unwrap();
    let engine = crate::engine::EngineConfig::compile(&c).unwrap();
    assert_eq!(engine.rules[0].matchers[0].value(), r"\d+");
    // utf8: `\d` is no Go string escape.
    let e = err(&format!("[matchers]\nmode = \"utf8\"\n{rule}"));
    assert!(
        e.contains("rules[0].matchers[0]") && e.contains("invalid input"),
        "{e}"
    );
    let e = err("[matchers]\nmode = \"strict\"\n");
    assert!(
        e.contains("matchers.mode") && e.contains("`fallback`") && e.contains("`utf8`"),
        "{e}"
    );
}
