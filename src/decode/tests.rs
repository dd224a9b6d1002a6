use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::alert::{Alert, AlertStatus, Fingerprint};

/// 2026-01-05T10:00:00Z, the engine clock of every test here.
const NOW: Timestamp = Timestamp(1_767_607_200_000);

fn run(json: &str) -> Decoded {
    decode(json.as_bytes(), NOW, &Limits::default())
}

fn errors(d: &Decoded) -> Vec<String> {
    d.errors.iter().map(ToString::to_string).collect()
}

#[test]
fn detects_each_format() {
    let cases = [
        (r#"[{"labels":{"a":"b"}}]"#, Some(Format::AlertmanagerApiV2)),
        (r#"  {"labels":{"a":"b"}}"#, Some(Format::AlertmanagerApiV2)),
        (
            r#"{"alerts":[{"status":"firing","labels":{"a":"b"}}]}"#,
            Some(Format::AlertmanagerWebhook),
        ),
        (
            r#"{"orgId":1,"alerts":[{"status":"firing","labels":{"a":"b"}}]}"#,
            Some(Format::Grafana),
        ),
        (
            r#"{"event_action":"acknowledge","dedup_key":"k"}"#,
            Some(Format::PagerDuty),
        ),
        // routing_key + payload without event_action: PagerDuty, reported as such.
        (
            r#"{"routing_key":"r","payload":{}}"#,
            Some(Format::PagerDuty),
        ),
        // event_action wins over alerts and labels.
        (
            r#"{"event_action":"acknowledge","dedup_key":"k","alerts":[],"labels":{}}"#,
            Some(Format::PagerDuty),
        ),
        // alerts wins over labels.
        (
            r#"{"labels":{"a":"b"},"alerts":[{"status":"firing","labels":{"a":"b"}}]}"#,
            Some(Format::AlertmanagerWebhook),
        ),
        (r#"{"routing_key":"r"}"#, None),
        ("{}", None),
        (
            r#"{"annotations":{"summary":"s"}}"#,
            Some(Format::AlertmanagerApiV2),
        ),
        ("5", None),
        (r#""text""#, None),
    ];
    for (input, want) in cases {
        assert_eq!(run(input).format, want, "input: {input}");
    }
}

#[test]
fn record_level_errors() {
    let cases: [(&[u8], &str, &str); 9] = [
        (b"{}", "unknown_format", "record matches no known format: expected \"alerts\" (Alertmanager/Grafana webhook), \"labels\" (Alertmanager API v2 alert), an array of alerts, or \"event_action\" (PagerDuty Events v2)"),
        (b"true", "unknown_format", "record matches no known format: expected \"alerts\" (Alertmanager/Grafana webhook), \"labels\" (Alertmanager API v2 alert), an array of alerts, or \"event_action\" (PagerDuty Events v2)"),
        (b"", "invalid_json", "invalid JSON at line 1 column 0: EOF while parsing a value"),
        (b"{\"alerts\": [1,}", "invalid_json", "invalid JSON at line 1 column 15: expected value"),
        (b"{\"labels\":{\"a\":\"b\"}} x", "invalid_json", "invalid JSON at line 1 column 22: trailing characters"),
        (b"[{\"labels\":{\"a\":\"b\"}}", "invalid_json", "invalid JSON at line 1 column 21: EOF while parsing a list"),
        (b"{\n\"labels\": {\"a\": \"\xff\"}}", "invalid_json", "invalid JSON at line 2 column 18: invalid UTF-8 byte sequence"),
        (b"hello", "invalid_json", "invalid JSON at line 1 column 1: expected value"),
        // A repeated key keeps its last value, as in Go: here the empty list.
        (
            b"{\"alerts\":[{\"status\":\"firing\",\"labels\":{\"a\":\"b\"}}],\"alerts\":[]}",
            "invalid_field",
            "alerts: at least one alert is required, the list is empty",
        ),
    ];
    for (input, reason, want) in cases {
        let d = decode(input, NOW, &Limits::default());
        let shown = String::from_utf8_lossy(input);
        assert_eq!(errors(&d), [want], "input: {shown}");
        assert_eq!(d.errors[0].reason(), reason, "input: {shown}");
        assert!(d.signals.is_empty());
    }
}

#[test]
fn size_is_checked_before_parsing() {
    let limits = Limits {
        max_record_bytes: 10,
        ..Limits::default()
    };
    // Not even JSON: the size check comes first.
    let d = decode(b"this is not json at all", NOW, &limits);
    assert_eq!(
        errors(&d),
        ["record is 23 bytes, over the limit of 10 (limits.max_record_bytes)"]
    );
    assert_eq!(d.errors[0].reason(), "too_large");
    assert_eq!(d.format, None);
    let big = vec![b' '; 2_000_000];
    let d = decode(&big, NOW, &Limits::default());
    assert_eq!(
        errors(&d),
        ["record is 2000000 bytes, over the limit of 1048576 (limits.max_record_bytes)"]
    );
    // Exactly at the limit: parsed.
    let limits = Limits {
        max_record_bytes: 20,
        ..Limits::default()
    };
    let d = decode(br#"{"labels":{"a":"b"}}"#, NOW, &limits);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
}

/// 100,000 levels of nesting wherever a value is skipped or described:
/// serde_json skips values without recursing, and the tolerant types only
/// nest as deep as the formats do, so there is no stack to overflow.
#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    for (open, close, found) in [("[", "]", "an array"), ("{\"a\":", "}", "an object")] {
        let value = format!("{}1{}", open.repeat(100_000), close.repeat(100_000));
        let cases = [
            (
                format!(r#"{{"alerts":[{{"status":"firing","labels":{{"a":{value}}}}}]}}"#),
                format!(r#"alerts[0].labels."a": expected a string, found {found}"#),
            ),
            (
                format!(r#"[{{"labels":{{"a":"b"}},"x":{value}}}]"#),
                String::new(),
            ),
            (
                format!("[{value}]"),
                match found {
                    "an array" => "[0]: expected an object, found an array",
                    _ => "[0].labels: at least one label is required",
                }
                .to_string(),
            ),
            (
                format!(r#"{{"event_action":"trigger","payload":{{"custom_details":{value}}}}}"#),
                r#"payload.summary: required for event_action "trigger""#.to_string(),
            ),
        ];
        for (input, want) in cases {
            let d = run(&input);
            assert_eq!(errors(&d).join("; "), want, "{}…", &input[..60]);
        }
    }
    // And where serde_json's own depth limit applies, it is a JSON error.
    let d = run(&format!("{{\"a\":{}", "{\"b\":".repeat(200)));
    assert_eq!(d.errors[0].reason(), "invalid_json");
}

#[test]
fn byte_order_mark_is_skipped() {
    let d = decode(
        "\u{feff}{\"labels\":{\"a\":\"b\"}}".as_bytes(),
        NOW,
        &Limits::default(),
    );
    assert_eq!(d.signals.len(), 1, "{:?}", d.errors);
}

#[test]
fn limits_from_config() {
    let l: Limits = toml::from_str("max_labels = 10").expect("partial table");
    assert_eq!(
        l,
        Limits {
            max_labels: 10,
            ..Limits::default()
        }
    );
    let l: Limits = toml::from_str("").expect("empty table");
    assert_eq!(l, Limits::default());
    let e = toml::from_str::<Limits>("max_lables = 10").expect_err("typo must be rejected");
    assert!(e.to_string().contains("unknown field `max_lables`"), "{e}");
    assert_eq!(Limits::default().max_record_bytes, 1_048_576);
}

/// Fingerprints that Prometheus and Alertmanager themselves computed.
/// Sources:
/// - prometheus/common `model/signature_test.go`: `TestMetricToFingerprint`
///   (`labelSetToFingerprint`, which `LabelSet.Fingerprint()` and so
///   Alertmanager's `Alert.Fingerprint()` call) and the expected values of
///   `BenchmarkMetricToFingerprint{Single,Double,Triple}`;
/// - prometheus/alertmanager `api/v2/api_test.go`: `TestAlertToOpenAPIAlert`,
///   the fingerprint the API reports for `{severity="critical", alertname="alert1"}`.
#[test]
fn fingerprints_match_prometheus_and_alertmanager() {
    let cases: [(&[(&str, &str)], u64); 6] = [
        (&[], 14_695_981_039_346_656_037),
        (
            &[("name", "garland, briggs"), ("fear", "love is not enough")],
            5_799_056_148_416_392_346,
        ),
        (
            &[("first-label", "first-label-value")],
            5_146_282_821_936_882_169,
        ),
        (
            &[
                ("first-label", "first-label-value"),
                ("second-label", "second-label-value"),
            ],
            3_195_800_080_984_914_717,
        ),
        (
            &[
                ("first-label", "first-label-value"),
                ("second-label", "second-label-value"),
                ("third-label", "third-label-value"),
            ],
            13_843_036_195_897_128_121,
        ),
        (
            &[("severity", "critical"), ("alertname", "alert1")],
            0x0223_b772_b51c_29e1,
        ),
    ];
    for (pairs, want) in cases {
        let labels = Labels::from_pairs(pairs.iter().copied()).expect("valid labels");
        assert_eq!(labels.fingerprint(), Fingerprint(want), "labels {pairs:?}");
    }
    // And through the decoder, as Alertmanager prints it.
    let d = run(r#"{"labels":{"severity":"critical","alertname":"alert1"}}"#);
    let Some(Signal::Alert(a)) = d.signals.first() else {
        panic!("{:?}", d.errors)
    };
    assert_eq!(a.fingerprint.to_string(), "0223b772b51c29e1");
}

// -----------------------------------------------------------------------
// Golden files: tests/golden/decode/<format>/NAME.json is a raw record,
// NAME.expected.json the rendering of what it decodes to at GOLDEN_NOW.
// `UPDATE_GOLDEN=1 cargo test golden` rewrites the expected files; review
// the diff before committing it.

/// Engine clock of the golden files: 2026-01-05T10:00:00Z.
const GOLDEN_NOW: Timestamp = NOW;

fn render(d: &Decoded) -> Value {
    let signals: Vec<Value> = d
        .signals
        .iter()
        .map(|s| match s {
            Signal::Alert(a) => json!({ "alert": render_alert(a) }),
            Signal::Acknowledge { fingerprint } => {
                json!({ "acknowledge": { "fingerprint": fingerprint.to_string() } })
            }
        })
        .collect();
    json!({
        "format": d.format.map(Format::as_str),
        "signals": signals,
        "errors": errors(d),
    })
}

fn render_alert(a: &Alert) -> Value {
    let mut v = json!({
        "fingerprint": a.fingerprint.to_string(),
        "keyed": a.keyed,
        "labels": a.labels,
        "status": a.status,
        "summary": a.summary,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "generator_url": a.generator_url,
    });
    // Only where there are some, so the other formats' files stay as they are.
    if !a.annotations.is_empty() {
        let annotations: serde_json::Map<String, Value> = a
            .annotations
            .iter()
            .map(|(n, v)| (n.clone(), json!(v)))
            .collect();
        v["annotations"] = Value::Object(annotations);
    }
    v
}

fn golden_inputs(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let dirs = std::fs::read_dir(root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    for dir in dirs.flatten().map(|d| d.path()).filter(|p| p.is_dir()) {
        for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = file.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".json") && !name.ends_with(".expected.json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn golden_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/decode");
    let inputs = golden_inputs(&root);
    assert!(
        inputs.len() >= 20,
        "only {} golden inputs under {}",
        inputs.len(),
        root.display()
    );
    let bless = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    // One decoder for every file, each decoded twice: a label set found in
    // its cache gives what a fresh decode gives.
    let mut decoder = Decoder::new(Limits::default());
    for input in &inputs {
        let bytes = std::fs::read(input).expect("readable golden input");
        let fresh = decode(&bytes, GOLDEN_NOW, &Limits::default());
        for pass in 0..2 {
            if decoder.decode(&bytes, GOLDEN_NOW) != fresh {
                failures.push(format!(
                    "file: {}
the Decoder's result (pass {pass}) differs from decode()'s",
                    input.display()
                ));
            }
        }
        // Each alert carries its record's format (its expiry depends on it).
        for s in &fresh.signals {
            if let Signal::Alert(a) = s {
                if Some(a.format) != fresh.format {
                    failures.push(format!(
                        "file: {}\nalert format {:?}, record format {:?}",
                        input.display(),
                        a.format,
                        fresh.format
                    ));
                }
            }
        }
        let got = render(&fresh);
        let expected_path = input.with_extension("expected.json");
        // The directory names the format the file must be detected as.
        let dir = input
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str());
        let want_format = if dir == Some("invalid") {
            Value::Null
        } else {
            json!(dir)
        };
        if got["format"] != want_format {
            failures.push(format!(
                "file: {}\nwant format: {want_format}\n got format: {}",
                input.display(),
                got["format"]
            ));
        }
        if bless {
            let text = serde_json::to_string_pretty(&got).expect("serializable") + "\n";
            std::fs::write(&expected_path, text).expect("writable expected file");
            continue;
        }
        let want: Value = match std::fs::read(&expected_path) {
            Ok(text) => serde_json::from_slice(&text).expect("expected file is JSON"),
            Err(e) => {
                failures.push(format!("file: {}\nmissing: {e}", expected_path.display()));
                continue;
            }
        };
        if got != want {
            failures.push(format!(
                "file: {}\nwant: {}\n got: {}",
                input.display(),
                serde_json::to_string_pretty(&want).unwrap_or_default(),
                serde_json::to_string_pretty(&got).unwrap_or_default(),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// -----------------------------------------------------------------------
// Properties.

/// Field names of every format, so generated JSON reaches deep paths.
const KEYS: &[&str] = &[
    "alerts",
    "labels",
    "annotations",
    "status",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
    "orgId",
    "title",
    "state",
    "values",
    "valueString",
    "dashboardURL",
    "panelURL",
    "event_action",
    "routing_key",
    "dedup_key",
    "payload",
    "client_url",
    "summary",
    "description",
    "source",
    "severity",
    "timestamp",
    "component",
    "group",
    "class",
    "custom_details",
    "alertname",
];

const STRINGS: &[&str] = &[
    "",
    "firing",
    "resolved",
    "trigger",
    "acknowledge",
    "resolve",
    "critical",
    "info",
    "2026-01-05T10:00:00Z",
    "2026-01-05T09:00:00+02:00",
    "0001-01-01T00:00:00Z",
    "2015-07-17T08:42:58.315+0000",
    "0223b772b51c29e1",
    "\u{ff}\u{0}\"\\",
];

fn json_value() -> impl Strategy<Value = Value> {
    let string = prop_oneof![
        3 => prop::sample::select(STRINGS).prop_map(str::to_string),
        1 => ".{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        string.prop_map(Value::String),
    ];
    let key = prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => ".{0,4}",
    ];
    leaf.prop_recursive(5, 96, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Invariants that hold for every record, whatever it is.
fn check_invariants(d: &Decoded) {
    if d.format.is_none() {
        assert!(d.signals.is_empty());
        assert_eq!(d.errors.len(), 1);
    }
    assert!(
        !d.signals.is_empty() || !d.errors.is_empty(),
        "a record yields something"
    );
    for s in &d.signals {
        if let Signal::Alert(a) = s {
            if !a.keyed {
                assert_eq!(a.fingerprint, a.labels.fingerprint());
                assert!(!a.labels.is_empty(), "only keyed alerts may have no labels");
            }
            if let (Some(start), Some(end)) = (a.starts_at, a.ends_at) {
                assert!(start <= end);
            }
        }
    }
    for e in &d.errors {
        assert!(!e.to_string().is_empty());
        assert!(e.to_string().len() < 1024, "error messages stay short: {e}");
    }
}

/// Independent reference: Alertmanager's algorithm spelled out.
fn reference_fingerprint(pairs: &std::collections::BTreeMap<String, String>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in pairs {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let d = decode(&bytes, NOW, &Limits::default());
        check_invariants(&d);
    }

    #[test]
    fn never_panics_on_json(value in json_value(), wrap in 0..4u8) {
        // Put the generated value where each format looks for things.
        let value = match wrap {
            0 => value,
            1 => json!({ "alerts": [value] }),
            2 => json!([value]),
            _ => json!({ "event_action": "trigger", "payload": value }),
        };
        let bytes = serde_json::to_vec(&value).expect("serializable");
        let tight = Limits {
            max_labels: 3,
            max_label_name_bytes: 4,
            max_label_value_bytes: 8,
            max_annotation_bytes: 8,
            max_alerts_per_record: 3,
            ..Limits::default()
        };
        for limits in [Limits::default(), tight] {
            let d = decode(&bytes, NOW, &limits);
            check_invariants(&d);
            // Deterministic: same record and clock, same result.
            prop_assert_eq!(&d, &decode(&bytes, NOW, &limits));
            // The label cache changes nothing: first decode, then a hit.
            let mut decoder = Decoder::new(limits.clone());
            prop_assert_eq!(&d, &decoder.decode(&bytes, NOW));
            prop_assert_eq!(&d, &decoder.decode(&bytes, NOW));
        }
    }

    #[test]
    fn never_panics_on_damaged_payloads(cut in 0usize..400, at in 0usize..400, byte in any::<u8>()) {
        let good = br#"{"orgId":1,"alerts":[{"status":"firing","labels":{"alertname":"A","x":""},"annotations":{"summary":"s"},"startsAt":"2026-01-05T09:00:00Z","endsAt":"0001-01-01T00:00:00Z","values":{"B":1}}],"event_action":"trigger","payload":{"summary":"s","source":"h","severity":"info","custom_details":{"k":"v"}}}"#;
        let mut bytes = good.to_vec();
        if at < bytes.len() {
            bytes[at] = byte;
        }
        bytes.truncate(cut.max(1));
        check_invariants(&decode(&bytes, NOW, &Limits::default()));
    }

    #[test]
    fn fingerprint_ignores_label_order(
        labels in prop::collection::btree_map("[a-z_]{1,8}", ".{0,8}", 1..12),
        seed in any::<u64>(),
    ) {
        let mut pairs: Vec<(&String, &String)> = labels.iter().collect();
        // A seeded Fisher-Yates shuffle of the wire order.
        let mut state = seed | 1;
        for i in (1..pairs.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            pairs.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}:{}", json!(k), json!(v)))
            .collect();
        let record = format!(r#"{{"labels":{{{}}}}}"#, body.join(","));
        let d = run(&record);
        let Some(Signal::Alert(a)) = d.signals.first() else {
            return Err(TestCaseError::fail(format!("{:?}", d.errors)));
        };
        prop_assert_eq!(a.fingerprint, Fingerprint(reference_fingerprint(&labels)));
        prop_assert_eq!(a.status, AlertStatus::Firing);
    }
}
